"""Open a 384-well plate and show its zoomed-out overview: napari-zarr-explorer vs napari-ome-zarr.

Plates are built with ome-zarr-py (16 x 24 wells, 2 fields per well, 2 channels, 256x256 tiles,
3 levels): an OME 0.4 (Zarr v2) plate and an OME 0.5 (Zarr v3) sharded variant. They are cached
under ``benchmarks/.data`` (gitignored). Each reader, in a fresh process (imports done before the
clock starts):

1. opens the plate with its napari reader function;
2. reads the coarsest level of the mosaic, channel by channel, the way napari reads it (inside
   napari's ``configure_dask`` context: task fusion off, napari's chunk cache on), or, with
   ``--viewer``, in a real napari viewer that opens the URL and draws the overview.

Locally the plate is read from its folder; over HTTP from a loopback server adding ``--latency``
seconds (default 20 ms) to every request, which counts the requests.

napari-ome-zarr 0.10 runs in this environment (installed into ``benchmarks/.venvs`` as
``bench_remote.py`` does); napari-ome-zarr 0.11 needs Python 3.12 and gets a virtual environment
of its own (``benchmarks/.venvs/napari-ome-zarr-0.11``, created on first use; skipped with a note
when no Python 3.12 is found, or with ``--no-peer-011``).

Run: ``.venv/bin/python benchmarks/bench_plate.py [--latency 0.02] [--repeat 3] [--viewer]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

DATA_DIR = HERE / ".data"
PEER_011_DIR = HERE / ".venvs" / "napari-ome-zarr-0.11"
PEER_011_SPEC = "napari-ome-zarr==0.11.*"
TARGET_HTTP_S = 2.0
TARGET_HTTP_REQUESTS = 450
TARGET_LOCAL_S = 0.5
ROWS, COLS, FIELDS = 16, 24, 2
SHAPE = (2, 256, 256)  # c, y, x

CHILD = r"""
import json, os, sys, time, warnings
tool, url, viewer_mode = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
warnings.simplefilter("ignore")
import numpy as np, dask.array, zarr
# napari is running when a user opens a plate: what it imports is not part of the timing
import napari.layers, napari.utils.colormaps
from napari.utils._dask_utils import configure_dask
if viewer_mode:
    import napari
    viewer = napari.Viewer(show=False)
if tool == "ours":
    from napari_zarr_explorer._reader import napari_get_reader
    plugin = "napari-zarr-explorer"
else:
    import contextlib, io
    from napari_ome_zarr._reader import napari_get_reader
    plugin = "napari-ome-zarr"

def overview(layers):
    sums = []
    for data, meta, _kind in layers:
        levels = data if isinstance(data, list) else [data]
        coarse = levels[-1]
        caxis = meta.get("channel_axis")
        planes = ([coarse] if caxis is None else
                  [coarse[(slice(None),) * caxis + (i,)] for i in range(coarse.shape[caxis])])
        for p in planes:
            with configure_dask(levels)():
                idx = tuple(s // 2 for s in p.shape[:-2]) + (slice(None), slice(None))
                a = np.asarray(p[idx])
            sums.append(int(a.sum(dtype=np.int64)))  # no copy: the check costs nothing
        shape = [int(s) for s in coarse.shape]
        return sums, shape, [list(map(int, lv.shape)) for lv in levels]
    return sums, None, None

t0 = time.perf_counter()
if viewer_mode:
    if tool != "ours":
        with contextlib.redirect_stdout(io.StringIO()):
            viewer.open(url, plugin=plugin)
    else:
        viewer.open(url, plugin=plugin)
    viewer.reset_view()
    t1 = time.perf_counter()
    sums = [int(np.asarray(ly._slice.image.view).sum(dtype=np.int64))
            for ly in viewer.layers]
    shape = [list(ly.data[-1].shape) if ly.multiscale else list(ly.data.shape)
             for ly in viewer.layers]
    levels = [ly.data_level for ly in viewer.layers]
    t2 = time.perf_counter()
    viewer.close()
else:
    if tool == "ours":
        layers = napari_get_reader(url)(url)
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            layers = napari_get_reader(url)(url)
    t1 = time.perf_counter()
    sums, shape, levels = overview(layers)
    t2 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "overview": t2 - t1, "total": t2 - t0, "sums": sums,
                  "shape": shape, "levels": levels}))
"""


def build_plate(path: Path, version: str) -> Path:
    """Write the benchmark plate with ome-zarr-py (once; kept under ``benchmarks/.data``)."""
    if (path / ".done").exists():
        return path
    import numpy as np
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    if path.exists():
        shutil.rmtree(path)
    print(f"writing {path} with ome-zarr-py ...", flush=True)
    fmt = FormatV04() if version == "0.4" else FormatV05()
    zarr_format = 2 if version == "0.4" else 3
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    rows = [chr(ord("A") + r) for r in range(ROWS)]
    cols = [str(c + 1) for c in range(COLS)]
    wells = [f"{r}/{c}" for r in rows for c in cols]
    write_plate_metadata(root, rows, cols, wells, fmt=fmt, name="bench-plate")
    yy, xx = np.mgrid[0 : SHAPE[1], 0 : SHAPE[2]]
    # OME 0.4: ome-zarr-py's default chunks (one per level of a field); 0.5: sharded, one shard
    # per level of a field, inner chunks of one channel and 128x128 pixels
    storage: dict[str, object] = {}
    if version != "0.4":
        storage = {"chunks": (1, 128, 128), "shards": (2, 256, 256)}
    for wi, w in enumerate(wells):
        wg = root.require_group(w)
        write_well_metadata(wg, [str(f) for f in range(FIELDS)], fmt=fmt)
        for f in range(FIELDS):
            img = np.empty(SHAPE, dtype=np.uint16)
            for c in range(SHAPE[0]):
                # every well, field and channel is recognisable from its pixels
                img[c] = (wi * 8 + f * 2 + c) * 16 + ((yy + xx) % 16)
            write_image(
                img,
                wg.require_group(str(f)),
                axes="cyx",
                scale_factors=[2, 4],
                fmt=fmt,
                storage_options=dict(storage) or None,
            )
    (path / ".done").write_text(version)
    return path


def ensure_peer_010() -> Path:
    from bench_remote import ensure_peer

    return ensure_peer()


def ensure_peer_011() -> Path | None:
    """A Python 3.12 virtual environment with napari-ome-zarr 0.11 (None when impossible)."""
    py = PEER_011_DIR / "bin" / "python"
    marker = PEER_011_DIR / ".installed"
    if marker.exists():
        return py
    base = None
    try:
        base = subprocess.run(
            ["pyenv", "which", "python"],
            env={**os.environ, "PYENV_VERSION": _pyenv_312()},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError, LookupError):
        base = shutil.which("python3.12")
    if not base:
        return None
    print(f"creating {PEER_011_DIR} (Python 3.12, {PEER_011_SPEC}) ...", flush=True)
    subprocess.run([base, "-m", "venv", str(PEER_011_DIR)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", PEER_011_SPEC, "napari", "PyQt6", "aiohttp"],
        check=True,
    )
    marker.write_text(PEER_011_SPEC)
    return py


def _pyenv_312() -> str:
    out = subprocess.run(
        ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.split():
        if line.startswith("3.12"):
            return line
    raise LookupError("no Python 3.12")


def run_child(tool: str, url: str, viewer: bool) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte code is written, as an installed package has
    python = sys.executable
    if tool == "ours":
        env["PYTHONPATH"] = str(REPO / "src")
    elif tool == "napari-ome-zarr 0.10":
        python = str(ensure_peer_010())
    else:
        py = ensure_peer_011()
        assert py is not None
        python = str(py)
    cmd = [python, "-c", CHILD, tool, url, "1" if viewer else "0"]
    if viewer and shutil.which("xvfb-run") and not os.environ.get("DISPLAY"):
        cmd = ["xvfb-run", "-a", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader (median shown)")
    parser.add_argument("--viewer", action="store_true", help="a real napari viewer draws it")
    parser.add_argument("--no-peer-011", action="store_true", help="skip napari-ome-zarr 0.11")
    parser.add_argument("--no-peers", action="store_true", help="measure napari-zarr-explorer only")
    parser.add_argument("--variants", default="0.4,0.5-sharded")
    parser.add_argument("--modes", default="local,http")
    args = parser.parse_args(argv)
    from bench_remote import compile_sources
    from servers import serve_directory

    compile_sources()
    tools = ["ours"]
    if not args.no_peers:
        ensure_peer_010()
        tools.append("napari-ome-zarr 0.10")
        if not args.no_peer_011:
            if ensure_peer_011() is not None:
                tools.append("napari-ome-zarr 0.11")
            else:
                print("note: no Python 3.12 found; napari-ome-zarr 0.11 skipped")
    rows_out: list[tuple[str, str, str, float, float, float | None, object]] = []
    ok = True
    for variant in args.variants.split(","):
        version = "0.4" if variant == "0.4" else "0.5"
        plate = build_plate(DATA_DIR / f"plate-384-{variant}.ome.zarr", version)
        for mode in args.modes.split(","):
            results: dict[str, list[dict[str, object]]] = {t: [] for t in tools}
            with serve_directory(plate.parent, latency=args.latency) as srv:
                url = f"{srv.url}/{plate.name}" if mode == "http" else str(plate)
                for _ in range(args.repeat):
                    for tool in tools:
                        srv.clear_log()
                        try:
                            r = run_child(tool, url, args.viewer)
                        except RuntimeError as exc:
                            print(str(exc).splitlines()[-1][:300])
                            r = {"failed": True}
                        r["requests"] = len(srv.requests)
                        r["missing"] = sum(1 for q in srv.requests if q.status == 404)
                        results[tool].append(r)
            for tool in tools:
                good = [r for r in results[tool] if not r.get("failed")]
                if not good:
                    rows_out.append((variant, mode, tool, float("nan"), 0, None, "failed"))
                    continue

                def med(key: str, runs: list[dict[str, object]] = good) -> float:
                    return statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]

                reqs = med("requests") if mode == "http" else None
                rows_out.append(
                    (variant, mode, tool, med("total"), med("open"), reqs, good[0].get("missing"))
                )
            ours = [r for r in results["ours"] if not r.get("failed")]
            if ours:
                total = statistics.median(float(r["total"]) for r in ours)  # type: ignore[arg-type]
                if mode == "http":
                    reqs = statistics.median(int(r["requests"]) for r in ours)  # type: ignore[call-overload]
                    ok &= total <= TARGET_HTTP_S and reqs <= TARGET_HTTP_REQUESTS
                else:
                    ok &= total <= TARGET_LOCAL_S
            else:
                ok = False
    print(
        f"\n384-well plate, open + overview (coarsest level), {ROWS}x{COLS} wells x {FIELDS} "
        f"fields, HTTP at {args.latency * 1000:.0f} ms per request, median of {args.repeat}"
        + (", real viewer" if args.viewer else ", as napari slices")
    )
    header = (
        f"{'plate':15}{'mode':7}{'reader':22}{'total':>9}{'open':>9}{'requests':>10}"
        f"{'404s':>6}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for variant, mode, tool, total, opened, reqs, missing in rows_out:
        ref = next((t for v, m, n, t, *_ in rows_out if v == variant and m == mode and n == "ours"))
        ratio = f"{ref / total:.2f}" if tool != "ours" and total == total else ""
        print(
            f"{variant:15}{mode:7}{tool:22}{total * 1000:>7.0f}ms{opened * 1000:>7.0f}ms"
            + (f"{reqs:>10.0f}" if reqs is not None else f"{'-':>10}")
            + f"{missing!s:>6}{ratio:>8}"
        )
    print(
        f"\nratio = ours / peer (lower is better). Targets: HTTP <= {TARGET_HTTP_S} s and "
        f"<= {TARGET_HTTP_REQUESTS} requests; local <= {TARGET_LOCAL_S} s."
    )
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
