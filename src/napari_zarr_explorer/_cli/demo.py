"""``napari-zarr-explorer demo``: napari with the explorer docks open on the built-in sample."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

DEFAULT_SCREENSHOT = "napari-zarr-explorer-demo.png"
XVFB_SCREEN = "1600x1000x24"


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command to *subparsers*."""
    parser = subparsers.add_parser(
        "demo",
        help="open napari with the explorer on the built-in sample",
        description=(
            "Open napari with the built-in sample and the Explorer and Chunk map docks. "
            "With --screenshot, or when there is no display, render the whole window (under a "
            "virtual X server when needed), write it as a PNG and exit."
        ),
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        default=None,
        help=f"write a screenshot of the window to PNG and exit (default without a display: "
        f"{DEFAULT_SCREENSHOT})",
    )
    parser.set_defaults(func=run)


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    """Run the demo; return the exit code."""
    from napari_zarr_explorer._cli._common import err_console, print_error

    screenshot: str | None = args.screenshot
    if not _has_display():
        target = str(Path(screenshot or DEFAULT_SCREENSHOT).resolve())
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            print_error(
                "No display, and xvfb-run is not installed: cannot render napari. Install the "
                "'xvfb' package (or run ./dev demo, which sets it up), or run on a desktop."
            )
            return 1
        err_console.print("No display: rendering under a virtual X server (xvfb-run).")
        cmd = [
            xvfb,
            "-a",
            "-s",
            f"-screen 0 {XVFB_SCREEN}",
            sys.executable,
            "-m",
            "napari_zarr_explorer",
            "demo",
            "--screenshot",
            target,
        ]
        return subprocess.call(cmd)
    return _run_gui(screenshot)


def _run_gui(screenshot: str | None) -> int:
    import napari

    from napari_zarr_explorer._qt.demo import open_demo, save_window_screenshot
    from napari_zarr_explorer.testing import sample_path

    sample = sample_path()
    viewer = napari.Viewer(title="napari-zarr-explorer demo", show=True)
    viewer.window.resize(1500, 950)
    docks = open_demo(viewer, sample)
    if screenshot is None:
        napari.run()
        return 0
    path = save_window_screenshot(viewer, Path(screenshot), list(docks.values()))
    viewer.close()
    print(f"Screenshot written to {path}")
    return 0
