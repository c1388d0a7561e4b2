"""Time to first image over HTTP with latency: napari-zarr-explorer vs napari-ome-zarr.

An OME-Zarr 0.5 pyramid is served from a loopback HTTP server that adds 20 ms to every request.
For each reader, in a fresh process (imports done before the clock starts):

1. open: the napari reader function turns the URL into layer data;
2. read the coarsest level's central plane (all channels);
3. read one full-resolution 256x256 tile at the centre (all channels).

The server counts the requests. napari-ome-zarr 0.10 runs in the environment ``_peer.py`` makes,
``benchmarks/.venvs/napari-ome-zarr`` (its dependencies are all in our environment, so only the
plugin itself is installed there, and it never becomes a reader of our environment).
napari-ome-zarr 0.11 needs Python 3.12: it runs in a virtual environment of its own
(``benchmarks/.venvs/napari-ome-zarr-0.11``, made by ``bench_plate.py``; skipped when no Python
3.12 is found, or with ``--no-peer-011``).

Only napari is imported before the clock starts (it is running when a user opens a URL): the
clock starts before the plugin's reader module is imported (napari imports it when the first
file is opened), so whatever a reader imports to show the first image (zarr, the HTTP client)
is paid, as the user pays it. Our sources are compiled to byte code first, as an installed
package's are. The first image is read the way napari reads, inside napari's
``configure_dask`` context (task fusion off). Each run also reports whether ``distributed`` was
imported before the first image (dask's scheduler lookup imports it whenever a dask array is
computed without a configured scheduler), and whether zarr-python was imported before the
first image (the coarsest plane) was there.

``--labels`` adds ``labels/cells`` (an image-label with colours, as ome-zarr-py and ngff-zarr
write), ``--consolidated`` consolidates the metadata (zarr-python's ``consolidate_metadata``:
inline in the root ``zarr.json``); ``--ordinary`` also runs our reader with the zarr-free
first image turned off (``ours, zarr path``: what these images took before it handled them).
The time is still the image layer's first image (its coarse plane and a tile).

Run: ``.venv/bin/python benchmarks/bench_remote.py [--latency 0.02] [--repeat 3] [--labels]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

DATA_DIR = Path(tempfile.gettempdir()) / "nze-bench-remote"
TARGET_RATIO = 0.5
TARGET_SECONDS = 0.25

# The work done in each fresh process. argv: tool url
CHILD = r"""
import json, sys, time
tool, url = sys.argv[1], sys.argv[2]
import numpy as np
# napari is running when a user opens a URL: what it imports is not part of the timing
import napari.utils.colormaps, napari.layers
from napari.utils._dask_utils import configure_dask
import contextlib, io

# The clock starts before the plugin's reader module is imported: napari (npe2) imports it when
# the user opens the first file, so whatever it imports is part of the wait.
t0 = time.perf_counter()
if tool == "ours":
    from napari_zarr_explorer._reader import napari_get_reader
elif tool == "ours-zarr":
    from napari_zarr_explorer._reader import napari_get_reader
    import napari_zarr_explorer.layers as _layers
    _layers.open_first_image = lambda url: None  # the ordinary path, as before
else:
    from napari_ome_zarr._reader import napari_get_reader
t_import = time.perf_counter() - t0

def image_layers(layers):
    # napari-ome-zarr 0.11 returns one layer per channel, the others one layer with a channel
    # axis: napari shows the central plane of every image layer either way
    return [lay for lay in layers if (lay[2] if len(lay) > 2 else "image") == "image"]

def plane(layer, which, tile=None):
    data, meta = layer[0], layer[1]
    levels = data if isinstance(data, list) else [data]
    arr = levels[which]
    caxis = meta.get("channel_axis")
    # the whole plane or a centred tile of the central z, for all channels
    idx = [slice(None)] * arr.ndim
    for ax in range(arr.ndim - 2):
        if ax != caxis:
            idx[ax] = arr.shape[ax] // 2
    if tile:
        # the tile of the 256-pixel grid at the centre of the image
        for ax in (arr.ndim - 2, arr.ndim - 1):
            start = (arr.shape[ax] // 2) // tile * tile
            idx[ax] = slice(start, start + tile)
    with configure_dask(levels)():
        return np.asarray(arr[tuple(idx)])

if tool.startswith("ours"):
    layers = napari_get_reader(url)(url)
else:
    with contextlib.redirect_stdout(io.StringIO()):
        layers = napari_get_reader(url)(url)
t1 = time.perf_counter()
images = image_layers(layers)
a = [plane(lay, -1) for lay in images]
t2 = time.perf_counter()
zarr_first = "zarr" in sys.modules  # imported before the first image was there?
b = [plane(lay, 0, 256) for lay in images]
t3 = time.perf_counter()
print(json.dumps({"import": t_import, "open": t1 - t0, "coarse": t2 - t1, "tile": t3 - t2,
                  "total": t3 - t0,
                  "checksum": [sum(int(x.sum()) for x in a), sum(int(x.sum()) for x in b)],
                  "shapes": [[x.shape for x in a], [x.shape for x in b]],
                  "distributed": "distributed" in sys.modules, "zarr": zarr_first}))
"""


def ensure_peer() -> Path:
    """The interpreter of napari-ome-zarr 0.10's environment (``_peer.py``), made on first use."""
    from _peer import peer_python

    py = peer_python()
    if py is None:
        raise SystemExit("could not set up napari-ome-zarr 0.10 (see above)")
    return py


def ensure_data(
    shape: tuple[int, ...],
    levels: int,
    folder: Path,
    *,
    labels: bool = False,
    consolidated: bool = False,
) -> Path:
    from napari_zarr_explorer.testing import write_ome_image

    extra = ("-labels" if labels else "") + ("-cons" if consolidated else "")
    name = "x".join(map(str, shape)) + f"-l{levels}{extra}.ome.zarr"
    path = folder / name
    if not (path / "zarr.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"writing {path} ...", flush=True)
        write_ome_image(
            path,
            version="0.5",
            shape=shape,
            axes="czyx",
            levels=levels,
            chunks=(1, 1, 256, 256),
            shards=(1, 1, 1024, 1024),
            labels=labels,
        )
        if consolidated:
            import zarr

            zarr.consolidate_metadata(str(path))
    return path


def compile_sources() -> None:
    """Write the byte code of our sources, as an installed package has it (peers' is written by
    pip), so that no run pays for compiling them."""
    import compileall

    compileall.compile_dir(str(REPO / "src"), quiet=1)


def run_child(tool: str, url: str) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    python = sys.executable
    if tool.startswith("ours"):
        env["PYTHONPATH"] = str(REPO / "src")
    elif tool == "napari-ome-zarr":
        python = str(ensure_peer())
    else:
        from bench_plate import ensure_peer_011

        py = ensure_peer_011()
        assert py is not None
        python = str(py)
    proc = subprocess.run(
        [python, "-c", CHILD, _CHILD_TOOL.get(tool, "peer"), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_CHILD_TOOL = {"ours": "ours", "ours, zarr path": "ours-zarr"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per request")
    parser.add_argument("--repeat", type=int, default=5, help="runs per reader (median shown)")
    parser.add_argument("--shape", default="2,8,2048,2048", help="level-0 shape (czyx)")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--data", default=None, help="folder for the image (default: a cache)")
    parser.add_argument("--no-peer-011", action="store_true", help="skip napari-ome-zarr 0.11")
    parser.add_argument("--labels", action="store_true", help="the image has labels/cells")
    parser.add_argument("--consolidated", action="store_true", help="consolidated metadata")
    parser.add_argument(
        "--ordinary", action="store_true", help="also run ours without the zarr-free first image"
    )
    args = parser.parse_args(argv)
    from servers import serve_directory

    shape = tuple(int(s) for s in args.shape.split(","))
    data = ensure_data(
        shape,
        args.levels,
        Path(args.data) if args.data else DATA_DIR,
        labels=args.labels,
        consolidated=args.consolidated,
    )
    ensure_peer()
    compile_sources()
    tools = ["ours", "napari-ome-zarr"]
    if args.ordinary:
        tools.insert(1, "ours, zarr path")
    if not args.no_peer_011:
        sys.path.insert(0, str(HERE))
        from bench_plate import ensure_peer_011

        if ensure_peer_011() is not None:
            tools.append("napari-ome-zarr 0.11")
        else:
            print("note: no Python 3.12 found; napari-ome-zarr 0.11 skipped")
    runs: dict[str, list[dict[str, object]]] = {t: [] for t in tools}
    with serve_directory(data.parent, latency=args.latency) as srv:
        url = f"{srv.url}/{data.name}"
        for _ in range(args.repeat):
            for tool in tools:
                srv.clear_log()
                result = run_child(tool, url)
                result["requests"] = len(srv.requests)
                result["paths"] = srv.paths()
                runs[tool].append(result)
    checks = {t: runs[t][0]["checksum"] for t in tools}
    if any(c != checks["ours"] for c in checks.values()):
        print(f"warning: the readers returned different pixels: {checks}")

    def med(tool: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[tool])  # type: ignore[arg-type]

    def best(tool: str, key: str) -> float:
        return min(float(r[key]) for r in runs[tool])  # type: ignore[arg-type]

    print(
        f"\nTime to first image over HTTP, {args.latency * 1000:.0f} ms per request, "
        f"{data.name} (median of {args.repeat}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores)"
    )
    header = (
        f"{'':22}{'import':>9}{'open':>9}{'coarse':>9}{'tile':>9}{'total':>9}{'best':>9}"
        f"{'requests':>10}{'distributed':>13}{'zarr':>6}"
    )
    print(header)
    print("-" * len(header))
    for tool in tools:
        dist = "imported" if any(r.get("distributed") for r in runs[tool]) else "no"
        zarr_first = "yes" if any(r.get("zarr") for r in runs[tool]) else "no"
        print(
            f"{tool:22}"
            + "".join(
                f"{med(tool, k) * 1000:>7.0f}ms"
                for k in ("import", "open", "coarse", "tile", "total")
            )
            + f"{best(tool, 'total') * 1000:>7.0f}ms"
            + f"{med(tool, 'requests'):>10.0f}{dist:>13}{zarr_first:>6}"
        )
    print("(import: the reader module, within open; open: the reader until layer data)")
    print("(zarr: zarr-python imported before the coarse plane, the first image, was read)")
    # the same comparison with every reader's module imported before the clock (as if napari
    # had imported the plugins already): what is left is opening and reading
    peers = [t for t in tools if not t.startswith("ours")]
    for peer in tools[1:]:
        mine = med("ours", "total") - med("ours", "import")
        theirs = med(peer, "total") - med(peer, "import")
        print(f"without the reader module import: ours / {peer}: {mine / theirs:.2f}")
    ok = med("ours", "total") <= TARGET_SECONDS
    print(
        f"\nours: {med('ours', 'total'):.3f} s to the first image, best "
        f"{best('ours', 'total'):.3f} s (target <= {TARGET_SECONDS} s)"
    )
    for peer in tools[1:]:
        ratio = med("ours", "total") / med(peer, "total")
        fewer = med("ours", "requests") < med(peer, "requests")
        if peer in peers:
            ok = ok and ratio <= TARGET_RATIO and fewer
        best_ratio = best("ours", "total") / best(peer, "total")
        print(
            f"ratio ours / {peer}: {ratio:.2f} median, {best_ratio:.2f} best "
            f"(target <= {TARGET_RATIO}); "
            f"requests {med('ours', 'requests'):.0f} vs {med(peer, 'requests'):.0f}"
        )
    if os.environ.get("BENCH_VERBOSE") == "1":
        for tool in tools:
            print(tool, runs[tool][-1]["paths"])
    print("target met" if ok else "target NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
