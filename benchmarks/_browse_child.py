"""One browsing session in a real napari viewer (run by ``bench_browse.py`` in its own process).

    python _browse_child.py TOOL PLUGIN ROOT NAME STEPS_JSON ASYNC LATENCY

Serves ROOT on a loopback HTTP server (``tests/servers.py``), opens ``NAME`` in a napari viewer
with the reader PLUGIN, then walks the steps: ``open``, ``zoom`` (1:1 at the centre), ``pan`` (by
a number of screen pixels along x), ``back`` (to the centre of the zoom), ``zoom out`` and
``sweep`` (every screen of the full-resolution level in turn, for the memory it takes). After
each step it lets the viewer settle (layer loaded, no request for a while) and records the
requests and bytes the server saw, the stored chunks in view, the longest the event loop went
without handling a timer (a frozen viewer), and the process's resident memory. Prints one JSON
document on the last line of its output.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SETTLE_QUIET = 0.6  # seconds without a request and with the slice loaded: the step is done
STEP_TIMEOUT = 120.0


def _bytes(root: Path, rec: Any) -> int:
    path = root / rec.path
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if rec.status == 200:
        return size if rec.method == "GET" else 0
    if rec.status != 206 or not rec.range:
        return 0
    spec = rec.range.split("=", 1)[1]
    lo, _, hi = spec.partition("-")
    if not lo:  # suffix
        return min(int(hi), size)
    end = min(int(hi), size - 1) if hi else size - 1
    return max(end - int(lo) + 1, 0)


def main() -> int:
    tool, plugin, root_s, name, steps_s, async_s, latency_s = sys.argv[1:8]
    root = Path(root_s)
    steps: list[list[Any]] = json.loads(steps_s)

    import napari
    import numpy as np
    import psutil
    from napari.settings import get_settings
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from servers import LoopbackHTTPServer

    proc = psutil.Process()
    server = LoopbackHTTPServer(root, latency=float(latency_s))
    viewer = napari.Viewer(show=True)
    get_settings().experimental.async_ = async_s == "1"
    assert viewer._layer_slicer._force_sync == (async_s != "1")
    qt_window = viewer.window._qt_window
    qt_window.resize(1400, 1000)
    app = QApplication.instance()
    assert app is not None

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    spin(1.0)
    canvas = viewer.window._qt_viewer.canvas
    canvas_size = [int(v) for v in canvas.size]

    layer: Any = None

    def settle(quiet: float, t0: float) -> float:
        """Handle events until the slice is loaded and no request came for *quiet* seconds."""
        last_n, last_t = -1, time.perf_counter()
        while True:
            app.processEvents()
            time.sleep(0.002)
            now = time.perf_counter()
            n = len(server.requests)
            if n != last_n:
                last_n, last_t = n, now
            if layer.loaded and now - last_t > quiet:
                return last_t
            if now - t0 > STEP_TIMEOUT:
                print(f"a step did not settle in {STEP_TIMEOUT} s", file=sys.stderr)
                return last_t

    peak = 0
    rows = []
    url = f"{server.url}/{name}"
    centre: tuple[float, float] | None = None
    for step in steps:
        kind = step[0]
        peak = 0
        server.clear_log()
        ticks.clear()
        t0 = time.perf_counter()
        if kind == "open":
            viewer.open(url, plugin=plugin)
            layer = viewer.layers[0]
        elif kind == "zoom":
            world = np.asarray(layer.extent.world)[:, -2:]
            centre = tuple(float(v) for v in world.mean(axis=0))
            viewer.scene.camera.center = centre
            viewer.scene.camera.zoom = 1.0 / float(layer.scale[-1])
        elif kind == "pan":
            cy, cx = viewer.scene.camera.center[-2:]
            viewer.scene.camera.center = (cy, cx + float(step[1]) * float(layer.scale[-1]))
        elif kind == "back":
            assert centre is not None
            viewer.scene.camera.center = centre
        elif kind == "zoom out":
            viewer.reset_view()
        elif kind == "sweep":
            # visit the whole full-resolution level, one screen after the other
            peak = proc.memory_info().rss
            h, w = canvas.size
            world = np.asarray(layer.extent.world)[:, -2:]
            s = float(layer.scale[-1])
            for cy in np.arange(world[0][0] + h * s / 2, world[1][0], h * s):
                for cx in np.arange(world[0][1] + w * s / 2, world[1][1], w * s):
                    viewer.scene.camera.center = (float(cy), float(cx))
                    settle(0.3, time.perf_counter())
                    peak = max(peak, proc.memory_info().rss)
        else:
            raise SystemExit(f"unknown step {kind!r}")
        last_t = settle(SETTLE_QUIET, t0)
        elapsed = last_t - t0
        stamps = [t0, *ticks, time.perf_counter()]
        stall = max(b - a for a, b in itertools.pairwise(stamps))
        recs = list(server.requests)
        level = int(layer.data_level)
        corners = np.asarray(layer.corner_pixels)
        chunks = _stored_chunks(root / name / str(level))
        in_view = _chunks_in_view(viewer, layer, level, chunks)
        rows.append(
            {
                "step": " ".join(str(s) for s in step),
                "requests": len(recs),
                "bytes": sum(_bytes(root, r) for r in recs),
                "level": level,
                "level_requests": sum(
                    1 for r in recs if r.path.split("/")[1:2] == [str(level)] and _is_chunk(r.path)
                ),
                "whole_objects": sum(
                    1 for r in recs if r.status == 200 and r.method == "GET" and _is_chunk(r.path)
                ),
                "in_view": in_view,
                "corners": corners[:, -2:].tolist(),
                "seconds": round(elapsed, 3),
                "max_stall_ms": round(stall * 1000, 1),
                "rss_mb": round(max(peak, proc.memory_info().rss) / 2**20, 1),
            }
        )
    timer.stop()
    result = {"tool": tool, "async": async_s == "1", "canvas": canvas_size, "rows": rows}
    viewer.close()
    server.close()
    print(json.dumps(result))
    return 0


def _is_chunk(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return last not in {".zarray", ".zattrs", ".zgroup", "zarr.json", ".zmetadata"}


def _stored_chunks(array: Path) -> tuple[int, ...]:
    """The stored chunk shape (inner chunks when sharded) from the array's metadata."""
    if (array / ".zarray").exists():
        return tuple(json.loads((array / ".zarray").read_text())["chunks"])
    doc = json.loads((array / "zarr.json").read_text())
    codecs = doc.get("codecs") or []
    if codecs and codecs[0].get("name") == "sharding_indexed":
        return tuple(codecs[0]["configuration"]["chunk_shape"])
    return tuple(doc["chunk_grid"]["configuration"]["chunk_shape"])


def _chunks_in_view(viewer: Any, layer: Any, level: int, chunks: tuple[int, ...]) -> int:
    """Stored chunks (inner chunks when sharded) of *level* under the visible canvas."""
    import numpy as np

    cy, cx = viewer.scene.camera.center[-2:]
    zoom = float(viewer.scene.camera.zoom)
    h, w = viewer.window._qt_viewer.canvas.size
    scale = np.asarray(layer.scale[-2:], dtype=float)
    down = np.asarray(layer.downsample_factors[level][-2:], dtype=float)
    shape = np.asarray(
        (layer.data[level] if layer.multiscale else layer.data).shape[-2:], dtype=float
    )
    translate = np.asarray(layer.translate[-2:], dtype=float)
    lo = (np.array([cy - h / 2 / zoom, cx - w / 2 / zoom]) - translate) / scale / down
    hi = (np.array([cy + h / 2 / zoom, cx + w / 2 / zoom]) - translate) / scale / down
    lo = np.clip(np.floor(lo), 0, shape - 1)
    hi = np.clip(np.ceil(hi) - 1, 0, shape - 1)
    cy_, cx_ = chunks[-2:]
    ny = int(hi[0] // cy_ - lo[0] // cy_ + 1)
    nx = int(hi[1] // cx_ - lo[1] // cx_ + 1)
    return ny * nx


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
