"""Render the documentation screenshots of the docks and the notebook explorer.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--no-notebook]

Writes ``demo.png`` and ``docks-1280x800.png`` (the window at 1280x800 with the docks as tabs),
``explorer.png``, ``chunkmap.png``, ``recompress.png`` (one dock each), ``follow-drop.png`` (the
Explorer following a store dropped on the window) and ``notebook.png`` (``nze.explore`` in an
executed notebook, rendered to HTML and photographed by headless Chromium: Debian's
``chromium`` package, and ``npm`` to fetch the ipywidgets HTML manager once into the cache).
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


def _drop(viewer, path: Path) -> None:
    """A real drag-enter and drop of *path* on the window, as from a file manager."""
    from qtpy.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from qtpy.QtGui import QDragEnterEvent, QDropEvent
    from qtpy.QtWidgets import QApplication

    qt_viewer = viewer.window._qt_viewer
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action, button = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    modifiers = Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(
        qt_viewer, QDragEnterEvent(QPoint(20, 20), action, mime, button, modifiers)
    )
    QApplication.sendEvent(qt_viewer, QDropEvent(QPointF(20, 20), action, mime, button, modifiers))


def render_laptop(out: Path) -> None:
    """The three docks in a 1280x800 window, and the Explorer following a dropped store."""
    import napari
    from napari.settings import get_settings

    from napari_zarr_explorer._qt._reader_offer import PATTERN, PLUGIN
    from napari_zarr_explorer._qt.demo import save_window_screenshot, wait_idle
    from napari_zarr_explorer.testing import sample_path

    sample = sample_path()
    settings = get_settings()
    saved = dict(settings.plugins.extension2reader)
    settings.plugins.extension2reader = {**saved, PATTERN: PLUGIN}  # no reader question
    try:
        viewer = napari.Viewer(title="napari-zarr-explorer", show=True)
        viewer.window._qt_window.resize(1280, 800)
        _, explorer = viewer.window.add_plugin_dock_widget(PLUGIN, "Explorer")
        wait_idle([explorer])
        _drop(viewer, sample)
        wait_idle([explorer], timeout=60)
        deadline = 200
        while explorer.url is None and deadline:
            wait_idle([explorer])
            deadline -= 1
        explorer.tabs.setCurrentIndex(3)  # OME: channels, levels, axes of what was dropped
        viewer.reset_view()
        path = save_window_screenshot(viewer, out / "follow-drop.png", [explorer])
        print(f"wrote {path}")
        _, chunk_map = viewer.window.add_plugin_dock_widget(PLUGIN, "Chunk map")
        _, recompress = viewer.window.add_plugin_dock_widget(PLUGIN, "Recompress")
        wait_idle([explorer, chunk_map, recompress])
        _dock_of(chunk_map).raise_()
        wait_idle([chunk_map], timeout=60)
        window = viewer.window._qt_window
        window.resize(1280, 800)
        wait_idle([chunk_map])
        size = window.size()
        print(f"window {size.width()}x{size.height()}")
        path = save_window_screenshot(viewer, out / "docks-1280x800.png", [chunk_map])
        print(f"wrote {path}")
        viewer.close()
    finally:
        settings.plugins.extension2reader = saved


def render(out: Path) -> int:
    import napari

    from napari_zarr_explorer._qt._common import camera_of
    from napari_zarr_explorer._qt.demo import open_demo, save_window_screenshot, wait_idle
    from napari_zarr_explorer.testing import sample_path

    out.mkdir(parents=True, exist_ok=True)
    sample = sample_path()
    viewer = napari.Viewer(title="napari-zarr-explorer", show=True)
    viewer.window._qt_window.resize(1280, 800)
    docks = open_demo(viewer, sample)
    explorer, chunk_map, recompress = docks["explorer"], docks["chunk_map"], docks["recompress"]
    viewer.window._qt_window.resize(1280, 800)
    wait_idle(list(docks.values()))
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
    viewer.layers.selection.active = viewer.layers["nuclei"]
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
    recompress_dock.resize(440, 700)
    with tempfile.TemporaryDirectory() as tmp:
        recompress.form.output.value = str(Path(tmp) / "sample-recompressed.ome.zarr")
        recompress.estimate()
        wait_idle([recompress], timeout=120)
        recompress.run()
        wait_idle([recompress], timeout=300)
        _save(recompress_dock, out / "recompress.png")
    viewer.close()
    render_laptop(out)
    return 0


# --------------------------------------------------------------------------------------------
# the notebook explorer, through a real kernel, nbconvert and headless Chromium

_NPM_PACKAGES = {
    "html-manager": ("@jupyter-widgets/html-manager@1.0.15", "dist/embed-amd.js"),
    "requirejs": ("requirejs@2.3.7", "require.js"),
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _npm_file(name: str) -> Path:
    """A file of an npm package, fetched once into the user cache with ``npm pack``."""
    import tarfile

    spec, inner = _NPM_PACKAGES[name]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = cache / "napari-zarr-explorer" / "npm" / spec.replace("/", "_").replace("@", "")
    target = folder / "package" / inner
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed once to fetch the ipywidgets HTML manager")
    subprocess.run([npm, "pack", spec, "--silent"], cwd=folder, check=True)
    for archive in folder.glob("*.tgz"):
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return target


def render_notebook(out: Path) -> None:
    """Execute a notebook calling ``nze.explore``, render it to HTML, photograph it."""
    try:
        import nbclient
        import nbformat
        from nbconvert import HTMLExporter
    except ImportError as exc:
        raise SystemExit(
            f"The notebook picture needs {exc.name}: install nbconvert (pip install nbconvert), "
            "or run with --no-notebook."
        ) from None

    from napari_zarr_explorer.testing import sample_path

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: install Debian's 'chromium' package")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import napari_zarr_explorer as nze\n\n"
            f"explorer = nze.explore({str(sample_path())!r})\n"
            'explorer.select("0")\n'
            "explorer.map_chunks(wait=True)\n"
            "explorer"
        )
    ]
    with tempfile.TemporaryDirectory() as tmp:
        nbclient.NotebookClient(nb, timeout=300, store_widget_state=True).execute()
        exporter = HTMLExporter(
            template_name="lab",
            require_js_url=_npm_file("requirejs").as_uri(),
            widget_renderer_url=_npm_file("html-manager").as_uri(),
            mathjax_url="",
            exclude_input_prompt=True,
            exclude_output_prompt=True,
        )
        body, _ = exporter.from_notebook_node(nb)
        page = Path(tmp) / "explore.html"
        page.write_text(body, encoding="utf-8")
        profile = Path(tmp) / "profile"
        shot = out / "notebook.png"
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1280,900",
                "--virtual-time-budget=15000",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=180,
        )
    print(f"wrote {shot}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--no-notebook", action="store_true", help="skip notebook.png")
    parser.add_argument("--only-notebook", action="store_true", help="only notebook.png")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if "NAPARI_ZARR_EXPLORER_CONFIG_DIR" not in os.environ:
        # pictures without the first-run offer, and the user's recent stores left alone
        config = Path(tempfile.mkdtemp(prefix="nze-screenshots-"))
        (config / "settings.json").write_text('{"default_reader": "no"}', encoding="utf-8")
        os.environ["NAPARI_ZARR_EXPLORER_CONFIG_DIR"] = str(config)
    if args.only_notebook:
        render_notebook(out)
        return 0
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
            "-screen 0 1920x1200x24",
            sys.executable,
            __file__,
            "--out",
            str(out),
            *(["--no-notebook"] if args.no_notebook else []),
        ]
        return subprocess.call(cmd)
    code = render(out) or render_save(out)
    if not args.no_notebook:
        render_notebook(out)
    return code


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
    widget.form.compressor.value = "blosc-zstd"
    wait_idle([])
    _save(dock, out / "save.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
