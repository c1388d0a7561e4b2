"""Small OME-NGFF 0.6 stores written with zarr-python for the tests (images and scenes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

VERSION = "0.6rc0"
YX = [
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def pattern(shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """A uint16 array whose every value is different (so a pixel is recognisable)."""
    return (np.arange(int(np.prod(shape)), dtype=np.uint16) + offset).reshape(shape)


def write_image(
    root: Path,
    path: str,
    *,
    shape: tuple[int, ...] = (16, 32),
    axes: list[dict[str, Any]] | None = None,
    levels: list[tuple[list[float], list[float] | None]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    systems: list[dict[str, Any]] | None = None,
    offset: int = 0,
) -> dict[str, np.ndarray]:
    """Write a 0.6 multiscale image at ``root/path``; return its levels' data by path.

    *levels* lists ``(scale, translation)`` per level (each halves y and x after the first).
    """
    axes = axes or YX
    levels = levels or [([0.5, 0.5], None), ([1.0, 1.0], [0.25, 0.25])]
    group = zarr.open_group(root / path if path else root, mode="w", zarr_format=3)
    data: dict[str, np.ndarray] = {}
    datasets = []
    shp = shape
    for i, (scale, trans) in enumerate(levels):
        arr = pattern(shp, offset)
        a = group.create_array(f"s{i}", shape=shp, dtype="uint16", chunks=shp)
        a[...] = arr
        data[f"s{i}"] = arr
        ts: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if trans is not None:
            ts.append({"type": "translation", "translation": trans})
        t: dict[str, Any] = ts[0] if len(ts) == 1 else {"type": "sequence", "transformations": ts}
        t = {**t, "input": {"path": f"s{i}"}, "output": {"name": "physical"}}
        datasets.append({"path": f"s{i}", "coordinateTransformations": [t]})
        shp = (*shp[:-2], max(1, shp[-2] // 2), max(1, shp[-1] // 2))
    ms: dict[str, Any] = {
        "name": path or "image",
        "coordinateSystems": [{"name": "physical", "axes": axes}, *(systems or [])],
        "datasets": datasets,
    }
    if extra:
        ms["coordinateTransformations"] = extra
    group.attrs["ome"] = {"version": VERSION, "multiscales": [ms]}
    return data


def write_scene(
    root: Path, transforms: list[dict[str, Any]], systems: list[dict[str, Any]]
) -> None:
    """Write the scene group at *root* (the images are written separately below it)."""
    group = zarr.open_group(root, mode="a", zarr_format=3)
    group.attrs["ome"] = {
        "version": VERSION,
        "scene": {"coordinateSystems": systems, "coordinateTransformations": transforms},
    }


ROTATE_90 = [[0, -1], [1, 0]]


def two_image_scene(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """A scene with ``imgA`` translated by (100, 0) and ``imgB`` rotated by 90 degrees then
    translated by (0, 50), both into the scene's ``world`` system."""
    zarr.open_group(root, mode="w", zarr_format=3)
    a = write_image(root, "imgA")
    b = write_image(root, "imgB", levels=[([2.0, 2.0], [1.0, 1.0])], offset=1000)
    write_scene(
        root,
        [
            {
                "type": "translation",
                "translation": [100, 0],
                "input": {"name": "physical", "path": "imgA"},
                "output": {"name": "world"},
            },
            {
                "type": "sequence",
                "transformations": [
                    {"type": "rotation", "rotation": ROTATE_90},
                    {"type": "translation", "translation": [0, 50]},
                ],
                "input": {"name": "physical", "path": "imgB"},
                "output": {"name": "world"},
            },
        ],
        [{"name": "world", "axes": YX}],
    )
    return {"imgA": a, "imgB": b}
