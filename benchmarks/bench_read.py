"""Read a full-resolution 2-D plane of a sharded 3-D OME-Zarr volume, three ways.

1. zarr-python directly (``zarr.open_array(level0)[z]``), the baseline;
2. napari-zarr-explorer: the level-0 dask array of the layer the reader returns;
3. napari-ome-zarr: the level-0 array of the layer its reader returns (run in its own virtual
   environment under ``benchmarks/.venvs/napari-ome-zarr``, created on first use; it shares this
   environment's packages through a ``.pth`` file, so our environment never sees its plugin).

Prints the median time per plane and the ratio to zarr-python.

    .venv/bin/python benchmarks/bench_read.py [--shape 32,2048,2048] [--repeat 9] [--no-peer]
    ./dev bench read
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venvs" / "napari-ome-zarr"
PEER_PACKAGE = "napari-ome-zarr"
TARGET_RATIO = 1.3


def make_volume(
    path: Path, shape: tuple[int, int, int], chunks: tuple[int, ...], shards: tuple[int, ...]
) -> Path:
    """Write a sharded OME-Zarr 0.5 volume (one level) with smooth content at *path*."""
    import zarr

    from napari_zarr_explorer.testing import blobs

    marker = path / ".complete"
    if marker.exists() and json.loads(marker.read_text()) == [shape, chunks, shards]:
        return path
    base = blobs(shape[1:], seed=7, n=24, dtype="uint16")
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    arr = root.create_array(
        "0",
        shape=shape,
        dtype="uint16",
        chunks=chunks,
        shards=shards,
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
    marker.write_text(json.dumps([shape, chunks, shards]))
    return path


def timed(fn: Callable[[int], Any], planes: list[int]) -> list[float]:
    """Time fn(z) for each plane; returns seconds per call."""
    out = []
    for z in planes:
        t0 = time.perf_counter()
        fn(z)
        out.append(time.perf_counter() - t0)
    return out


def ours(path: Path) -> Callable[[int], Any]:
    from napari_zarr_explorer.layers import open_layers

    ((data, _, _),) = open_layers(str(path))
    level0 = data[0] if isinstance(data, list) else data
    return lambda z: np.asarray(level0[z])


def direct(path: Path) -> Callable[[int], Any]:
    import zarr

    arr = zarr.open_array(str(path / "0"), mode="r")
    return lambda z: arr[z]


PEER_SCRIPT = r"""
import json, sys, time
import numpy as np
from napari_ome_zarr._reader import napari_get_reader
path, planes = sys.argv[1], json.loads(sys.argv[2])
layers = napari_get_reader(path)(path)
data = layers[0][0]
level0 = data[0] if isinstance(data, list) else data
np.asarray(level0[planes[0]])
out = []
for z in planes:
    t0 = time.perf_counter()
    np.asarray(level0[z])
    out.append(time.perf_counter() - t0)
print(json.dumps(out))
"""


def peer_python() -> Path | None:
    """The interpreter of the peer environment, created on first use; None if impossible."""
    py = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / ".ready").exists():
        print(f"creating {PEER_VENV} with {PEER_PACKAGE} ...", file=sys.stderr)
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(PEER_VENV)], check=True
            )
            purelib = sysconfig.get_paths()["purelib"]
            site = next((PEER_VENV / "lib").glob("python*/site-packages"))
            (site / "_main_env.pth").write_text(purelib + "\n")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--target",
                    str(site),
                    PEER_PACKAGE,
                ],
                check=True,
            )
            (PEER_VENV / ".ready").write_text("ok\n")
        except (subprocess.CalledProcessError, StopIteration, OSError) as exc:
            print(f"could not set up {PEER_PACKAGE}: {exc}", file=sys.stderr)
            return None
    return py


def peer(path: Path, planes: list[int]) -> list[float] | None:
    py = peer_python()
    if py is None:
        return None
    res = subprocess.run(
        [str(py), "-c", PEER_SCRIPT, str(path), json.dumps(planes)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if res.returncode != 0:
        print(f"{PEER_PACKAGE} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return [float(x) for x in json.loads(res.stdout.strip().splitlines()[-1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="32,2048,2048", help="volume shape z,y,x")
    parser.add_argument("--chunks", default="1,256,256", help="inner chunk shape")
    parser.add_argument("--shards", default="16,1024,1024", help="shard shape")
    parser.add_argument("--repeat", type=int, default=9, help="planes read per method")
    parser.add_argument("--data", default=None, help="folder for the volume (default: a cache)")
    parser.add_argument("--no-peer", action="store_true", help=f"skip {PEER_PACKAGE}")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    def ints(s: str) -> tuple[int, ...]:
        return tuple(int(v) for v in s.split(","))

    shape = ints(args.shape)
    assert len(shape) == 3, "--shape needs three values"
    folder = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "nze-bench-read"
    path = make_volume(
        folder / "volume.ome.zarr",
        shape,
        ints(args.chunks),  # type: ignore[arg-type]
        ints(args.shards),
    )
    rng = np.random.default_rng(0)
    planes = [int(z) for z in rng.integers(0, shape[0], size=args.repeat)]

    results: dict[str, list[float] | None] = {}
    fns = {"zarr-python (direct)": direct(path), "napari-zarr-explorer": ours(path)}
    for fn in fns.values():
        fn(planes[0])  # warm up (imports, thread pools, OS cache)
    # interleave so that both see the same machine load
    times: dict[str, list[float]] = {k: [] for k in fns}
    for z in planes:
        for name, fn in fns.items():
            times[name].extend(timed(fn, [z]))
    results.update(times)
    if not args.no_peer:
        results[PEER_PACKAGE] = peer(path, planes)

    base = statistics.median(times["zarr-python (direct)"])
    rows = []
    for name, ts in results.items():
        if ts is None:
            rows.append({"method": name, "median_ms": None, "ratio": None})
            continue
        med = statistics.median(ts)
        rows.append(
            {"method": name, "median_ms": round(med * 1000, 2), "ratio": round(med / base, 2)}
        )
    info = {
        "shape": shape,
        "chunks": ints(args.chunks),
        "shards": ints(args.shards),
        "plane_mib": round(shape[1] * shape[2] * 2 / 2**20, 1),
        "planes": len(planes),
    }
    if args.json:
        print(json.dumps({"benchmark": "read", **info, "results": rows}, indent=2))
    else:
        print(
            f"read one full-resolution z-plane of a sharded volume {shape} uint16, "
            f"chunks {info['chunks']}, shards {info['shards']} "
            f"({info['plane_mib']} MiB per plane, median of {len(planes)})"
        )
        print(f"{'method':<26}{'median ms':>12}{'x zarr-python':>16}")
        for r in rows:
            ms = "n/a" if r["median_ms"] is None else f"{r['median_ms']:.1f}"
            ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"{r['method']:<26}{ms:>12}{ratio:>16}")
    ours_ratio = next(r["ratio"] for r in rows if r["method"] == "napari-zarr-explorer")
    if ours_ratio is not None and ours_ratio > TARGET_RATIO:
        print(f"note: above the {TARGET_RATIO}x target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
