"""Painting a labels layer opened by our reader in a real napari viewer: edits stay in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import napari_zarr_explorer as nze
from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer.layers import open_layers

PLUGIN = "napari-zarr-explorer"


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_paint_undo_and_save_a_labels_layer_from_the_reader(make_napari_viewer, tmp_path):
    src = testing.write_ome_image(
        tmp_path / "cells.ome.zarr",
        shape=(48, 64),
        axes="yx",
        levels=1,
        chunks=(16, 16),
        labels=True,
        version="0.5",
    )
    files = _digest(src)
    viewer = make_napari_viewer()
    viewer.open(str(src), plugin=PLUGIN)
    (labels,) = [lay for lay in viewer.layers if lay._type_string == "labels"]
    assert isinstance(labels.data, pyramid.LazyArray)
    stored = np.array(np.asarray(labels.data))
    value = int(stored.max()) + 5

    # paint a brush stroke, the way the paint tool does
    labels.brush_size = 5
    labels.paint((20, 30), value, refresh=True)
    painted = np.asarray(labels.data) == value
    assert 10 < painted.sum() < 40 and painted[20, 30]
    assert labels.data[20, 30] == value
    # the displayed slice shows it
    np.testing.assert_array_equal(labels._slice.image.raw == value, painted)
    # and a fill (fancy indexes from np.nonzero)
    labels.data_setitem(np.nonzero(np.ones((3, 3), bool)), value + 1)  # rows/cols 0..2
    assert (np.asarray(labels.data)[:3, :3] == value + 1).all()

    labels.undo()
    np.testing.assert_array_equal(np.asarray(labels.data)[:3, :3], stored[:3, :3])
    assert (np.asarray(labels.data) == value).sum() == painted.sum()
    labels.undo()
    np.testing.assert_array_equal(np.asarray(labels.data), stored)
    np.testing.assert_array_equal(labels._slice.image.raw, stored)
    labels.redo()
    np.testing.assert_array_equal(np.asarray(labels.data) == value, painted)
    assert _digest(src) == files  # the store is never written

    # saving writes the edited labels
    want = np.array(np.asarray(labels.data))
    out = tmp_path / "edited.ome.zarr"
    nze.save(labels, out)
    ((saved, _, kind),) = open_layers(str(out))
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(saved), want)
    assert _digest(src) == files
