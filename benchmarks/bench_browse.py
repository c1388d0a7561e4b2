"""Browse a large remote image in a real napari viewer: requests and bytes per step.

An 8192x8192 uint16 image is served from a loopback HTTP server, as OME-Zarr 0.4 (Zarr v2,
256x256 chunks) and as OME-Zarr 0.5 sharded (Zarr v3, 256x256 inner chunks in 2048x2048 shards),
each a pyramid down to 256x256. A real napari viewer (under Xvfb when there is no display) opens
it and walks a fixed path: open, zoom to 1:1 at the centre, four pans of 512 screen pixels to the
right, back to the centre, zoom out. Each reader runs in its own process, napari-ome-zarr in its
own environment (``benchmarks/.venvs/napari-ome-zarr``, see ``_peer.py``); see
``_browse_child.py`` for what is recorded per step.

Printed per step: the stored chunks in view at the level napari shows, and for each reader the
requests, bytes, requests for the shown level, whole chunk objects (whole shards when sharded)
fetched, and the longest the event loop stalled. Checks: we fetch at most the chunks in view (plus
shard indexes) of the shown level, never a whole shard, and at most napari-ome-zarr's requests at
every step. The server adds 20 ms to every request; each reader runs with napari slicing
synchronously (its default) and asynchronously (Settings > Experimental), and the time each step
takes to settle and the longest the event loop stalled are printed: with asynchronous slicing the
viewer stays responsive while tiles arrive. A last pass visits every screen of the
full-resolution level (128 MiB decoded) and reports the process's peak memory: ours with its
default chunk cache and with a 32 MiB one, napari-ome-zarr with napari's dask cache.

    .venv/bin/python benchmarks/bench_browse.py [--no-peer] [--json]
    ./dev bench browse
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _peer import PEER_PACKAGE, peer_python  # noqa: E402

SIZE = 8192
STEPS: list[list[Any]] = [
    ["open"],
    ["zoom"],
    ["pan", 512],
    ["pan", 512],
    ["pan", 512],
    ["pan", 512],
    ["back"],
    ["zoom out"],
]
SWEEP: list[list[Any]] = [["open"], ["zoom"], ["sweep"]]
CACHE_ENV = "NAPARI_ZARR_EXPLORER_CACHE_BYTES"
LATENCY = 0.02  # seconds the server adds to every request
DATASETS = {
    "OME 0.4 (v2), chunks 256x256": {"version": "0.4", "shards": None},
    "OME 0.5 sharded (v3), 256x256 in 2048x2048 shards": {
        "version": "0.5",
        "shards": (2048, 2048),
    },
}
PLUGINS = {"ours": "napari-zarr-explorer", PEER_PACKAGE: "napari-ome-zarr"}


def make_data(folder: Path) -> dict[str, Path]:
    from napari_zarr_explorer.testing import write_ome_image

    out = {}
    for label, spec in DATASETS.items():
        name = "v2.ome.zarr" if spec["shards"] is None else "sharded.ome.zarr"
        path = folder / name
        marker = path / ".complete"
        if not marker.exists():
            print(f"writing {path} ...", file=sys.stderr, flush=True)
            write_ome_image(
                path,
                version=str(spec["version"]),
                shape=(SIZE, SIZE),
                axes="yx",
                levels=6,
                chunks=(256, 256),
                shards=spec["shards"],  # type: ignore[arg-type]
            )
            marker.write_text("ok\n")
        out[label] = path
    return out


def run_child(
    tool: str,
    path: Path,
    *,
    async_: bool,
    latency: float,
    src: Path,
    steps: list[list[Any]] = STEPS,
    env_extra: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    if tool == "ours":
        python: Path | None = Path(sys.executable)
    else:
        python = peer_python()
        if python is None:
            return None
    cmd = [
        str(python),
        str(HERE / "_browse_child.py"),
        tool,
        PLUGINS[tool],
        str(path.parent),
        path.name,
        json.dumps(steps),
        "1" if async_ else "0",
        str(latency),
    ]
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1200x24", *cmd]
    with tempfile.TemporaryDirectory() as cfg:
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            # napari's settings of this run stay in a throwaway file
            "NAPARI_CONFIG": str(Path(cfg) / "settings.yaml"),
            **(env_extra or {}),
        }
        if tool == "ours":
            env["PYTHONPATH"] = os.pathsep.join(
                [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        print(f"{tool} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f}"


def print_table(label: str, runs: dict[str, dict[str, Any] | None]) -> bool:
    ours = runs.get("ours")
    peer = runs.get(PEER_PACKAGE)
    assert ours is not None
    print(f"\n{label}, canvas {ours['canvas'][1]}x{ours['canvas'][0]} px")
    header = (
        f"{'step':10}{'level':>6}{'in view':>8}"
        f"{'ours req':>10}{'MB':>7}{'lvl req':>8}{'whole':>6}"
        f"{'peer req':>10}{'MB':>7}{'lvl req':>8}{'whole':>6}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for i, row in enumerate(ours["rows"]):
        prow = peer["rows"][i] if peer else None
        line = (
            f"{row['step']:10}{row['level']:>6}{row['in_view']:>8}"
            f"{row['requests']:>10}{_mb(row['bytes']):>7}{row['level_requests']:>8}"
            f"{row['whole_objects'] if 'sharded' in label else '-':>6}"
        )
        if prow:
            line += (
                f"{prow['requests']:>10}{_mb(prow['bytes']):>7}{prow['level_requests']:>8}"
                f"{prow['whole_objects'] if 'sharded' in label else '-':>6}"
            )
        print(line)
        if row["step"] != "open":
            # at most the chunks in view, plus one shard index per shard in view when sharded
            bound = row["in_view"] * (2 if "sharded" in label else 1)
            if row["level_requests"] > bound:
                ok = False
                print(f"  ^ more requests than chunks in view ({row['in_view']})")
            if "sharded" in label and row["whole_objects"]:
                ok = False
                print("  ^ whole shards fetched")
        if prow and row["requests"] > prow["requests"]:
            ok = False
            print(f"  ^ more requests than {PEER_PACKAGE}")
    return ok


def print_timing(
    label: str, runs: dict[str, dict[str, dict[str, Any] | None]], latency: float
) -> None:
    """Seconds per step and the longest event-loop stall, napari slicing sync and async."""
    cols = [(tool, mode) for tool in runs for mode in ("sync", "async") if runs[tool].get(mode)]
    print(
        f"\n{label}: seconds until settled / longest event-loop stall (ms), "
        f"{latency * 1000:.0f} ms per request"
    )
    header = f"{'step':10}" + "".join(f"{f'{t} {m}':>26}" for t, m in cols)
    print(header)
    print("-" * len(header))
    first = runs["ours"]["sync"]
    assert first is not None
    for i, row in enumerate(first["rows"]):
        line = f"{row['step']:10}"
        for tool, mode in cols:
            r = runs[tool][mode]["rows"][i]  # type: ignore[index]
            line += f"{r['seconds']:>16.2f} s{r['max_stall_ms']:>6.0f} ms"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=None, help="folder for the images (default: a cache)")
    parser.add_argument("--no-peer", action="store_true", help=f"skip {PEER_PACKAGE}")
    parser.add_argument("--no-async", action="store_true", help="skip the asynchronous pass")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory sweep")
    parser.add_argument(
        "--latency", type=float, default=LATENCY, help="seconds the server adds to every request"
    )
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    parser.add_argument(
        "--src",
        default=str(REPO / "src"),
        help="source folder of the napari-zarr-explorer to measure (e.g. an older checkout's)",
    )
    args = parser.parse_args(argv)
    folder = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "nze-bench-browse"
    data = make_data(folder)
    tools = ["ours"] + ([] if args.no_peer else [PEER_PACKAGE])
    everything: dict[str, Any] = {}
    ok = True
    src = Path(args.src)
    for label, path in data.items():
        runs: dict[str, dict[str, dict[str, Any] | None]] = {t: {} for t in tools}
        for tool in tools:
            for mode in ("sync",) + (() if args.no_async else ("async",)):
                runs[tool][mode] = run_child(
                    tool, path, async_=mode == "async", latency=args.latency, src=src
                )
        if runs["ours"]["sync"] is None:
            return 1
        everything[label] = runs
        ok = print_table(label, {t: runs[t]["sync"] for t in tools}) and ok
        print_timing(label, runs, args.latency)
    if not args.no_memory:
        label, path = next(iter(data.items()))
        mem: dict[str, dict[str, Any] | None] = {}
        for who, tool, extra in (
            ("ours (cache 1 GiB)", "ours", {CACHE_ENV: "1G"}),
            ("ours (cache 32 MiB)", "ours", {CACHE_ENV: "32M"}),
            (PEER_PACKAGE + " (napari's dask cache)", PEER_PACKAGE, {}),
        ):
            if tool in tools:
                mem[who] = run_child(
                    tool, path, async_=False, latency=0.0, src=src, steps=SWEEP, env_extra=extra
                )
        everything["memory"] = mem
        print(
            f"\nmemory: {label}, every screen of level 0 ({SIZE}x{SIZE} uint16, "
            f"{SIZE * SIZE * 2 / 2**20:.0f} MiB decoded) visited in turn at 1:1"
        )
        print(f"{'':44}{'RSS after zoom':>16}{'peak in sweep':>15}{'requests':>10}")
        for who, res in mem.items():
            if res is None:
                continue
            zoom, sweep = res["rows"][1], res["rows"][2]
            print(
                f"{who:44}{zoom['rss_mb']:>13.0f} MB{sweep['rss_mb']:>12.0f} MB"
                f"{sweep['requests']:>10}"
            )
    if args.json:
        print(json.dumps(everything, indent=1))
    print("\ntargets met" if ok else "\ntargets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
