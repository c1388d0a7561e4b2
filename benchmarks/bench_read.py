"""Read a plane and a 512x512 tile of a sharded 3-D volume the way napari reads layer data.

napari slices a level in two steps (the displayed region, then the plane) and reads the result
with ``numpy.asarray``. When it slices asynchronously it does so inside the context its
``configure_dask`` returns: dask task fusion off and napari's dask cache on; otherwise with dask's
defaults. Both configurations are measured, for:

1. zarr-python reading the same region directly (the baseline);
2. napari-zarr-explorer: level 0 of the layer its reader returns;
3. napari-ome-zarr: level 0 of the layer its reader returns, in its own virtual environment under
   ``benchmarks/.venvs/napari-ome-zarr`` (created on first use, see ``_peer.py``).

Every read is of a plane (or tile) not read before in that configuration, so caches only help
where they would in a viewer. Tiles are aligned to the 256-pixel chunk grid, as napari aligns the
region it asks for. Prints medians and the ratio to zarr-python.

Then the whole level (512 MiB by default), as napari reads it for a 3-D view of a single-scale
volume (``numpy.asarray(data[:, :, :])`` of the layer data, in both configurations), and as
Python users compute it (``open_pyramid(path)[0].compute()`` and ``numpy.asarray`` of it), side by
side with tensorstore and zarr-python reading the whole array directly, and napari-ome-zarr's layer
data (in its own process); and a large region not aligned to the chunks
(``level[region].compute()`` against zarr-python and tensorstore reading that region). Every
read starts from freshly opened layers (nothing cached; napari's dask cache cleared); best of
``--volume-repeat`` runs, interleaved, with the load average.

    .venv/bin/python benchmarks/bench_read.py [--repeat 7] [--volume-repeat 5] [--no-peer]
        [--no-volume] [--json]
    ./dev bench read
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peer import PEER_PACKAGE, peer_python  # noqa: E402

TARGETS = {"plane": 1.0, "tile": 2.0}  # plane: issue 14 (was 1.3)
#: whole level through the layer data: at most this many times tensorstore's time (issue 14),
#: and never slower than zarr-python reading the array directly
WHOLE_TARGET_TS = 1.5
TILE = 512
CONFIGS = ("napari", "dask defaults")


def make_volume(
    path: Path, shape: tuple[int, ...], chunks: tuple[int, ...], shards: tuple[int, ...]
) -> Path:
    """Write a sharded OME-Zarr 0.5 volume (one level, blosc-zstd) with smooth content."""
    import zarr
    from zarr.codecs import BloscCodec

    from napari_zarr_explorer.testing import blobs

    marker = path / ".complete"
    spec = [list(shape), list(chunks), list(shards), "blosc-zstd"]
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return path
    print(f"writing {path} ...", file=sys.stderr, flush=True)
    base = blobs(shape[1:], seed=7, n=24, dtype="uint16")
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    arr = root.create_array(
        "0",
        shape=shape,
        dtype="uint16",
        chunks=chunks,
        shards=shards,
        compressors=[BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")],
        dimension_names=["z", "y", "x"],
    )
    step = shards[0]
    for z0 in range(0, shape[0], step):
        block = np.stack(
            [np.roll(base, 9 * z, axis=1) for z in range(z0, min(z0 + step, shape[0]))]
        )
        arr[z0 : z0 + len(block)] = block
    axes = [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    root.attrs.put(
        {
            "ome": {
                "version": "0.5",
                "multiscales": [
                    {
                        "name": "volume",
                        "axes": axes,
                        "datasets": [
                            {
                                "path": "0",
                                "coordinateTransformations": [
                                    {"type": "scale", "scale": [2.0, 0.5, 0.5]}
                                ],
                            }
                        ],
                    }
                ],
            }
        }
    )
    marker.write_text(json.dumps(spec))
    return path


# The same code runs here (ours) and in the peer's environment (napari-ome-zarr).
COMMON = r'''
import contextlib, time
import numpy as np

@contextlib.contextmanager
def napari_slicing():
    """What napari's configure_dask sets while slicing: no task fusion, napari's dask cache."""
    import dask
    from napari.utils._dask_utils import resize_dask_cache

    with dask.config.set({"optimization.fuse.active": False}), resize_dask_cache():
        yield

def napari_read(level, z, ys, xs):
    """napari's two steps: the displayed region, then the plane; then numpy.asarray."""
    region = level[(slice(None), slice(*ys), slice(*xs))]
    return np.asarray(region[z])

def measure(level, jobs):
    """jobs: [config, kind, z, ys, xs] -> seconds per job, same order."""
    out = []
    for config, kind, z, ys, xs in jobs:
        ctx = napari_slicing() if config == "napari" else contextlib.nullcontext()
        with ctx:
            t0 = time.perf_counter()
            napari_read(level, z, ys, xs)
            out.append(time.perf_counter() - t0)
    return out
'''

PEER_SCRIPT = (
    COMMON
    + r"""
import contextlib, io, json, sys
from napari_ome_zarr._reader import napari_get_reader
path, jobs = sys.argv[1], json.loads(sys.argv[2])
with contextlib.redirect_stdout(io.StringIO()):
    layers = napari_get_reader(path)(path)
data = layers[0][0]
level0 = data[0] if isinstance(data, list) else data
warm = [[c, k, 0, ys, xs] for c, k, _, ys, xs in jobs[:2]]
measure(level0, warm)
print(json.dumps(measure(level0, jobs)))
"""
)

# The whole level through napari-ome-zarr's layer data, in its own process.
PEER_VOLUME_SCRIPT = (
    COMMON
    + r"""
import contextlib, io, json, sys
from napari.utils._dask_utils import _DASK_CACHE
from napari_ome_zarr._reader import napari_get_reader
path, repeat = sys.argv[1], int(sys.argv[2])
out = {"napari": [], "dask defaults": []}
for _ in range(repeat):
    for config in out:
        with contextlib.redirect_stdout(io.StringIO()):
            layers = napari_get_reader(path)(path)
        data = layers[0][0]
        level0 = data[0] if isinstance(data, list) else data
        _DASK_CACHE.cache.clear()
        ctx = napari_slicing() if config == "napari" else contextlib.nullcontext()
        with ctx:
            t0 = time.perf_counter()
            np.asarray(level0[:, :, :])
            out[config].append(time.perf_counter() - t0)
print(json.dumps(out))
"""
)

_ns: dict[str, Any] = {}
exec(compile(COMMON, "bench_read_common", "exec"), _ns)
napari_slicing: Callable[[], contextlib.AbstractContextManager[None]] = _ns["napari_slicing"]
measure: Callable[[Any, list[list[Any]]], list[float]] = _ns["measure"]


def plan_jobs(shape: tuple[int, ...], repeat: int, seed: int = 0) -> list[list[Any]]:
    """Reads in an interleaved order: each (configuration, kind) gets planes of its own."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    needed = len(CONFIGS) * 2 * repeat + 1
    if nz < needed:
        raise SystemExit(f"--shape needs at least {needed} planes for --repeat {repeat}")
    zs = iter(int(z) for z in rng.permutation(np.arange(1, nz)))  # plane 0 is for warming up
    jobs = []
    for _ in range(repeat):
        for config in CONFIGS:
            z = next(zs)
            jobs.append([config, "plane", z, [0, ny], [0, nx]])
            z = next(zs)
            y0 = int(rng.integers(0, (ny - TILE) // 256 + 1)) * 256
            x0 = int(rng.integers(0, (nx - TILE) // 256 + 1)) * 256
            jobs.append([config, "tile", z, [y0, y0 + TILE], [x0, x0 + TILE]])
    return jobs


def direct_reader(path: Path) -> Callable[[list[Any]], float]:
    import zarr

    arr = zarr.open_array(str(path / "0"), mode="r")

    def run(job: list[Any]) -> float:
        _, _, z, ys, xs = job
        t0 = time.perf_counter()
        arr[z, slice(*ys), slice(*xs)]
        return time.perf_counter() - t0

    return run


def peer(path: Path, jobs: list[list[Any]]) -> list[float] | None:
    py = peer_python()
    if py is None:
        return None
    res = subprocess.run(
        [str(py), "-c", PEER_SCRIPT, str(path), json.dumps(jobs)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if res.returncode != 0:
        print(f"{PEER_PACKAGE} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return [float(x) for x in json.loads(res.stdout.strip().splitlines()[-1])]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def peer_volume(path: Path, repeat: int) -> dict[str, float] | None:
    """Best seconds of napari-ome-zarr reading the whole level through its layer data."""
    py = peer_python()
    if py is None:
        return None
    res = subprocess.run(
        [str(py), "-c", PEER_VOLUME_SCRIPT, str(path), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if res.returncode != 0:
        print(f"{PEER_PACKAGE} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    times = json.loads(res.stdout.strip().splitlines()[-1])
    return {f"{PEER_PACKAGE}, layer data, {k}": min(v) for k, v in times.items()}


def whole_level(path: Path, repeat: int, with_peer: bool) -> dict[str, Any]:
    """Best seconds to read the whole level 0, every way, interleaved; and the load average."""
    import zarr

    from napari_zarr_explorer import open_pyramid
    from napari_zarr_explorer.layers import open_layers

    def layer_level0() -> Any:
        with _quiet():
            ((data, _, _),) = open_layers(str(path))  # fresh reader: nothing in the cache
        return data[0] if isinstance(data, list) else data

    def ours(config: str) -> float:
        level0 = layer_level0()
        ctx = napari_slicing() if config == "napari" else contextlib.nullcontext()
        with ctx:
            t0 = time.perf_counter()
            np.asarray(level0[:, :, :])
            return time.perf_counter() - t0

    def pyramid(how: str, region: tuple[slice, ...] | None = None) -> float:
        with _quiet():
            level0 = open_pyramid(str(path))[0]
        t0 = time.perf_counter()
        if region is not None:
            level0[region].compute()
        elif how == "compute":
            level0.compute()
        else:
            np.asarray(level0)
        return time.perf_counter() - t0

    arr = zarr.open_array(str(path / "0"), mode="r")
    region = pyramid_region(tuple(int(n) for n in arr.shape))

    def direct(sel: tuple[slice, ...] | None = None) -> float:
        t0 = time.perf_counter()
        arr[:] if sel is None else arr[sel]
        return time.perf_counter() - t0

    runs: dict[str, Callable[[], float]] = {
        "zarr-python": direct,
        "napari-zarr-explorer, layer data, napari": lambda: ours("napari"),
        "napari-zarr-explorer, layer data, dask defaults": lambda: ours("dask defaults"),
        "napari-zarr-explorer, open_pyramid()[0].compute()": lambda: pyramid("compute"),
        "napari-zarr-explorer, numpy.asarray(open_pyramid()[0])": lambda: pyramid("asarray"),
        "region: zarr-python": lambda: direct(region),
        "region: napari-zarr-explorer, open_pyramid()[0][region].compute()": lambda: pyramid(
            "compute", region
        ),
    }
    try:
        import tensorstore as ts

        store = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "0")}}
        ).result()

        def tensorstore(sel: tuple[slice, ...] | None = None) -> float:
            t0 = time.perf_counter()
            (store if sel is None else store[sel]).read().result()
            return time.perf_counter() - t0

        runs["tensorstore"] = tensorstore
        runs["region: tensorstore"] = lambda: tensorstore(region)
    except ImportError:
        print("tensorstore is not installed: no tensorstore column", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in runs}
    loads = []
    for _ in range(repeat):  # interleaved, so that all see the same machine load
        for name, run in runs.items():
            times[name].append(run())
        loads.append(os.getloadavg()[0])
    best: dict[str, float] = {k: min(v) for k, v in times.items() if not k.startswith("region: ")}
    part = {k[len("region: ") :]: min(v) for k, v in times.items() if k.startswith("region: ")}
    if with_peer:
        best.update(peer_volume(path, repeat) or {})
    return {
        "seconds": best,
        "region": [[s.start, s.stop] for s in region],
        "region seconds": part,
        "load": [round(min(loads), 1), round(max(loads), 1)],
    }


def pyramid_region(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A large region of the level not aligned to its chunks: 3/4 of the planes, 90 % of y, x."""
    nz, ny, nx = shape
    return (
        slice(nz // 8 + 1, nz - nz // 8 + 1),
        slice(ny // 20 + 3, ny - ny // 20 + 3),
        slice(nx // 20 + 5, nx - nx // 20 + 5),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shape", default="64,2048,2048", help="volume shape z,y,x")
    parser.add_argument("--chunks", default="1,256,256", help="inner chunk shape")
    parser.add_argument("--shards", default="8,1024,1024", help="shard shape")
    parser.add_argument("--repeat", type=int, default=7, help="reads per method and kind")
    parser.add_argument("--data", default=None, help="folder for the volume (default: a cache)")
    parser.add_argument("--no-peer", action="store_true", help=f"skip {PEER_PACKAGE}")
    parser.add_argument("--no-volume", action="store_true", help="skip the whole-volume read")
    parser.add_argument(
        "--volume-repeat", type=int, default=5, help="whole-level reads per method (best of)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    def ints(s: str) -> tuple[int, ...]:
        return tuple(int(v) for v in s.split(","))

    shape = ints(args.shape)
    assert len(shape) == 3, "--shape needs three values"
    folder = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "nze-bench-read"
    path = make_volume(folder / "volume.ome.zarr", shape, ints(args.chunks), ints(args.shards))
    jobs = plan_jobs(shape, args.repeat)

    import zarr

    from napari_zarr_explorer.layers import open_layers

    zarr.open_array(str(path / "0"), mode="r")[:]  # the whole volume in the OS cache
    with _quiet():
        ((data, _, _),) = open_layers(str(path))
    level0 = data[0] if isinstance(data, list) else data
    direct = direct_reader(path)
    warm = [[c, k, 0, ys, xs] for c, k, _, ys, xs in jobs[:4]]
    measure(level0, warm)
    for job in warm:
        direct(job)
    ours: list[float] = []
    base: list[float] = []
    for job in jobs:  # interleaved, so that both see the same machine load
        base.append(direct(job))
        ours.extend(measure(level0, [job]))
    theirs = None if args.no_peer else peer(path, jobs)

    def med(times: list[float] | None, config: str | None, kind: str) -> float | None:
        if times is None:
            return None
        sel = [t for t, j in zip(times, jobs, strict=True) if j[1] == kind]
        if config is not None:
            sel = [t for t, j in zip(times, jobs, strict=True) if j[1] == kind and j[0] == config]
        return statistics.median(sel)

    rows = []
    for kind in ("plane", "tile"):
        zarr_t = med(base, None, kind)
        assert zarr_t is not None
        row: dict[str, Any] = {"read": kind, "zarr-python ms": round(zarr_t * 1000, 1)}
        for who, times in (("napari-zarr-explorer", ours), (PEER_PACKAGE, theirs)):
            for config in CONFIGS:
                t = med(times, config, kind)
                row[f"{who}, {config} ms"] = None if t is None else round(t * 1000, 1)
                row[f"{who}, {config} x"] = None if t is None else round(t / zarr_t, 2)
        rows.append(row)
    volume = None if args.no_volume else whole_level(path, args.volume_repeat, not args.no_peer)

    info = {"shape": shape, "chunks": ints(args.chunks), "shards": ints(args.shards)}
    if args.json:
        print(json.dumps({"benchmark": "read", **info, "rows": rows, "volume": volume}, indent=2))
    else:
        print(
            f"level 0 of a {shape} uint16 volume, chunks {info['chunks']}, shards "
            f"{info['shards']}, blosc-zstd; median of {args.repeat} reads each, each of a plane "
            "not read before in that configuration"
        )
        print(
            "'napari': inside what napari's configure_dask sets (fusion off, napari's dask "
            "cache); 'dask defaults': as napari slices synchronously"
        )
        header = f"{'':46}{'plane':>18}{'512x512 tile':>18}"
        print(header)
        print("-" * len(header))
        cells = {r["read"]: r for r in rows}
        print(
            f"{'zarr-python (direct)':46}"
            + "".join(f"{cells[k]['zarr-python ms']:>12.1f} ms     " for k in ("plane", "tile"))
        )
        for who in ("napari-zarr-explorer", PEER_PACKAGE):
            for config in CONFIGS:
                line = f"{who + ', ' + config:46}"
                for k in ("plane", "tile"):
                    ms = cells[k][f"{who}, {config} ms"]
                    x = cells[k][f"{who}, {config} x"]
                    line += "       n/a        " if ms is None else f"{ms:>9.1f} ms {x:>5.2f}x"
                print(line)
        if volume is not None:
            secs = volume["seconds"]
            ts_t = secs.get("tensorstore")
            print(
                f"\nwhole level 0 ({math.prod(shape) * 2 / 2**20:.0f} MiB), best of "
                f"{args.volume_repeat}, load average {volume['load'][0]}-{volume['load'][1]}:"
            )
            print(f"{'':56}{'seconds':>9}{'x zarr-python':>15}{'x tensorstore':>15}")
            for name, t in sorted(secs.items(), key=lambda kv: kv[1]):
                x_ts = f"{t / ts_t:>14.2f}x" if ts_t else f"{'n/a':>15}"
                print(f"{name:56}{t:>9.2f}{t / secs['zarr-python']:>14.2f}x{x_ts}")
            part = volume["region seconds"]
            ts_p = part.get("tensorstore")
            print(f"\nregion {volume['region']} of level 0, same runs:")
            for name, t in sorted(part.items(), key=lambda kv: kv[1]):
                x_ts = f"{t / ts_p:>14.2f}x" if ts_p else f"{'n/a':>15}"
                print(f"{name:56}{t:>9.2f}{t / part['zarr-python']:>14.2f}x{x_ts}")
    ok = True
    if volume is not None:
        secs = volume["seconds"]
        for config in CONFIGS:
            t = secs[f"napari-zarr-explorer, layer data, {config}"]
            if "tensorstore" in secs and t > WHOLE_TARGET_TS * secs["tensorstore"]:
                ok = False
                print(
                    f"note: the whole level through the layer data ({config}) is "
                    f"{t / secs['tensorstore']:.2f}x tensorstore, above {WHOLE_TARGET_TS}x",
                    file=sys.stderr,
                )
            if t > secs["zarr-python"]:
                ok = False
                print(
                    f"note: the whole level through the layer data ({config}) is slower than "
                    "zarr-python",
                    file=sys.stderr,
                )
    if volume is not None:  # open_pyramid levels computed from Python: at most zarr-python's time
        secs, part = volume["seconds"], volume["region seconds"]
        checks = [(k, v, secs["zarr-python"]) for k, v in secs.items() if "open_pyramid" in k]
        checks += [(k, v, part["zarr-python"]) for k, v in part.items() if "open_pyramid" in k]
        for name, t, base in checks:
            if t > base:
                ok = False
                print(f"note: {name} is {t / base:.2f}x zarr-python, above 1.0x", file=sys.stderr)
    for r in rows:
        kind = r["read"]
        ours_x = r["napari-zarr-explorer, napari x"]
        peer_ms = r[f"{PEER_PACKAGE}, napari ms"]
        if ours_x > TARGETS[kind]:
            ok = False
            print(
                f"note: {kind} through napari is {ours_x}x zarr-python, above the target "
                f"{TARGETS[kind]}x",
                file=sys.stderr,
            )
        if peer_ms is not None and r["napari-zarr-explorer, napari ms"] >= peer_ms:
            ok = False
            print(f"note: {kind} through napari is not faster than {PEER_PACKAGE}", file=sys.stderr)
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
