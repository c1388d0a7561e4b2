"""The ``demo`` command renders the window with the docks on the sample and exits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_demo_writes_a_screenshot(tmp_path, sample, screenshot_dir):
    target = tmp_path / "demo.png"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", "demo", "--screenshot", str(target)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(target) in proc.stdout
    from imageio.v3 import imread

    image = imread(target)
    assert image.shape[0] > 600 and image.shape[1] > 1000
    # the window is not blank: the canvas and the docks have content
    assert np.asarray(image).std() > 10
    (screenshot_dir / "demo.png").write_bytes(target.read_bytes())
