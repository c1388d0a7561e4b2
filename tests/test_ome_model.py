"""Lenient OME-NGFF parsing."""

from __future__ import annotations

import pytest

from napari_zarr_explorer.ome import Axis, Dataset, infer_axes, parse_ome


def ms04(**over):
    m = {
        "version": "0.4",
        "axes": [
            {"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
        "datasets": [
            {
                "path": "0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1, 0.5, 0.5]},
                    {"type": "translation", "translation": [0, 10, 20]},
                ],
            },
            {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]},
        ],
    }
    m.update(over)
    return m


def test_none_without_ome() -> None:
    assert parse_ome({}, zarr_format=2) is None
    assert parse_ome({"foo": 1}, zarr_format=3) is None


def test_v04_image() -> None:
    ome = parse_ome({"multiscales": [ms04()]}, zarr_format=2)
    assert ome is not None
    assert ome.kind == "image" and ome.version == "0.4" and ome.warnings == ()
    ms = ome.multiscales[0]
    assert ms.axes[1] == Axis("y", "space", "micrometer")
    assert ms.channel_axis == 0
    assert ms.datasets[0] == Dataset("0", (1.0, 0.5, 0.5), (0.0, 10.0, 20.0))
    assert ms.datasets[1] == Dataset("1", (1.0, 1.0, 1.0), None)


def test_global_transformations_are_combined() -> None:
    m = ms04(
        coordinateTransformations=[
            {"type": "scale", "scale": [1, 2, 2]},
            {"type": "translation", "translation": [0, 1, 1]},
        ]
    )
    ms = parse_ome({"multiscales": [m]}, zarr_format=2).multiscales[0]
    # x -> 2 * (0.5 x + 10) + 1
    assert ms.datasets[0].scale == (1.0, 1.0, 1.0)
    assert ms.datasets[0].translation == (0.0, 21.0, 41.0)
    assert ms.datasets[1].translation == (0.0, 1.0, 1.0)


def test_v05_under_ome_key() -> None:
    m = ms04()
    del m["version"]
    attrs = {
        "ome": {
            "version": "0.5",
            "multiscales": [m],
            "omero": {
                "channels": [
                    {
                        "label": "DAPI",
                        "color": "0000FF",
                        "active": False,
                        "window": {"start": 10, "end": 200, "min": 0, "max": 255},
                    }
                ]
            },
        }
    }
    ome = parse_ome(attrs, zarr_format=3)
    assert ome.version == "0.5" and ome.kind == "image"
    ch = ome.omero.channels[0]
    assert (ch.label, ch.active, ch.window_start, ch.window_end) == ("DAPI", False, 10, 200)
    assert ch.rgb == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("version", ["0.1", "0.2"])
def test_old_versions_infer_axes(version: str) -> None:
    ome = parse_ome(
        {"multiscales": [{"version": version, "datasets": [{"path": "0"}]}]}, zarr_format=2
    )
    ms = ome.multiscales[0]
    assert ms.axes == () and ms.axes_inferred and ome.warnings == ()
    assert [a.name for a in infer_axes(3)] == ["z", "y", "x"]
    assert [a.name for a in infer_axes(5)] == ["t", "c", "z", "y", "x"]


def test_v03_string_axes() -> None:
    ome = parse_ome(
        {"multiscales": [{"version": "0.3", "axes": ["c", "y", "x"], "datasets": [{"path": "0"}]}]},
        zarr_format=2,
    )
    assert ome.multiscales[0].axes[0] == Axis("c", "channel")
    assert ome.multiscales[0].channel_axis == 0


@pytest.mark.parametrize(
    ("attrs", "needle"),
    [
        ({"multiscales": {"datasets": []}}, "'multiscales' must be a list"),
        ({"multiscales": [ms04(datasets=[{"path": 3}, {"path": "1"}])]}, "'path' must be"),
        ({"multiscales": [ms04(axes="cyx")]}, "'axes' must be a list"),
        (
            {
                "multiscales": [
                    ms04(
                        datasets=[
                            {
                                "path": "0",
                                "coordinateTransformations": [
                                    {"type": "scale", "scale": ["a", 1, 1]}
                                ],
                            }
                        ]
                    )
                ]
            },
            "finite numbers",
        ),
        (
            {
                "multiscales": [
                    ms04(
                        datasets=[
                            {
                                "path": "0",
                                "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}],
                            }
                        ]
                    )
                ]
            },
            "2 values for 3 axes",
        ),
        (
            {"multiscales": [ms04()], "omero": {"channels": [{"window": {"start": "x"}}]}},
            "window.start must be a number",
        ),
        ({"multiscales": [ms04()], "omero": {"channels": [{"color": 255}]}}, "hex string"),
        ({"multiscales": [ms04()], "omero": "nope"}, "'omero' must be an object"),
        ({"multiscales": [ms04(name=5)]}, "'name' must be a string"),
    ],
    ids=[
        "ms-type",
        "path-type",
        "axes-type",
        "scale-values",
        "scale-length",
        "window",
        "color",
        "omero",
        "name",
    ],
)
def test_wrong_types_are_warnings(attrs: dict, needle: str) -> None:
    ome = parse_ome(attrs, zarr_format=2)
    assert ome is not None
    assert any(needle in w for w in ome.warnings), ome.warnings


def test_labels_group_and_image_label() -> None:
    ome = parse_ome({"labels": ["cells", 3]}, zarr_format=2)
    assert ome.kind == "labels" and ome.labels == ("cells",) and ome.warnings
    il = parse_ome(
        {
            "multiscales": [ms04()],
            "image-label": {
                "colors": [
                    {"label-value": 1, "rgba": [255, 0, 0, 255]},
                    {"label-value": 2, "rgba": [0, 0]},
                ],
                "source": {"image": "../../"},
            },
        },
        zarr_format=2,
    )
    assert il.image_label.colors[0].rgba == (255, 0, 0, 255)
    assert len(il.image_label.colors) == 1 and il.warnings


def test_plate_and_well() -> None:
    plate = parse_ome(
        {
            "plate": {
                "version": "0.4",
                "rows": [{"name": "A"}],
                "columns": [{"name": "1"}, {"name": "2"}],
                "wells": [
                    {"path": "A/1", "rowIndex": 0, "columnIndex": 0},
                    {"path": "A/2"},
                    {"path": "Z/9"},
                ],
            }
        },
        zarr_format=2,
    )
    assert plate.kind == "plate"
    assert [(w.path, w.row_index, w.column_index) for w in plate.plate.wells] == [
        ("A/1", 0, 0),
        ("A/2", 0, 1),
    ]
    assert any("Z/9" in w for w in plate.warnings)
    well = parse_ome({"well": {"images": [{"path": "0"}, {"path": 1}]}}, zarr_format=2)
    assert well.kind == "well" and [i.path for i in well.well.images] == ["0"]


def test_bioformats2raw() -> None:
    ome = parse_ome({"bioformats2raw.layout": 3}, zarr_format=2)
    assert ome.kind == "bioformats2raw" and ome.bioformats2raw_layout == 3
    series = parse_ome({"ome": {"version": "0.5", "series": ["0", "1"]}}, zarr_format=3)
    assert series.series == ("0", "1")


def test_omero_colors() -> None:
    from napari_zarr_explorer.ome import OmeroChannel

    assert OmeroChannel(color="#ff8000").rgb == (1.0, 128 / 255, 0.0)
    assert OmeroChannel(color="F00").rgb == (1.0, 0.0, 0.0)
    assert OmeroChannel(color="zzzzzz").rgb is None
    assert OmeroChannel().rgb is None
