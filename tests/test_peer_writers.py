"""OME-Zarr written by independent implementations (ome-zarr-py, ngff-zarr) reads back exactly.

Each writer produces small images (multichannel czyx and 2-D yx, with a pyramid, scale,
translation and units) in its supported OME-NGFF versions. The reader must return every level
equal to what the writer's own reading API returns, with scale/translate taken from the level-0
coordinate transformations, the channel axis split off and the axis names as labels.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import napari_zarr_explorer as nze
from napari_zarr_explorer.errors import ExplorerWarning

PLUGIN = "napari-zarr-explorer"
UNITS = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}


@pytest.fixture(scope="module", autouse=True)
def _plugins() -> None:
    import npe2

    npe2.PluginManager.instance().discover()


def _image(axes: str, seed: int) -> np.ndarray:
    shape = {"c": 2, "z": 5, "y": 40, "x": 52}
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, [shape[a] for a in axes], dtype="uint16")


def _ome_attrs(path: Path) -> dict[str, Any]:
    """The OME attributes of the group at *path*, read with zarr-python."""
    import zarr

    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    return dict(attrs.get("ome", attrs))


def _level0_transforms(path: Path) -> tuple[list[float], list[float] | None]:
    ds0 = _ome_attrs(path)["multiscales"][0]["datasets"][0]
    scale = translate = None
    for ct in ds0["coordinateTransformations"]:
        if ct["type"] == "scale":
            scale = ct["scale"]
        elif ct["type"] == "translation":
            translate = ct["translation"]
    assert scale is not None
    return scale, translate


def _read_both(path: Path) -> list[tuple[Any, dict[str, Any], str]]:
    """Read *path* through npe2 and through ``open_layers``; both must agree; no warnings."""
    import npe2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExplorerWarning)
        via_npe2 = [
            (d, k or {}, t or "image")
            for d, k, t in npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
        ]
        direct = nze.open_layers(str(path))
    assert not [w for w in caught if issubclass(w.category, ExplorerWarning)], [
        str(w.message) for w in caught
    ]
    assert len(via_npe2) == len(direct)
    for (d1, k1, t1), (d2, k2, t2) in zip(via_npe2, direct, strict=True):
        assert t1 == t2
        assert k1.keys() == k2.keys()
        for key in ("scale", "translate", "axis_labels", "channel_axis", "name", "units"):
            assert k1.get(key) == k2.get(key), key
        assert len(_levels(d1)) == len(_levels(d2))
        for a, b in zip(_levels(d1), _levels(d2), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    return via_npe2


def _levels(data: Any) -> list[Any]:
    return list(data) if isinstance(data, list) else [data]


def _check_layer(
    layer: tuple[Any, dict[str, Any], str],
    *,
    expected: list[np.ndarray],
    path: Path,
    axes: str,
    kind: str = "image",
) -> None:
    data, kwargs, layer_type = layer
    assert layer_type == kind
    levels = _levels(data)
    assert len(levels) == len(expected) > 1
    for got, want in zip(levels, expected, strict=True):
        got_np = np.asarray(got)
        assert got_np.dtype == want.dtype
        np.testing.assert_array_equal(got_np, want)
    assert kwargs["multiscale"] is True
    scale, translate = _level0_transforms(path)
    caxis = axes.index("c") if "c" in axes and kind == "image" else None
    keep = [i for i in range(len(axes)) if i != caxis]
    assert kwargs["scale"] == pytest.approx(tuple(scale[i] for i in keep))
    if translate is not None:
        assert kwargs["translate"] == pytest.approx(tuple(translate[i] for i in keep))
    assert kwargs["axis_labels"] == tuple(axes[i] for i in keep)
    assert kwargs.get("channel_axis") == caxis
    if caxis is not None:
        assert len(kwargs["name"]) == expected[0].shape[caxis]
    spatial = [axes[i] for i in keep]
    if all(a in UNITS for a in spatial) and kind == "image":
        assert kwargs["units"] == tuple(UNITS[a] for a in spatial)


# ---------------------------------------------------------------- ome-zarr-py


@pytest.fixture(scope="module")
def ome_zarr_writer() -> Any:
    # ome_zarr.writer instantiates its deprecated Scaler class as a default argument at import
    # time, which emits a DeprecationWarning that the user of the module cannot avoid.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("ome_zarr.writer")


def _ome_zarr_fmt(version: str) -> Any:
    fmt_mod = pytest.importorskip("ome_zarr.format")
    cls = {"0.4": "FormatV04", "0.5": "FormatV05"}[version]
    if not hasattr(fmt_mod, cls):
        pytest.skip(f"the installed ome-zarr cannot write OME-NGFF {version}")
    return getattr(fmt_mod, cls)()


def _ome_zarr_read(path: Path) -> dict[str, list[np.ndarray]]:
    """Levels of every multiscale node, as ome-zarr-py's own reader returns them."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    loc = parse_url(str(path))
    assert loc is not None
    out: dict[str, list[np.ndarray]] = {}
    for node in Reader(loc)():
        if node.data:
            rel = str(node.zarr.path)[len(str(path)) :].strip("/")
            out[rel] = [np.asarray(d) for d in node.data]
    return out


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("axes", ["czyx", "yx"])
def test_ome_zarr_py_image(tmp_path: Path, ome_zarr_writer: Any, version: str, axes: str) -> None:
    fmt = _ome_zarr_fmt(version)
    img = _image(axes, seed=len(axes))
    path = tmp_path / f"ome-zarr-py-{version}-{axes}.ome.zarr"
    scale = {"c": 1.0, "z": 2.0, "y": 0.5, "x": 0.25}
    ome_zarr_writer.write_image(
        img,
        str(path),
        fmt=fmt,
        axes=list(axes),
        scale={a: scale[a] for a in axes},
        axes_units={a: UNITS[a] for a in axes if a in UNITS},
    )
    with_labels = axes == "czyx"
    if with_labels:
        import zarr

        spatial = axes.replace("c", "")
        lab = (_image(spatial, seed=7) % 6).astype("uint8")
        # scaler=None: the default Scaler instance is deprecated and warns
        ome_zarr_writer.write_labels(
            lab,
            zarr.open_group(str(path), mode="a"),
            name="cells",
            fmt=fmt,
            axes=list(spatial),
            scaler=None,
        )

    expected = _ome_zarr_read(path)
    np.testing.assert_array_equal(expected[""][0], img)
    layers = _read_both(path)
    assert len(layers) == (2 if with_labels else 1)
    _check_layer(layers[0], expected=expected[""], path=path, axes=axes)
    md = layers[0][1]["metadata"]
    assert md["ome_version"] == version
    assert md["zarr_format"] == (2 if version == "0.4" else 3)
    if with_labels:
        np.testing.assert_array_equal(expected["labels/cells"][0], lab)
        _check_layer(
            layers[1],
            expected=expected["labels/cells"],
            path=path / "labels" / "cells",
            axes=spatial,
            kind="labels",
        )
        assert layers[1][1]["name"] == "cells"

    report = nze.validate(str(path))
    if version == "0.5" and with_labels and "version" not in _ome_attrs(path / "labels"):
        # ome-zarr-py 0.18 writes the 0.5 'labels' group as {"ome": {"labels": [...]}} without
        # the "version" key that OME-NGFF 0.5 requires in the "ome" object of every group
        # (ome-zarr-models' LabelsAttrs rejects it too). The reader still opens it (above);
        # the validator reports exactly that one error.
        assert not report.valid
        errors = [m for m in report.messages if m.level == "error"]
        assert len(errors) == 1, report
        assert errors[0].node == "labels"
        assert errors[0].path == "/attributes/ome/version"
    else:
        assert report.valid, report


# ---------------------------------------------------------------- ngff-zarr

NGFF_CASES = [
    ("0.4", "czyx", None),
    ("0.4", "yx", None),
    ("0.5", "czyx", None),
    ("0.5", "czyx", 2),
    ("0.5", "yx", 2),
]


@pytest.mark.parametrize(
    ("version", "axes", "per_shard"),
    NGFF_CASES,
    ids=[f"{v}-{a}-{'sharded' if s else 'unsharded'}" for v, a, s in NGFF_CASES],
)
def test_ngff_zarr_image(tmp_path: Path, version: str, axes: str, per_shard: int | None) -> None:
    nz = pytest.importorskip("ngff_zarr")
    import inspect

    if per_shard and "chunks_per_shard" not in inspect.signature(nz.to_ngff_zarr).parameters:
        pytest.skip("the installed ngff-zarr cannot write sharded arrays")
    img = _image(axes, seed=10 + len(axes))
    scale = {"z": 2.0, "y": 0.5, "x": 0.25}
    translation = {"z": 1.0, "y": 3.0, "x": -2.0}
    image = nz.to_ngff_image(
        img,
        dims=list(axes),
        scale={a: scale[a] for a in axes if a in scale},
        translation={a: translation[a] for a in axes if a in translation},
        axes_units={a: UNITS[a] for a in axes if a in UNITS},
    )
    # a pure-dask downsampling method: the default one compiles WebAssembly on first use (slow
    # on a cold cache); the levels are compared with what is stored, whatever the method
    multiscales = nz.to_multiscales(
        image, scale_factors=[2, 4], chunks=16, method=nz.Methods.DASK_BIN_SHRINK
    )
    path = tmp_path / f"ngff-zarr-{version}-{axes}-{per_shard}.ome.zarr"
    kwargs: dict[str, Any] = {"version": version}
    if per_shard:
        kwargs["chunks_per_shard"] = per_shard
    nz.to_ngff_zarr(str(path), multiscales, **kwargs)

    back = nz.from_ngff_zarr(str(path))
    expected = [np.asarray(im.data) for im in back.images]
    np.testing.assert_array_equal(expected[0], img)
    # the level paths as written, read with zarr-python: the same values
    import zarr

    paths = [ds["path"] for ds in _ome_attrs(path)["multiscales"][0]["datasets"]]
    assert len(paths) == len(expected) == 3
    for p, want in zip(paths, expected, strict=True):
        arr = zarr.open_array(str(path / p), mode="r")
        np.testing.assert_array_equal(arr[...], want)
        if per_shard:
            meta = json.loads((path / p / "zarr.json").read_text())
            assert meta["codecs"][0]["name"] == "sharding_indexed"

    layers = _read_both(path)
    assert len(layers) == 1
    _check_layer(layers[0], expected=expected, path=path, axes=axes)
    # the translation the writer was given is the one shown
    keep = [a for a in axes if a != "c"]
    assert layers[0][1]["translate"] == pytest.approx(tuple(translation[a] for a in keep))
    assert layers[0][1]["scale"] == pytest.approx(tuple(scale[a] for a in keep))
    md = layers[0][1]["metadata"]
    assert md["ome_version"] == version
    assert md["zarr_format"] == (2 if version == "0.4" else 3)

    report = nze.validate(str(path))
    assert report.valid, report
