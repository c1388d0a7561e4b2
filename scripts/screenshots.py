"""Render the documentation screenshots of the docks on the built-in sample.

    .venv/bin/python scripts/screenshots.py [--out docs/images]

Writes ``demo.png`` (the whole window), ``explorer.png``, ``chunkmap.png`` and ``recompress.png``.
Needs a display: without one it runs itself again under a virtual X server (``xvfb-run``); Qt's
``offscreen`` platform has no OpenGL, which napari's canvas needs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _dock_of(widget):
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    return parent or widget


def _save(widget, path: Path) -> None:
    from napari_zarr_explorer._qt.demo import wait_idle

    wait_idle([])
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"wrote {path}")


def render(out: Path) -> int:
    import napari

    from napari_zarr_explorer._qt._common import camera_of
    from napari_zarr_explorer._qt.demo import open_demo, save_window_screenshot, wait_idle
    from napari_zarr_explorer.testing import sample_path

    out.mkdir(parents=True, exist_ok=True)
    sample = sample_path()
    viewer = napari.Viewer(title="napari-zarr-explorer", show=True)
    viewer.window.resize(1500, 950)
    docks = open_demo(viewer, sample)
    explorer, chunk_map, recompress = docks["explorer"], docks["chunk_map"], docks["recompress"]
    print(f"wrote {save_window_screenshot(viewer, out / 'demo.png', list(docks.values()))}")

    # Explorer: a sharded pyramid level and its codec pipeline
    explorer_dock = _dock_of(explorer)
    explorer_dock.setFloating(True)
    explorer_dock.resize(560, 720)
    explorer.select_path("0")
    explorer.tabs.setCurrentIndex(1)
    wait_idle([explorer])
    _save(explorer_dock, out / "explorer.png")
    explorer_dock.setFloating(False)

    # Chunk map: zoomed in so the chunk and shard grid show, coloured by stored bytes
    _dock_of(chunk_map).raise_()
    chunk_map.set_mode("bytes")
    layer = chunk_map.source
    camera = camera_of(viewer)
    camera.center = tuple(layer.data_to_world([16, 200, 200]))[1:]
    camera.zoom = camera.zoom * 2.5
    wait_idle([chunk_map])
    chunk_map._update_view()
    wait_idle([chunk_map])
    path = save_window_screenshot(viewer, out / "chunkmap.png", [chunk_map])
    print(f"wrote {path}")

    # Recompress: an estimate of a few encodings on the sample
    explorer.select_path("")
    recompress_dock = _dock_of(recompress)
    recompress_dock.setFloating(True)
    recompress_dock.resize(520, 640)
    with tempfile.TemporaryDirectory() as tmp:
        recompress.destination_edit.setText(str(Path(tmp) / "sample-recompressed.ome.zarr"))
        recompress.estimate()
        wait_idle([recompress], timeout=120)
        recompress.run()
        wait_idle([recompress], timeout=300)
        _save(recompress_dock, out / "recompress.png")
    viewer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print("No display and no xvfb-run: install the 'xvfb' package.", file=sys.stderr)
            return 1
        cmd = [
            xvfb,
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            sys.executable,
            __file__,
            "--out",
            str(args.out),
        ]
        return subprocess.call(cmd)
    return render(args.out.resolve()) or render_save(args.out.resolve())


def render_save(out: Path) -> int:
    """The Save as OME-Zarr dock on the sample's image and labels (``save.png``)."""
    import napari

    from napari_zarr_explorer._qt.demo import wait_idle
    from napari_zarr_explorer._qt.save import SaveWidget
    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.testing import sample_path

    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-zarr-explorer", show=True)
    viewer.window.resize(1500, 950)
    for data, kwargs, kind in open_layers(str(sample_path())):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = SaveWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Save as OME-Zarr", area="right")
    dock.setFloating(True)
    dock.resize(520, 560)
    widget.form.path.value = "/data/experiment-42/cells.ome.zarr"  # shown, never written
    widget.form.codec.value = "blosc-zstd"
    wait_idle([])
    _save(dock, out / "save.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
