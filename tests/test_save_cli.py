"""``napari-zarr-explorer save INPUT... OUTPUT``: data files and stores to one OME-Zarr image."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import tifffile

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.layers import open_layers


def test_npy_tif_and_labels_to_one_image_then_a_store_to_ome_04(tmp_path, capsys):
    a = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    b = np.full((3, 40, 50), 7, np.uint16)
    seg = np.zeros((3, 40, 50), np.uint8)
    seg[1, 5:9, 5:9] = 2
    np.save(tmp_path / "a.npy", a)
    tifffile.imwrite(tmp_path / "b.tif", b, photometric="minisblack")
    np.save(tmp_path / "seg.npy", seg)
    out = tmp_path / "out.ome.zarr"
    args = [
        str(tmp_path / "a.npy"),
        str(tmp_path / "b.tif"),
        str(out),
        "--labels",
        str(tmp_path / "seg.npy"),
        "--scale",
        "2,0.5,0.5",
        "--axes",
        "z,y,x",
        "--units",
        "micrometer",
    ]
    assert main(["save", *args]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "OK, verified" in said
    # nothing was stored before a save: the size written and its ratio, no "?" placeholders
    assert "?" not in said and "stored ? ->" not in said
    assert "2 arrays, 3 groups" in said  # image and label image; root, labels, labels/seg
    assert re.search(r"stored [\d.]+ KiB \(compression ratio [\d.]+x; logical", said), said
    layers = open_layers(str(out))
    (img, kw, _), (lab, lkw, _) = layers
    assert kw["name"] == ["a", "b"] and kw["scale"] == (2.0, 0.5, 0.5)
    assert kw["units"] == ("micrometer",) * 3 and lkw["name"] == "seg"
    np.testing.assert_array_equal(np.asarray(img), np.stack([a, b]))
    np.testing.assert_array_equal(np.asarray(lab), seg)
    assert main(["save", str(tmp_path / "a.npy"), str(tmp_path / "one.ome.zarr")]) == 0
    one = " ".join(capsys.readouterr().out.split())
    assert "1 array, 1 group, " in one and "1 objects" not in one and "1 chunks" not in one
    # an existing output is refused, then replaced with --overwrite
    assert main(["save", *args]) == 1
    assert "already exists" in " ".join(capsys.readouterr().err.split())
    # a store as input, OME 0.4 output, JSON report
    out2 = tmp_path / "out04.ome.zarr"
    assert main(["save", str(out), str(out2), "--ome-version", "0.4", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["zarr_format"] == 2
    assert rep["source"] == "layers 'a', 'b', 'seg'"  # every channel named, not the first only
    (img2, kw2, _), (lab2, _, _) = open_layers(str(out2))
    assert kw2["name"] == ["a", "b"] and kw2["scale"] == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(img2), np.stack([a, b]))
    np.testing.assert_array_equal(np.asarray(lab2), seg)


def test_bad_inputs_give_one_clear_line(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"not numpy")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_zarr_explorer",
            "save",
            str(tmp_path / "x.npy"),
            str(tmp_path / "o.zarr"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    assert "x.npy: cannot read as a NumPy .npy file" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.zarr").exists()
