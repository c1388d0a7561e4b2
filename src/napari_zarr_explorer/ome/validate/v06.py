"""OME-NGFF 0.6 (RFC-5): named coordinate systems and transformations between them."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from napari_zarr_explorer.errors import PathEscapeError
from napari_zarr_explorer.ome.transforms import (
    Transform,
    TransformError,
    UnknownTransform,
    parse_transform,
)
from napari_zarr_explorer.ome.validate.common import (
    MAX_MESSAGES_PER_DOCUMENT,
    _check_axes,
    _check_datasets,
    _check_multiscales_list,
    _check_sections,
    _check_vector,
    _Ctx,
    _kind_of,
    _p,
    _short,
)
from napari_zarr_explorer.store import safe_join

__all__ = ["check_container", "check_multiscales"]


def check_multiscales(value: Any, ctx: _Ctx, ptr: str) -> None:
    """0.6 ``multiscales``: coordinate systems, datasets, transformations between systems."""
    _check_multiscales_list(value, ctx, ptr, _check_multiscale)


def _check_multiscale(m: dict[str, Any], ctx: _Ctx, p: str) -> None:
    n_axes = _check_coordinate_systems(m, ctx, p)
    names = _system_names(m.get("coordinateSystems"))
    intrinsic = None
    if "datasets" not in m:
        ctx.missing(_p(p, "datasets"), "the list of resolution levels (datasets)")
    else:
        _check_datasets(m["datasets"], ctx, _p(p, "datasets"), n_axes, "0.6")
        intrinsic = _check_dataset_refs(m["datasets"], ctx, _p(p, "datasets"), names)
    if "coordinateTransformations" in m:
        ct_ptr = _p(p, "coordinateTransformations")
        _check_free_transforms(
            m["coordinateTransformations"], ctx, ct_ptr, n_axes, names=names, intrinsic=intrinsic
        )


def check_container(ome: Mapping[str, Any], ctx: _Ctx, base: str) -> None:
    """Check the sections of a 0.6 ``ome`` object at JSON pointer *base*.

    The rules of the specification text give precise messages; when they find no error, the
    official JSON schemas (vendored, 0.6rc0) are applied as well, so that nothing they reject
    passes.
    """
    before = _n_errors(ctx)
    _check_sections(ome, ctx, base, check_multiscales)
    if "scene" in ome:
        _check_scene(ome["scene"], ctx, _p(base, "scene"))
    if _n_errors(ctx) == before:
        _check_schema(ome, ctx, base)


def _check_coordinate_systems(m: Mapping[str, Any], ctx: _Ctx, p: str) -> int | None:
    """0.6 draft: axes live in named coordinate systems; returns the common number of axes."""
    if "coordinateSystems" not in m:
        hint = " ('axes' moved into the coordinate systems in 0.6)" if "axes" in m else ""
        ctx.missing(_p(p, "coordinateSystems"), f"the list of coordinate systems{hint}")
        return None
    systems = m["coordinateSystems"]
    ptr = _p(p, "coordinateSystems")
    if not isinstance(systems, list) or not systems:
        ctx.error(ptr, f"must be a non-empty list of coordinate systems, found {_short(systems)}.")
        return None
    counts: set[int] = set()
    names: dict[str, int] = {}
    for k, cs in enumerate(systems):
        pk = _p(ptr, k)
        if not isinstance(cs, dict):
            ctx.error(pk, f"must be a coordinate system object, found {_kind_of(cs)}.")
            continue
        name = cs.get("name")
        if "name" not in cs:
            ctx.missing(_p(pk, "name"), "every coordinate system needs a name")
        elif not isinstance(name, str):
            ctx.error(_p(pk, "name"), f"must be a string, found {_kind_of(name)}.")
        elif name in names:
            ctx.error(
                _p(pk, "name"), f"{name!r} is already the name of coordinate system {names[name]}."
            )
        else:
            names[name] = k
        if "axes" not in cs:
            ctx.missing(_p(pk, "axes"), "the axes of the coordinate system")
            continue
        n = _check_axes(cs["axes"], ctx, _p(pk, "axes"))
        if n is not None:
            counts.add(n)
    return counts.pop() if len(counts) == 1 else None


# --- transformations ---------------------------------------------------------------------------

_STRING_REF = (
    "a plain string is the form of earlier 0.6 drafts; 0.6rc0 writes an object "
    '({"name": ...} for a coordinate system, {"path": ...} for a dataset\'s array).'
)


def _n_errors(ctx: _Ctx) -> int:
    counted = getattr(ctx.sink, "errors", None)  # _Messages counts those it leaves out too
    if isinstance(counted, int):
        return counted
    return sum(1 for m in ctx.sink if m.level == "error")


def _system_names(systems: Any) -> set[str]:
    if not isinstance(systems, list):
        return set()
    return {
        cs["name"] for cs in systems if isinstance(cs, dict) and isinstance(cs.get("name"), str)
    }


def _ref(t: Mapping[str, Any], key: str, ctx: _Ctx, pj: str) -> tuple[str | None, str | None]:
    """Check ``input``/``output``; return its (name, path)."""
    ref = t.get(key)
    if isinstance(ref, str):
        ctx.warn(_p(pj, key), _STRING_REF)
        return ref, ref
    if isinstance(ref, dict):
        name, path = ref.get("name"), ref.get("path")
        for k, v in (("name", name), ("path", path)):
            if v is not None and not isinstance(v, str):
                ctx.error(_p(pj, key, k), f"must be a string, found {_kind_of(v)}.")
        return (
            name if isinstance(name, str) else None,
            path if isinstance(path, str) else None,
        )
    if key in t:
        ctx.error(
            _p(pj, key), f"must be an object with 'name' and/or 'path', found {_kind_of(ref)}."
        )
    return None, None


_DRAFT_BY_DIMENSION = (
    "'input_axes'/'output_axes' on the transformation is the form of earlier 0.6 drafts; 0.6rc0 "
    'writes {"transformation": {...}, "inputAxes": [...], "outputAxes": [...]}.'
)


def _warn_draft_forms(t: Any, ctx: _Ctx, pj: str, depth: int = 0) -> None:
    """Warn about earlier-draft forms nested in *t* (the reader accepts them)."""
    if not isinstance(t, dict) or depth > 32:
        return
    items = t.get("transformations")
    if isinstance(items, list):
        for k, item in enumerate(items):
            pk = _p(pj, "transformations", k)
            if (
                t.get("type") == "byDimension"
                and isinstance(item, dict)
                and "transformation" not in item
                and ("input_axes" in item or "output_axes" in item)
            ):
                ctx.warn(pk, _DRAFT_BY_DIMENSION)
            inner = item.get("transformation", item) if isinstance(item, dict) else item
            _warn_draft_forms(inner, ctx, pk, depth + 1)
    for key in ("forward", "inverse"):
        _warn_draft_forms(t.get(key), ctx, _p(pj, key), depth + 1)


def _parse(t: Any, ctx: _Ctx, pj: str, *, dataset: bool = False) -> Transform | None:
    """Parse with the reader's parser: its refusals are validation errors here."""
    _warn_draft_forms(t, ctx, pj)
    try:
        parsed = parse_transform(t, "", dataset=dataset)
    except TransformError as exc:
        where, _, msg = exc.message.partition(": ")
        sub = where.lstrip(".").replace("[", ".").replace("]", "").split(".") if where else []
        ctx.error(_p(pj, *[s for s in sub if s]), msg or exc.message)
        return None
    if isinstance(parsed, UnknownTransform):
        ctx.error(
            _p(pj, "type"),
            f"{parsed.raw_type!r} is not a transformation type of OME-NGFF 0.6 (identity, "
            "mapAxis, projectAxis, translation, scale, affine, rotation, sequence, "
            "displacements, coordinates, bijection, byDimension).",
        )
    return parsed


def _check_dataset_refs(value: Any, ctx: _Ctx, ptr: str, names: set[str]) -> str | None:
    """Each level maps its array (input ``path``) to one intrinsic system (output ``name``)."""
    if not isinstance(value, list):
        return None
    intrinsic: str | None = None
    for i, d in enumerate(value):
        if not isinstance(d, dict) or not isinstance(d.get("coordinateTransformations"), list):
            continue
        for j, t in enumerate(d["coordinateTransformations"]):
            pj = _p(ptr, i, "coordinateTransformations", j)
            if not isinstance(t, dict):
                continue
            _parse(t, ctx, pj, dataset=True)
            _in_name, in_path = _ref(t, "input", ctx, pj)
            out_name, _ = _ref(t, "output", ctx, pj)
            if "input" not in t:
                ctx.missing(_p(pj, "input"), 'the level\'s array: {"path": "<dataset path>"}')
            elif in_path is not None and in_path != d.get("path"):
                ctx.error(
                    _p(pj, "input"),
                    f"names the array {in_path!r}, but this dataset's path is {d.get('path')!r}.",
                )
            elif isinstance(t.get("input"), dict) and in_path is None:
                ctx.missing(_p(pj, "input", "path"), "the path of this level's array")
            if "output" not in t:
                ctx.missing(_p(pj, "output"), 'the intrinsic coordinate system: {"name": ...}')
                continue
            if out_name is None:
                ctx.missing(_p(pj, "output", "name"), "the name of the intrinsic coordinate system")
                continue
            if names and out_name not in names:
                ctx.error(
                    _p(pj, "output"),
                    f"{out_name!r} is not one of the coordinate systems {sorted(names)}.",
                )
            if intrinsic is None:
                intrinsic = out_name
            elif out_name != intrinsic:
                ctx.error(
                    _p(pj, "output"),
                    f"every level must map to the same (intrinsic) coordinate system; the first "
                    f"maps to {intrinsic!r}, this one to {out_name!r}.",
                )
    return intrinsic


def _check_free_transforms(
    value: Any,
    ctx: _Ctx,
    ptr: str,
    n_axes: int | None,
    *,
    names: set[str] | None = None,
    intrinsic: str | None = None,
) -> None:
    """Check transformations of a multiscale between its coordinate systems (any type)."""
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of transformations, found {_kind_of(value)}.")
        return
    for j, t in enumerate(value):
        pj = _p(ptr, j)
        if not isinstance(t, dict):
            ctx.error(pj, f"must be a transformation object, found {_kind_of(t)}.")
            continue
        typ = t.get("type")
        if not isinstance(typ, str):
            ctx.error(
                _p(pj, "type"),
                f"must be a string naming the transformation, found {_kind_of(typ)}.",
            )
            continue
        if typ in ("scale", "translation"):
            _check_vector(t, typ, ctx, pj, n_axes)
        _parse(t, ctx, pj)
        ends = []
        for key in ("input", "output"):
            name, path = _ref(t, key, ctx, pj)
            if key not in t:
                ctx.missing(_p(pj, key), f'the {key} coordinate system: {{"name": ...}}')
            elif name is None:
                ctx.missing(_p(pj, key, "name"), "the name of a coordinate system")
            elif names and name not in names and (path is None or isinstance(t.get(key), str)):
                ctx.warn(
                    _p(pj, key),
                    f"{name!r} is not one of this image's coordinate systems {sorted(names)} "
                    "(a system of a label image needs its 'path').",
                )
            ends.append((name, path if isinstance(t.get(key), dict) else None))
        if (
            intrinsic is not None
            and len(ends) == 2
            and t.get("input")
            and t.get("output")
            and not any(n == intrinsic and not p for n, p in ends)
        ):
            ctx.warn(
                pj,
                f"one of 'input' or 'output' must be the intrinsic coordinate system "
                f"{intrinsic!r} (the output of the datasets' transformations).",
            )


# --- scene -------------------------------------------------------------------------------------


def _check_scene(value: Any, ctx: _Ctx, ptr: str) -> None:
    """``scene``: coordinate systems and transformations between images' coordinate systems."""
    if not isinstance(value, dict):
        ctx.error(ptr, f"must be a JSON object, found {_kind_of(value)}.")
        return
    names: set[str] = set()
    systems = value.get("coordinateSystems")
    if systems is not None:
        sp = _p(ptr, "coordinateSystems")
        if not isinstance(systems, list) or not systems:
            ctx.error(
                sp, f"must be a non-empty list of coordinate systems, found {_short(systems)}."
            )
        else:
            for k, cs in enumerate(systems):
                pk = _p(sp, k)
                if (
                    not isinstance(cs, dict)
                    or not isinstance(cs.get("name"), str)
                    or not cs["name"]
                ):
                    ctx.error(pk, "must be a coordinate system object with a non-empty 'name'.")
                    continue
                if cs["name"] in names:
                    ctx.error(_p(pk, "name"), f"{cs['name']!r} is repeated: names must be unique.")
                names.add(cs["name"])
                axes = cs.get("axes")
                if (
                    not isinstance(axes, list)
                    or not axes
                    or not all(isinstance(a, dict) and isinstance(a.get("name"), str) for a in axes)
                ):
                    ctx.error(_p(pk, "axes"), "must be a non-empty list of axes with names.")
    if "coordinateTransformations" not in value:
        ctx.missing(_p(ptr, "coordinateTransformations"), "the transformations of the scene")
        return
    cts = value["coordinateTransformations"]
    cp = _p(ptr, "coordinateTransformations")
    if not isinstance(cts, list) or not cts:
        ctx.error(cp, f"must be a non-empty list of transformations, found {_short(cts)}.")
        return
    for j, t in enumerate(cts):
        pj = _p(cp, j)
        if not isinstance(t, dict):
            ctx.error(pj, f"must be a transformation object, found {_kind_of(t)}.")
            continue
        _parse(t, ctx, pj)
        for key in ("input", "output"):
            name, path = _ref(t, key, ctx, pj)
            if key not in t:
                ctx.missing(_p(pj, key), f'the {key}: {{"name": ..., "path": ...}}')
            elif name is None:
                ctx.missing(_p(pj, key, "name"), "the name of a coordinate system")
            elif path is None or isinstance(t.get(key), str):
                if name not in names:
                    ctx.error(
                        _p(pj, key),
                        f"{name!r} is not a coordinate system of the scene "
                        f"{sorted(names) or '(none declared)'}; a system of an image needs its "
                        "'path'.",
                    )
            elif path is not None:
                try:
                    safe_join("", path)
                except PathEscapeError as exc:
                    ctx.error(_p(pj, key, "path"), exc.message)


# --- the official schema -----------------------------------------------------------------------

_SCHEMA_VERSION = "0.6rc0"


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource

    folder = resources.files("napari_zarr_explorer.ome.validate") / "schemas" / _SCHEMA_VERSION
    pairs = []
    for entry in folder.iterdir():
        if entry.name.endswith(".schema"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            pairs.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(pairs)


def _schema_for(ome: Mapping[str, Any], strict: bool) -> str | None:
    s = "strict_" if strict else ""
    if "plate" in ome:
        return f"{s}plate"
    if "well" in ome:
        return f"{s}well"
    if "multiscales" in ome:
        return f"{s}label" if "image-label" in ome else f"{s}image"
    if "bioformats2raw.layout" in ome:
        return "bf2raw"
    if "scene" in ome:
        return "scene"
    if "series" in ome:
        return "ome"
    return None


def _normalised(value: Any, *, dataset_input: bool = False) -> Any:
    """Return a copy where earlier-draft string references are objects (warned about)."""
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "byDimension" and isinstance(value.get("transformations"), list):
        parts = []
        for item in value["transformations"]:
            if isinstance(item, dict) and "transformation" not in item and "input_axes" in item:
                inner = {k: v for k, v in item.items() if k not in ("input_axes", "output_axes")}
                item = {
                    "transformation": inner,
                    "inputAxes": item.get("input_axes"),
                    "outputAxes": item.get("output_axes"),
                }
            parts.append(item)
        value = {**value, "transformations": parts}
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k in ("input", "output") and isinstance(v, str):
            out[k] = {"path": v} if (k == "input" and dataset_input) else {"name": v}
        elif k == "datasets" and isinstance(v, list):
            out[k] = [
                {
                    **d,
                    "coordinateTransformations": [
                        _normalised(t, dataset_input=True)
                        for t in d.get("coordinateTransformations", [])
                    ]
                    if isinstance(d.get("coordinateTransformations"), list)
                    else d.get("coordinateTransformations"),
                }
                if isinstance(d, dict)
                else d
                for d in v
            ]
        else:
            out[k] = _normalised(v)
    return out


def _check_schema(ome: Mapping[str, Any], ctx: _Ctx, base: str) -> None:
    """Apply the official 0.6rc0 JSON schema to the ``ome`` object (only 0.6rc0 and 0.6)."""
    version = ome.get("version")
    name = _schema_for(ome, ctx.strict)
    if name is None or version not in ("0.6rc0", "0.6"):
        return
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    doc = {"ome": {**_normalised(dict(ome)), "version": _SCHEMA_VERSION}}
    registry = _registry()
    schema = registry.contents(
        f"https://ngff.openmicroscopy.org/{_SCHEMA_VERSION}/schemas/{name}.schema"
    )
    validator = Draft202012Validator(schema, registry=registry)
    seen: set[str] = set()
    # each error quotes its instance: a bounded number of them, however broken the document
    first = itertools.islice(validator.iter_errors(doc), MAX_MESSAGES_PER_DOCUMENT)
    for err in sorted(first, key=lambda e: list(e.absolute_path)):
        parts = [str(x) for x in err.absolute_path]
        ptr = _p(base, *parts[1:]) if parts[:1] == ["ome"] else _p(base, *parts)
        msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
        key = ptr + msg
        if key in seen:
            continue
        seen.add(key)
        ctx.error(
            ptr, f"the OME-Zarr {_SCHEMA_VERSION} JSON schema ({name}.schema) rejects this: {msg}"
        )
