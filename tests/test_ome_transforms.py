"""OME-NGFF 0.6 (RFC-5) transformations: every type, inverses, composition, graphs, 0.6 parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer.ome import parse_ome
from napari_zarr_explorer.ome.transforms import (
    Affine,
    Bijection,
    ByDimension,
    Coordinates,
    Displacements,
    Identity,
    MapAxis,
    NotInvertibleError,
    ProjectAxis,
    Rotation,
    Scale,
    Sequence_,
    TransformError,
    TransformGraph,
    Translation,
    UnknownTransform,
    UnsupportedTransformError,
    as_scale_translation,
    parse_transform,
)

P = [[1.0, 2.0], [-3.0, 0.5]]


def _t(raw: dict[str, Any]) -> Any:
    return parse_transform(raw, "test")


@pytest.mark.parametrize(
    ("raw", "cls", "expected"),
    [
        ({"type": "identity"}, Identity, [[1, 2], [-3, 0.5]]),
        ({"type": "scale", "scale": [10, 20]}, Scale, [[10, 40], [-30, 10]]),
        ({"type": "translation", "translation": [10, 20]}, Translation, [[11, 22], [7, 20.5]]),
        ({"type": "mapAxis", "mapAxis": [1, 0]}, MapAxis, [[2, 1], [0.5, -3]]),
        # spec example: y = 1*j + 2*i + 3 ... applied to column vectors (first axis first)
        ({"type": "affine", "affine": [[1, 2, 3], [4, 5, 6]]}, Affine, [[8, 20], [1, -3.5]]),
        ({"type": "rotation", "rotation": [[0, -1], [1, 0]]}, Rotation, [[-2, 1], [-0.5, -3]]),
        (
            {
                "type": "sequence",
                "transformations": [
                    {"type": "translation", "translation": [0.1, 0.9]},
                    {"type": "scale", "scale": [2, 3]},
                ],
            },
            Sequence_,
            [[2.2, 8.7], [-5.8, 4.2]],
        ),
        (  # 0.6rc0 form
            {
                "type": "byDimension",
                "transformations": [
                    {
                        "transformation": {"type": "translation", "translation": [-1]},
                        "inputAxes": [1],
                        "outputAxes": [1],
                    },
                    {
                        "transformation": {"type": "scale", "scale": [2]},
                        "inputAxes": [0],
                        "outputAxes": [0],
                    },
                ],
            },
            ByDimension,
            [[2, 1], [-6, -0.5]],
        ),
        (  # the earlier draft form used by the conformance cases
            {
                "type": "byDimension",
                "transformations": [
                    {"type": "identity", "input_axes": [0], "output_axes": [0]},
                    {"type": "scale", "scale": [10], "input_axes": [1], "output_axes": [1]},
                ],
            },
            ByDimension,
            [[1, 20], [-3, 5]],
        ),
        (
            {
                "type": "bijection",
                "forward": {"type": "translation", "translation": [1, 1]},
                "inverse": {"type": "translation", "translation": [10, 10]},
            },
            Bijection,
            [[2, 3], [-2, 1.5]],
        ),
        (
            {"type": "projectAxis", "droppedInputs": [0], "createdOutputs": [0, 2]},
            ProjectAxis,
            [[0, 2, 0], [0, 0.5, 0]],
        ),
    ],
    ids=lambda v: v.get("type") if isinstance(v, dict) else "",
)
def test_apply(raw: dict[str, Any], cls: type, expected: list[list[float]]) -> None:
    t = _t(raw)
    assert isinstance(t, cls)
    np.testing.assert_allclose(t.apply(P), expected)
    # the homogeneous matrix says the same as apply
    m = t.matrix(2)
    assert m is not None
    homog = np.hstack([np.asarray(P), np.ones((2, 1))])
    np.testing.assert_allclose((homog @ m.T)[:, :-1], expected)
    # JSON round trip
    again = _t(t.to_json())
    np.testing.assert_allclose(again.apply(P), expected)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "identity"},
        {"type": "scale", "scale": [10, 0.5]},
        {"type": "translation", "translation": [10, -20]},
        {"type": "mapAxis", "mapAxis": [1, 0]},
        {"type": "affine", "affine": [[1, 2, 3], [4, 5, 6]]},
        {"type": "rotation", "rotation": [[0.17, -0.985], [0.985, 0.17]]},
        {
            "type": "sequence",
            "transformations": [
                {"type": "scale", "scale": [2, 3]},
                {"type": "rotation", "rotation": [[0, -1], [1, 0]]},
                {"type": "translation", "translation": [1, 2]},
            ],
        },
        {
            "type": "byDimension",
            "transformations": [
                {
                    "transformation": {"type": "scale", "scale": [4]},
                    "inputAxes": [0],
                    "outputAxes": [1],
                },
                {
                    "transformation": {"type": "translation", "translation": [3]},
                    "inputAxes": [1],
                    "outputAxes": [0],
                },
            ],
        },
    ],
    ids=lambda r: r["type"],
)
def test_inverse_round_trip(raw: dict[str, Any]) -> None:
    t = _t(raw)
    back = t.inverse().apply(t.apply(P))
    np.testing.assert_allclose(back, P, atol=1e-12)


def test_bijection_inverse_is_the_given_one_not_computed() -> None:
    t = _t(
        {
            "type": "bijection",
            "forward": {"type": "translation", "translation": [1, 1]},
            "inverse": {"type": "translation", "translation": [10, 10]},
            "input": {"name": "a"},
            "output": {"name": "b"},
        }
    )
    inv = t.inverse()
    np.testing.assert_allclose(inv.apply([[1, 2]]), [[11, 12]])
    assert inv.input.name == "b" and inv.output.name == "a"


def test_not_invertible() -> None:
    with pytest.raises(NotInvertibleError, match="zero"):
        _t({"type": "scale", "scale": [0, 1]}).inverse()
    with pytest.raises(NotInvertibleError, match="singular"):
        _t({"type": "affine", "affine": [[1, 2, 0], [2, 4, 0]]}).inverse()
    with pytest.raises(NotInvertibleError, match="2 to 3"):
        _t({"type": "affine", "affine": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}).inverse()
    with pytest.raises(NotInvertibleError):
        _t({"type": "projectAxis", "droppedInputs": [0]}).inverse()


def test_fields_and_stored_parameters_are_reported_not_applied() -> None:
    d = _t(
        {
            "type": "displacements",
            "path": "coordinateTransformations/field",
            "interpolation": "linear",
        }
    )
    assert isinstance(d, Displacements) and not d.applicable
    with pytest.raises(UnsupportedTransformError, match="coordinateTransformations/field"):
        d.apply(P)
    with pytest.raises(NotInvertibleError, match="bijection"):
        d.inverse()
    c = _t({"type": "coordinates", "path": "xy"})
    assert isinstance(c, Coordinates)
    assert c.describe() == "coordinates path=xy"
    a = _t({"type": "affine", "path": "matrices/a"})
    assert not a.applicable and a.matrix(2) is None
    with pytest.raises(UnsupportedTransformError, match=r"'matrices/a'.*not read"):
        a.apply(P)
    u = _t({"type": "thinPlateSpline", "x": 1})
    assert isinstance(u, UnknownTransform) and u.to_json() == {"type": "thinPlateSpline", "x": 1}
    with pytest.raises(UnsupportedTransformError, match="thinPlateSpline"):
        u.apply(P)
    # a sequence holding a field is shown, and has no matrix
    s = _t(
        {"type": "sequence", "transformations": [{"type": "scale", "scale": [1, 2]}, d.to_json()]}
    )
    assert not s.applicable and s.matrix(2) is None


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"type": 3}, "'type' must be a string"),
        ({"type": "scale"}, "needs the list 'scale'"),
        ({"type": "scale", "scale": [1, "a"]}, "finite numbers"),
        ({"type": "translation", "translation": []}, "non-empty"),
        ({"type": "mapAxis", "mapAxis": [0, 0]}, "repeat"),
        ({"type": "mapAxis", "mapAxis": [0, 2]}, "not a permutation"),
        ({"type": "affine", "affine": [[1, 2], [3]]}, "one length"),
        ({"type": "rotation", "rotation": [[1, 0, 0], [0, 1, 0]]}, "square"),
        ({"type": "sequence", "transformations": []}, "non-empty"),
        ({"type": "bijection", "forward": {"type": "identity"}}, "'forward' and 'inverse'"),
        (
            {
                "type": "byDimension",
                "transformations": [{"transformation": {"type": "identity"}, "inputAxes": [0]}],
            },
            "inputAxes",
        ),
        (
            {
                "type": "byDimension",
                "transformations": [
                    {
                        "transformation": {"type": "scale", "scale": [1]},
                        "inputAxes": [0],
                        "outputAxes": [1],
                    },
                    {
                        "transformation": {"type": "scale", "scale": [1]},
                        "inputAxes": [1],
                        "outputAxes": [1],
                    },
                ],
            },
            "more than one",
        ),
        ({"type": "identity", "input": 5}, "'input' must be an object"),
    ],
)
def test_parse_errors(raw: dict[str, Any], match: str) -> None:
    with pytest.raises(TransformError, match=match):
        parse_transform(raw, "here")


def test_huge_parameters_are_refused() -> None:
    big = [[1.0] * 2001 for _ in range(2000)]
    with pytest.raises(TransformError, match="larger than 64 axes"):
        parse_transform({"type": "affine", "affine": big})
    with pytest.raises(TransformError, match="more than 64 values"):
        parse_transform({"type": "scale", "scale": [1.0] * 1000})


def test_deep_nesting_is_refused() -> None:
    raw: dict[str, Any] = {"type": "identity"}
    for _ in range(100):
        raw = {"type": "sequence", "transformations": [raw]}
    with pytest.raises(TransformError, match="nested deeper"):
        parse_transform(raw)


def test_scale_translation_detection() -> None:
    seq = _t(
        {
            "type": "sequence",
            "transformations": [
                {"type": "scale", "scale": [2, 3]},
                {"type": "translation", "translation": [1, 2]},
            ],
        }
    )
    assert as_scale_translation(seq, 2) == ((2.0, 3.0), (1.0, 2.0))
    assert as_scale_translation(_t({"type": "rotation", "rotation": [[0, -1], [1, 0]]}), 2) is None
    assert as_scale_translation(_t({"type": "mapAxis", "mapAxis": [1, 0]}), 2) is None


def test_graph_finds_paths_and_inverts_edges() -> None:
    g = TransformGraph()
    for name in ("a", "b", "c", "d"):
        g.add_system(("", name), 2)
    g.add(("", "a"), ("", "b"), _t({"type": "scale", "scale": [2, 2]}))
    g.add(("", "c"), ("", "b"), _t({"type": "translation", "translation": [1, 1]}))
    g.add(("", "c"), ("", "d"), _t({"type": "displacements", "path": "f"}))
    t = g.find(("", "a"), ("", "c"))  # a -> b, then the inverse of c -> b
    np.testing.assert_allclose(t.apply([[1, 2]]), [[1, 3]])
    np.testing.assert_allclose(g.find(("", "c"), ("", "a")).apply([[1, 3]]), [[1, 2]])
    assert g.find(("", "a"), ("", "a")).apply([[5, 6]]).tolist() == [[5, 6]]
    with pytest.raises(TransformError, match=r"no chain.*closed-form inverse"):
        g.find(("", "d"), ("", "a"))
    with pytest.raises(TransformError, match=r"no coordinate system 'zz'.*known: a, b, c, d"):
        g.resolve("zz")


def test_graph_names_across_groups() -> None:
    g = TransformGraph()
    g.add_system(("imgA", "physical"), 2)
    g.add_system(("imgB", "physical"), 2)
    g.add_system(("", "world"), 2)
    assert g.resolve("world") == ("", "world")
    assert g.resolve("imgB#physical") == ("imgB", "physical")
    with pytest.raises(TransformError, match="ambiguous"):
        g.resolve("physical")


# --- 0.6 in the lenient model ----------------------------------------------------------------


def _attrs(path: Path) -> dict[str, Any]:
    return json.loads((path / "zarr.json").read_text())["attributes"]  # type: ignore[no-any-return]


def test_parse_corpus_06_images(corpus: Path) -> None:
    base = corpus / "ngff-suites" / "0.6rc0" / "zarr" / "strict" / "valid" / "image"
    ome = parse_ome(_attrs(base / "multiscales_transformations.ome.zarr"), zarr_format=3)
    assert ome is not None and ome.version == "0.6rc0" and not ome.warnings
    ms = ome.multiscales[0]
    assert [cs.name for cs in ms.coordinate_systems] == ["world", "physical"]
    assert ms.intrinsic == "physical"
    assert [a.name for a in ms.axes] == ["y", "x"]
    assert ms.datasets[0].scale == (1.0, 1.0)
    assert ms.datasets[0].transform is not None
    assert ms.datasets[0].transform.input.path == "0"  # older draft: input as a string path
    # the multiscale-level transformation leads to another system; it is not folded in
    assert [t.describe() for t in ms.transforms] == ["scale [10, 10]"]
    g = TransformGraph()
    ms.add_to(g)
    np.testing.assert_allclose(g.find(("0", ""), ("", "world")).apply([[1, 2]]), [[10, 20]])

    ome = parse_ome(_attrs(base / "multiscales_example.ome.zarr"), zarr_format=3)
    assert ome is not None
    ms = ome.multiscales[0]
    assert [a.name for a in ms.axes] == ["t", "c", "z", "y", "x"]
    assert [d.scale for d in ms.datasets][1] == (1.0, 1.0, 1.0, 1.0, 1.0)


def test_parse_06_scene_and_problems() -> None:
    attrs = {
        "ome": {
            "version": "0.6rc0",
            "scene": {
                "coordinateSystems": [{"name": "world", "axes": [{"name": "y"}, {"name": "x"}]}],
                "coordinateTransformations": [
                    {
                        "type": "rotation",
                        "rotation": [[0, -1], [1, 0]],
                        "input": {"name": "physical", "path": "a"},
                        "output": {"name": "world"},
                    },
                    {
                        "type": "displacements",
                        "path": "coordinateTransformations/f",
                        "input": {"name": "physical", "path": "b"},
                        "output": {"name": "world"},
                    },
                    {"type": "scale", "scale": "nope"},
                ],
            },
        }
    }
    ome = parse_ome(attrs, zarr_format=3)
    assert ome is not None and ome.kind == "scene" and ome.scene is not None
    assert ome.scene.image_paths == ("a", "b")
    assert len(ome.scene.transforms) == 2
    text = " ".join(ome.warnings)
    assert "displacements" not in text  # valid metadata: shown, and named when applied
    assert "'scale' must be a non-empty list" in text
