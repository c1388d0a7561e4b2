"""Validate OME-NGFF metadata and the Zarr hierarchy it describes.

The rules are applied to the raw JSON, never to a lenient parse of it, so that every problem is
reported at its place: each :class:`ValidationMessage` names the node, the metadata document and
a JSON pointer into that document (``/attributes/ome/multiscales/0/axes/2/type``).

What is checked:

* OME-NGFF 0.4 (top-level keys of ``.zattrs``), 0.5 (the ``ome`` object of ``zarr.json``) and, where
  the draft is settled, 0.6 (coordinate systems): images (``multiscales``, ``omero``), labels
  (``labels``, ``image-label``), plates, wells and bioformats2raw containers. The official JSON
  schemas are followed exactly; rules of the specification text that the schemas cannot express
  are added (unique names, one scale per level, axis order...).
* For a store: the hierarchy is walked through the OME metadata (image -> levels and labels,
  plate -> wells -> fields, bioformats2raw -> series) and Zarr sanity is checked: dataset paths
  stay inside the store and resolve to arrays, array ranks match the axes and transformations,
  levels shrink, label images are integers. A corrupt document or a bad array is reported and the
  walk goes on with the rest of the hierarchy.

With ``strict=True`` the "strict" schemas of the specification apply too (names, types and
metadata of images; plate names; versions in 0.4) and some recommendations become errors (units
from the specification's list, one transformation value per axis).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from napari_zarr_explorer.errors import (
    CodecError,
    ExplorerError,
    MetadataError,
    NotFoundError,
    PathEscapeError,
    UnsafeDataError,
)
from napari_zarr_explorer.store import Location, is_url, open_store, parse_location, safe_join

if TYPE_CHECKING:
    from napari_zarr_explorer.store import NodeMeta

__all__ = ["ValidationMessage", "ValidationReport", "validate"]

Level = Literal["error", "warning"]

#: Largest JSON attributes file read in attributes mode.
MAX_JSON_BYTES = 256 * 1024 * 1024
#: Largest ``OME/METADATA.ome.xml`` scanned for its number of images.
MAX_OME_XML_BYTES = 64 * 1024 * 1024

# Units named by the specification (UDUNITS-2); other units are reported (error when strict).
_SPACE_UNIT_NAMES = (
    "angstrom attometer centimeter decimeter exameter femtometer foot gigameter hectometer inch "
    "kilometer megameter meter micrometer mile millimeter nanometer parsec petameter picometer "
    "terameter yard yoctometer yottameter zeptometer zettameter"
)
_TIME_UNIT_NAMES = (
    "attosecond centisecond day decisecond exasecond femtosecond gigasecond hectosecond hour "
    "kilosecond megasecond microsecond millisecond minute nanosecond petasecond picosecond second "
    "terasecond yoctosecond yottasecond zeptosecond zettasecond"
)
SPACE_UNITS = frozenset(_SPACE_UNIT_NAMES.split())
TIME_UNITS = frozenset(_TIME_UNIT_NAMES.split())

_SECTIONS = (
    "multiscales",
    "omero",
    "image-label",
    "labels",
    "plate",
    "well",
    "bioformats2raw.layout",
    "series",
)
_OLD_VERSIONS = frozenset({"0.1", "0.2", "0.3"})
_NAME_RE = re.compile(r"^[A-Za-z0-9]+$")
_WELL_PATH_RE = re.compile(r"^[A-Za-z0-9]+/[A-Za-z0-9]+$")
_HEX_COLOR_RE = re.compile(r"^[0-9A-Fa-f]{6}$")
_KEY_PREFIX_RE = re.compile(
    r"^(\S*(?:zarr\.json|\.zarray|\.zgroup|\.zattrs|\.zmetadata)): (.*)$", re.S
)
_OME_XML_IMAGE_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Image[\s>/]")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidationMessage:
    """One problem found by :func:`validate`.

    Attributes
    ----------
    level
        ``"error"`` (the metadata does not conform) or ``"warning"`` (it conforms, but something
        is likely wrong or will not display as intended).
    path
        JSON pointer into the document named by *file* (``/attributes/ome/multiscales/0/axes``
        in a ``zarr.json``, ``/multiscales/0/axes`` in a ``.zattrs``); ``""`` is the whole
        document.
    message
        What is wrong and, where it helps, what is expected.
    node
        Store path of the node concerned (``""`` for the root, ``"labels/cells"``...).
    file
        Store key of the metadata document (``"labels/cells/zarr.json"``), or the name of the
        JSON file validated.
    """

    level: Level
    path: str
    message: str
    node: str = ""
    file: str = ""

    @property
    def location(self) -> str:
        """``file#path`` for display (``zarr.json#/attributes/ome/version``)."""
        if self.file:
            return f"{self.file}#{self.path}" if self.path else self.file
        return self.path or (self.node or "/")

    def to_dict(self) -> dict[str, str]:
        """JSON-safe mapping of the message's fields."""
        return {
            "level": self.level,
            "node": self.node,
            "file": self.file,
            "path": self.path,
            "message": self.message,
        }

    def __str__(self) -> str:
        return f"{self.level}: {self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The result of :func:`validate`.

    Attributes
    ----------
    source
        What was validated (store location, JSON file, or ``"<attributes>"``).
    valid
        True when no error was found (warnings do not count).
    messages
        Every problem found, errors and warnings, in the order of the walk.
    version
        OME-NGFF version of the root metadata (``"0.4"``, ``"0.5"``, ``"0.6rc0"``...), None when
        there is none.
    kind
        Kind of the root: ``"image"``, ``"label"``, ``"labels"``, ``"plate"``, ``"well"``,
        ``"bioformats2raw"`` or ``"series"``; None without OME metadata.
    strict
        Whether the strict rules were applied.
    mode
        ``"store"`` (a hierarchy was walked) or ``"attributes"`` (one JSON document was judged).
    nodes_checked
        Number of Zarr nodes whose metadata was read (0 in attributes mode).
    """

    source: str
    valid: bool
    messages: tuple[ValidationMessage, ...] = ()
    version: str | None = None
    kind: str | None = None
    strict: bool = False
    mode: Literal["store", "attributes"] = "store"
    nodes_checked: int = 0

    @property
    def errors(self) -> tuple[ValidationMessage, ...]:
        """The messages of level ``"error"``."""
        return tuple(m for m in self.messages if m.level == "error")

    @property
    def warnings(self) -> tuple[ValidationMessage, ...]:
        """The messages of level ``"warning"``."""
        return tuple(m for m in self.messages if m.level == "warning")

    def summary(self, *, max_messages: int = 10) -> str:
        """One line: the verdict, then the first errors (or warnings) with their location."""
        what = f"OME-NGFF {self.version} {self.kind}" if self.version else (self.kind or "input")
        errors, warnings = self.errors, self.warnings
        counts = _plural(len(errors), "error") + ", " + _plural(len(warnings), "warning")
        head = f"{'valid' if self.valid else 'invalid'} {what} ({counts})"
        shown = errors or warnings
        if not shown:
            return head
        parts = [f"{m.location}: {m.message.rstrip('.')}" for m in shown[:max_messages]]
        if len(shown) > max_messages:
            parts.append(f"... and {len(shown) - max_messages} more")
        return head + ": " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping of the report."""
        return {
            "source": self.source,
            "valid": self.valid,
            "version": self.version,
            "kind": self.kind,
            "strict": self.strict,
            "mode": self.mode,
            "nodes_checked": self.nodes_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "messages": [m.to_dict() for m in self.messages],
        }

    def __str__(self) -> str:
        lines = [
            f"Validation of {self.source}: {'VALID' if self.valid else 'INVALID'}"
            + (f" (OME-NGFF {self.version} {self.kind})" if self.version else ""),
            f"  {_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"
            + (f", {_plural(self.nodes_checked, 'node')} checked" if self.mode == "store" else "")
            + (", strict rules" if self.strict else ""),
        ]
        lines.extend(f"  {m}" for m in self.messages)
        return "\n".join(lines)

    def _repr_html_(self, *, max_rows: int = 500) -> str:
        from napari_zarr_explorer._html import esc, table

        verdict = (
            "<b style='color:#2ca02c'>valid</b>"
            if self.valid
            else "<b style='color:#c00'>invalid</b>"
        )
        what = f"OME-NGFF {esc(self.version)} {esc(self.kind)}" if self.version else ""
        counts = (
            f"{_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"
            + (f", {_plural(self.nodes_checked, 'node')} checked" if self.mode == "store" else "")
            + (", strict rules" if self.strict else "")
        )
        head = f"<div><code>{esc(self.source)}</code>: {verdict} {what} ({esc(counts)})</div>"
        if not self.messages:
            return head
        rows = []
        for m in self.messages[:max_rows]:
            cls = "nze-err" if m.level == "error" else "nze-warn"
            rows.append(
                (
                    f"<span class='{cls}'>{esc(m.level)}</span>",
                    m.node or "/",
                    m.file,
                    m.path or "(document)",
                    m.message,
                )
            )
        more = ""
        if len(self.messages) > max_rows:
            more = f"<div>... and {len(self.messages) - max_rows} more messages</div>"
        return (
            head
            + table(("level", "node", "file", "JSON path", "message"), rows, raw_columns=(0,))
            + more
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _none_exist(n: int, what: str) -> str:
    head = (
        f"the {what} listed here does not exist"
        if n == 1
        else f"none of the {n} {what}s listed here exist"
    )
    return f"{head} in the store: only the metadata was checked (a metadata-only hierarchy)."


def _axes_word(n: int) -> str:
    return f"{n} axis" if n == 1 else f"{n} axes"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _p(base: str, *parts: str | int) -> str:
    """Extend the JSON pointer *base* with *parts* (escaping ``~`` and ``/``)."""
    out = base
    for part in parts:
        out += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return out


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):  # pragma: no cover - JSON documents always dump
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {_short(value)}"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Ctx:
    """Where messages go and what they are about (one metadata document)."""

    sink: list[ValidationMessage]
    strict: bool
    node: str = ""
    file: str = ""
    prefix: str = ""
    zarr_format: int | None = None

    def error(self, ptr: str, message: str) -> None:
        self.sink.append(
            ValidationMessage("error", self.prefix + ptr, message, self.node, self.file)
        )

    def warn(self, ptr: str, message: str) -> None:
        self.sink.append(
            ValidationMessage("warning", self.prefix + ptr, message, self.node, self.file)
        )

    def strict_error(self, ptr: str, message: str) -> None:
        """Report an error with ``strict=True``, a warning otherwise."""
        (self.error if self.strict else self.warn)(ptr, message)

    def missing(self, ptr: str, what: str) -> None:
        self.error(ptr, f"required, but missing: {what}.")


@dataclass
class _OmeInfo:
    """What the judge of one attributes document found (used to walk the hierarchy)."""

    version: str | None = None
    family: str | None = None  # "0.4", "0.5" or "0.6": the rule set applied; None if none
    container: Mapping[str, Any] | None = None
    base: str = ""  # JSON pointer of the container within the attributes
    kinds: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        for k in ("plate", "well", "bioformats2raw", "label", "image", "labels", "series"):
            if k in self.kinds:
                return k
        return None


def _kinds(c: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    if "plate" in c:
        out.append("plate")
    if "well" in c:
        out.append("well")
    if "bioformats2raw.layout" in c:
        out.append("bioformats2raw")
    if "multiscales" in c:
        out.append("label" if "image-label" in c else "image")
    elif "image-label" in c:
        out.append("label")
    if "labels" in c:
        out.append("labels")
    if "series" in c:
        out.append("series")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Judging one attributes document
# --------------------------------------------------------------------------------------------


def _judge_attributes(attrs: Mapping[str, Any], ctx: _Ctx) -> _OmeInfo:
    """Apply the OME-NGFF rules to one attributes object; messages go to *ctx*."""
    if "ome" in attrs:
        return _judge_ome_layout(attrs, ctx)
    present = [k for k in _SECTIONS if k in attrs]
    info = _OmeInfo()
    if not present:
        return info
    info.container, info.base, info.kinds = attrs, "", _kinds(attrs)
    if ctx.zarr_format == 3:
        ctx.error(
            _p("", present[0]),
            "OME-NGFF metadata at the top level of the attributes is the 0.4 layout, which is "
            "defined for Zarr v2 (.zattrs) only; in a Zarr v3 zarr.json it belongs in an 'ome' "
            'object with "version": "0.5".',
        )
    fields = _version_fields_04(attrs)
    old: list[str] = []
    for ptr, value in fields:
        if not isinstance(value, str):
            ctx.error(ptr, f'must be the string "0.4", found {_kind_of(value)}.')
        elif value == "0.4":
            continue
        elif value in _OLD_VERSIONS:
            old.append(value)
            ctx.error(
                ptr,
                f"OME-NGFF {value} is not validated here (0.4, 0.5 and the 0.6 draft are); "
                "convert the metadata to a current version.",
            )
        elif value.startswith(("0.5", "0.6")):
            ctx.error(
                ptr,
                f"OME-NGFF {value} metadata belongs in an 'ome' object of zarr.json (Zarr v3), "
                "not at the top level of the attributes.",
            )
        else:
            ctx.error(ptr, f'unknown OME-NGFF version {value!r}; expected "0.4".')
    if fields and len(old) == len(fields):
        info.version = old[0]
        return info
    info.version, info.family = "0.4", "0.4"
    versioned = _versioned_sections_04(attrs)
    if ctx.strict:
        for ptr, section in versioned:
            if "version" not in section:
                ctx.missing(_p(ptr, "version"), 'the strict schema requires "version": "0.4"')
    elif versioned and not fields:
        ctx.warn("", 'no "version" is given: the metadata was judged as OME-NGFF 0.4.')
    _check_sections(attrs, ctx, "", "0.4")
    return info


def _version_fields_04(attrs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (_p(ptr, "version"), section["version"])
        for ptr, section in _versioned_sections_04(attrs)
        if "version" in section
    ]


def _versioned_sections_04(attrs: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    ms = attrs.get("multiscales")
    if isinstance(ms, list):
        out.extend((_p("", "multiscales", i), m) for i, m in enumerate(ms) if isinstance(m, dict))
    for key in ("plate", "well", "image-label"):
        if isinstance(attrs.get(key), dict):
            out.append((_p("", key), attrs[key]))
    return out


def _judge_ome_layout(attrs: Mapping[str, Any], ctx: _Ctx) -> _OmeInfo:
    info = _OmeInfo()
    ome = attrs["ome"]
    if not isinstance(ome, dict):
        ctx.error(
            "/ome", f"must be a JSON object holding the OME-NGFF metadata, found {_kind_of(ome)}."
        )
        return info
    info.container, info.base, info.kinds = ome, "/ome", _kinds(ome)
    if ctx.zarr_format == 2:
        ctx.error(
            "/ome",
            "an 'ome' object is the OME-NGFF 0.5 layout, defined for Zarr v3 (zarr.json) only; "
            "in Zarr v2 (.zattrs) use the 0.4 layout.",
        )
    version = ome.get("version")
    family = "0.5"
    if "version" not in ome:
        ctx.missing("/ome/version", 'the OME-NGFF version, e.g. "0.5"')
    elif not isinstance(version, str):
        ctx.error("/ome/version", f'must be a string such as "0.5", found {_kind_of(version)}.')
    elif version == "0.5":
        info.version = version
    elif version.startswith("0.6"):
        info.version, family = version, "0.6"
        ctx.warn(
            "/ome/version",
            f"OME-NGFF {version} is a draft: it is checked where the draft is settled (coordinate "
            "systems, transformations, labels, plates, wells).",
        )
    elif version == "0.4" or version in _OLD_VERSIONS:
        ctx.error(
            "/ome/version",
            f"OME-NGFF {version} does not use an 'ome' object: its metadata sits at the top level "
            "of .zattrs (Zarr v2).",
        )
        info.version = version
        return info
    else:
        ctx.error("/ome/version", f'unknown OME-NGFF version {version!r}; expected "0.5".')
        info.version = version
        return info
    info.family = family
    present = [k for k in _SECTIONS if k in ome]
    if not present:
        ctx.error(
            "/ome",
            "holds no OME-NGFF metadata: expected one of 'multiscales', 'image-label', 'labels', "
            "'plate', 'well', 'bioformats2raw.layout' or 'series'.",
        )
    for key in _SECTIONS:
        if key in attrs:
            ctx.warn(
                _p("", key),
                f"'{key}' at the top level is the 0.4 layout and is ignored next to an 'ome' "
                "object; move it into 'ome'.",
            )
    _check_sections(ome, ctx, "/ome", family)
    return info


def _check_sections(c: Mapping[str, Any], ctx: _Ctx, base: str, family: str) -> None:
    has_ms = "multiscales" in c
    if has_ms:
        _check_multiscales(c["multiscales"], ctx, _p(base, "multiscales"), family)
    if "omero" in c:
        _check_omero(c["omero"], ctx, _p(base, "omero"), has_ms)
    if "image-label" in c:
        _check_image_label(c["image-label"], ctx, _p(base, "image-label"))
    if "labels" in c:
        _check_path_list(c["labels"], ctx, _p(base, "labels"), "label image")
    if "plate" in c:
        _check_plate(c["plate"], ctx, _p(base, "plate"))
    if "well" in c:
        _check_well(c["well"], ctx, _p(base, "well"))
    if "bioformats2raw.layout" in c:
        layout = c["bioformats2raw.layout"]
        if not _is_num(layout) or layout != 3:
            ctx.error(
                _p(base, "bioformats2raw.layout"),
                f"must be 3 (the only layout defined), found {_kind_of(layout)}.",
            )
    if "series" in c:
        _check_path_list(c["series"], ctx, _p(base, "series"), "series image")


# --- images -----------------------------------------------------------------------------------


def _check_unique_objects(items: Sequence[Any], ctx: _Ctx, ptr: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            ctx.error(_p(ptr, i), f"repeats {what} {seen[key]}: the items must be unique.")
        else:
            seen[key] = i


def _check_multiscales(value: Any, ctx: _Ctx, ptr: str, family: str) -> None:
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of multiscale images, found {_kind_of(value)}.")
        return
    if not value:
        ctx.error(ptr, "must list at least one multiscale image, found an empty list.")
        return
    _check_unique_objects(value, ctx, ptr, "multiscale")
    for i, m in enumerate(value):
        p = _p(ptr, i)
        if not isinstance(m, dict):
            ctx.error(p, f"must be a JSON object, found {_kind_of(m)}.")
            continue
        if "name" in m and not isinstance(m["name"], str):
            ctx.error(_p(p, "name"), f"must be a string, found {_kind_of(m['name'])}.")
        if ctx.strict:
            for key in ("name", "type", "metadata"):
                if key not in m:
                    ctx.missing(
                        _p(p, key), f"the strict schema requires '{key}' on each multiscale"
                    )
        if family == "0.6":
            n_axes = _check_coordinate_systems(m, ctx, p)
        elif "axes" not in m:
            ctx.missing(_p(p, "axes"), "the list of axes of the image")
            n_axes = None
        else:
            n_axes = _check_axes(m["axes"], ctx, _p(p, "axes"))
        if "datasets" not in m:
            ctx.missing(_p(p, "datasets"), "the list of resolution levels (datasets)")
        else:
            _check_datasets(m["datasets"], ctx, _p(p, "datasets"), n_axes, family)
        if "coordinateTransformations" in m:
            ct_ptr = _p(p, "coordinateTransformations")
            if family == "0.6":
                _check_free_transforms(m["coordinateTransformations"], ctx, ct_ptr, n_axes)
            else:
                _check_level_transforms(m["coordinateTransformations"], ctx, ct_ptr, n_axes, family)


def _check_axes(axes: Any, ctx: _Ctx, ptr: str) -> int | None:
    if not isinstance(axes, list):
        ctx.error(ptr, f"must be a list of axis objects, found {_kind_of(axes)}.")
        return None
    n = len(axes)
    if n < 2:
        ctx.error(ptr, f"has {_axes_word(n)}; at least 2 are required.")
    elif n > 5:
        ctx.error(ptr, f"has {n} axes; at most 5 are allowed.")
    names: dict[str, int] = {}
    types: list[str | None] = []
    labels: list[str] = []
    for j, ax in enumerate(axes):
        pj = _p(ptr, j)
        if not isinstance(ax, dict):
            ctx.error(pj, f"must be an axis object with a 'name', found {_kind_of(ax)}.")
            types.append(None)
            labels.append(f"#{j}")
            continue
        name = ax.get("name")
        if "name" not in ax:
            ctx.missing(_p(pj, "name"), "every axis needs a name")
        elif not isinstance(name, str):
            ctx.error(_p(pj, "name"), f"must be a string, found {_kind_of(name)}.")
        elif name in names:
            ctx.error(
                _p(pj, "name"),
                f"the axis name {name!r} is already used by axis {names[name]}: names must be "
                "unique.",
            )
        else:
            names[name] = j
        label = name if isinstance(name, str) else f"#{j}"
        typ = ax.get("type")
        if typ is not None and not isinstance(typ, str):
            ctx.error(_p(pj, "type"), f"must be a string, found {_kind_of(typ)}.")
            typ = None
        types.append(typ)
        labels.append(f"{label}={typ!r}" if typ is not None else f"{label} (untyped)")
        if "unit" in ax:
            unit = ax["unit"]
            if unit is not None and not isinstance(unit, str):
                ctx.error(_p(pj, "unit"), f"must be a string, found {_kind_of(unit)}.")
            elif typ == "space" and unit not in SPACE_UNITS and unit is not None:
                ctx.strict_error(
                    _p(pj, "unit"),
                    f"{unit!r} is not one of the length units of the specification "
                    "(UDUNITS-2 names such as 'micrometer', 'nanometer', 'millimeter').",
                )
            elif typ == "time" and unit not in TIME_UNITS and unit is not None:
                ctx.strict_error(
                    _p(pj, "unit"),
                    f"{unit!r} is not one of the time units of the specification "
                    "(UDUNITS-2 names such as 'second', 'millisecond', 'minute').",
                )
    n_space = types.count("space")
    if not 2 <= n_space <= 3:
        ctx.error(
            ptr,
            f"needs 2 or 3 axes of type 'space', found {n_space} "
            f"({'axes: ' + ', '.join(labels) if labels else 'no axes'}).",
        )
    if types.count("time") > 1:
        ctx.error(ptr, f"has {types.count('time')} axes of type 'time'; at most one is allowed.")
    others = [t for t in types if t not in ("space", "time")]
    if len(others) > 1:
        ctx.error(
            ptr,
            f"has {len(others)} axes that are neither 'space' nor 'time' "
            f"({', '.join(lbl for lbl, t in zip(labels, types, strict=True) if t in others)}); "
            "at most one (of type 'channel' or a custom type) is allowed.",
        )
    rank = [0 if t == "time" else 2 if t == "space" else 1 for t in types]
    if any(a > b for a, b in itertools.pairwise(rank)):
        ctx.error(
            ptr,
            "the axes must be ordered: 'time' first, then 'channel' or custom, then the 'space' "
            f"axes; found {', '.join(labels)}.",
        )
    return n


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


def _check_datasets(value: Any, ctx: _Ctx, ptr: str, n_axes: int | None, family: str) -> None:
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of datasets (resolution levels), found {_kind_of(value)}.")
        return
    if not value:
        ctx.error(ptr, "must list at least one dataset (resolution level), found none.")
        return
    paths: dict[str, int] = {}
    for i, d in enumerate(value):
        pi = _p(ptr, i)
        if not isinstance(d, dict):
            ctx.error(pi, f"must be a dataset object with 'path', found {_kind_of(d)}.")
            continue
        if "path" not in d:
            ctx.missing(_p(pi, "path"), "the path of this level's array")
        else:
            path = d["path"]
            if not isinstance(path, str):
                ctx.error(_p(pi, "path"), f"must be a string, found {_kind_of(path)}.")
            elif not path.strip("/"):
                ctx.error(_p(pi, "path"), "must name the array of this level, found an empty path.")
            else:
                try:
                    safe_join("", path)
                except PathEscapeError as exc:
                    ctx.error(_p(pi, "path"), exc.message)
                if path in paths:
                    ctx.error(
                        _p(pi, "path"), f"{path!r} is already the path of dataset {paths[path]}."
                    )
                else:
                    paths[path] = i
        if "coordinateTransformations" not in d:
            ctx.missing(
                _p(pi, "coordinateTransformations"),
                "each dataset needs a 'scale' transformation (optionally followed by a "
                "'translation')",
            )
        else:
            _check_level_transforms(
                d["coordinateTransformations"],
                ctx,
                _p(pi, "coordinateTransformations"),
                n_axes,
                family,
            )


def _check_level_transforms(
    value: Any, ctx: _Ctx, ptr: str, n_axes: int | None, family: str
) -> None:
    """One 'scale', optionally followed by one 'translation' (datasets; multiscales in 0.4/0.5)."""
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of transformations, found {_kind_of(value)}.")
        return
    if (
        family == "0.6"
        and len(value) == 1
        and isinstance(value[0], dict)
        and value[0].get("type") == "sequence"
    ):
        ptr = _p(ptr, 0, "transformations")
        value = value[0].get("transformations")
        if not isinstance(value, list):
            ctx.error(ptr, f"must be a list of transformations, found {_kind_of(value)}.")
            return
    if not value:
        ctx.error(ptr, "must contain one 'scale' transformation, found an empty list.")
        return
    types: list[Any] = []
    for j, t in enumerate(value):
        pj = _p(ptr, j)
        if not isinstance(t, dict):
            ctx.error(pj, f"must be a transformation object, found {_kind_of(t)}.")
            types.append(None)
            continue
        typ = t.get("type")
        types.append(typ)
        if "type" not in t:
            ctx.missing(_p(pj, "type"), "'scale' or 'translation'")
        elif typ in ("scale", "translation"):
            _check_vector(t, typ, ctx, pj, n_axes)
        else:
            ctx.error(
                _p(pj, "type"),
                f"{_short(typ)} is not allowed here: a level's transformations are one 'scale', "
                "optionally followed by one 'translation'.",
            )
        if family == "0.6":
            for key in ("input", "output"):
                if key in t and not isinstance(t[key], str):
                    ctx.error(_p(pj, key), f"must be a string, found {_kind_of(t[key])}.")
    n_scale = types.count("scale")
    if n_scale == 0:
        ctx.error(ptr, "must contain exactly one 'scale' transformation, found none.")
    elif n_scale > 1:
        ctx.error(ptr, f"must contain exactly one 'scale' transformation, found {n_scale}.")
    elif types[0] != "scale":
        ctx.error(ptr, "the 'scale' transformation must come first.")
    if types.count("translation") > 1:
        ctx.error(ptr, f"may contain one 'translation', found {types.count('translation')}.")


def _check_free_transforms(value: Any, ctx: _Ctx, ptr: str, n_axes: int | None) -> None:
    """0.6 draft: transformations between coordinate systems (any type; vectors checked)."""
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
        elif typ in ("scale", "translation"):
            _check_vector(t, typ, ctx, pj, n_axes)
        for key in ("input", "output"):
            if key in t and not isinstance(t[key], str):
                ctx.error(_p(pj, key), f"must be a string, found {_kind_of(t[key])}.")


def _check_vector(t: Mapping[str, Any], key: str, ctx: _Ctx, pj: str, n_axes: int | None) -> None:
    if key not in t:
        if "path" in t:
            ctx.error(
                _p(pj, "path"),
                f"a {key} stored in a binary file is not supported by the schema: give the "
                f"values inline in '{key}'.",
            )
        else:
            ctx.missing(_p(pj, key), f"the list of {key} values, one per axis")
        return
    vec = t[key]
    if not isinstance(vec, list) or not vec:
        ctx.error(_p(pj, key), f"must be a non-empty list of numbers, found {_short(vec)}.")
        return
    for k, x in enumerate(vec):
        if not _is_num(x):
            ctx.error(_p(pj, key, k), f"must be a number, found {_kind_of(x)}.")
            return
        if not math.isfinite(x):
            ctx.error(_p(pj, key, k), f"must be a finite number, found {x}.")
            return
    if key == "scale" and any(x <= 0 for x in vec):
        ctx.warn(_p(pj, key), f"scale values should be positive, found {_short(vec)}.")
    if n_axes is not None and len(vec) != n_axes:
        ctx.strict_error(
            _p(pj, key),
            f"has {_plural(len(vec), 'value')} for {_axes_word(n_axes)}: the specification "
            "requires one value per axis.",
        )


def _check_omero(value: Any, ctx: _Ctx, ptr: str, has_multiscales: bool) -> None:
    if not isinstance(value, dict):
        ctx.error(ptr, f"must be a JSON object, found {_kind_of(value)}.")
        return
    if not has_multiscales:
        ctx.error(ptr, "'omero' rendering settings belong to an image, next to 'multiscales'.")
    if "channels" not in value:
        ctx.missing(_p(ptr, "channels"), "the list of channel rendering settings")
        return
    channels = value["channels"]
    if not isinstance(channels, list):
        ctx.error(_p(ptr, "channels"), f"must be a list, found {_kind_of(channels)}.")
        return
    for k, ch in enumerate(channels):
        pk = _p(ptr, "channels", k)
        if not isinstance(ch, dict):
            ctx.error(pk, f"must be a channel object, found {_kind_of(ch)}.")
            continue
        if "color" not in ch:
            ctx.missing(_p(pk, "color"), "the display colour as a hex string such as 'FF0000'")
        elif not isinstance(ch["color"], str):
            ctx.error(
                _p(pk, "color"),
                f"must be a hex colour string such as 'FF0000', found {_kind_of(ch['color'])}.",
            )
        elif not _HEX_COLOR_RE.match(ch["color"]):
            ctx.warn(
                _p(pk, "color"), f"{ch['color']!r} is not an RRGGBB hex colour such as 'FF0000'."
            )
        if "window" not in ch:
            ctx.missing(_p(pk, "window"), "the display window {start, end, min, max}")
        elif not isinstance(ch["window"], dict):
            ctx.error(
                _p(pk, "window"),
                f"must be an object {{start, end, min, max}}, found {_kind_of(ch['window'])}.",
            )
        else:
            for key in ("start", "min", "end", "max"):
                if key not in ch["window"]:
                    ctx.missing(_p(pk, "window", key), "a number")
                elif not _is_num(ch["window"][key]):
                    ctx.error(
                        _p(pk, "window", key),
                        f"must be a number, found {_kind_of(ch['window'][key])}.",
                    )
        checks: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
            ("label", lambda v: isinstance(v, str), "a string"),
            ("family", lambda v: isinstance(v, str), "a string"),
            ("active", lambda v: isinstance(v, bool), "true or false"),
        )
        for key, ok, what in checks:
            if key in ch and not ok(ch[key]):
                ctx.error(_p(pk, key), f"must be {what}, found {_kind_of(ch[key])}.")


# --- labels -----------------------------------------------------------------------------------


def _check_image_label(value: Any, ctx: _Ctx, ptr: str) -> None:
    if not isinstance(value, dict):
        ctx.error(ptr, f"must be a JSON object, found {_kind_of(value)}.")
        return
    if "colors" in value:
        _check_label_entries(value["colors"], ctx, _p(ptr, "colors"), colors=True)
    elif ctx.strict:
        ctx.missing(_p(ptr, "colors"), "the strict schema requires the label colours")
    if "properties" in value:
        _check_label_entries(value["properties"], ctx, _p(ptr, "properties"), colors=False)
    if "source" in value:
        src = value["source"]
        if not isinstance(src, dict):
            ctx.error(_p(ptr, "source"), f"must be an object, found {_kind_of(src)}.")
        elif "image" in src and not isinstance(src["image"], str):
            ctx.error(
                _p(ptr, "source", "image"),
                f"must be a relative path string, found {_kind_of(src['image'])}.",
            )


def _check_label_entries(value: Any, ctx: _Ctx, ptr: str, *, colors: bool) -> None:
    what = "colour" if colors else "property"
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of {what} objects, found {_kind_of(value)}.")
        return
    if not value:
        ctx.error(ptr, f"must contain at least one {what} when present, found an empty list.")
        return
    _check_unique_objects(value, ctx, ptr, f"{what} entry")
    seen: dict[Any, int] = {}
    for k, entry in enumerate(value):
        pk = _p(ptr, k)
        if not isinstance(entry, dict):
            ctx.error(pk, f"must be a {what} object, found {_kind_of(entry)}.")
            continue
        if "label-value" not in entry:
            ctx.missing(_p(pk, "label-value"), "the pixel value this entry is about")
        else:
            lv = entry["label-value"]
            if colors and not _is_num(lv):
                ctx.error(_p(pk, "label-value"), f"must be a number, found {_kind_of(lv)}.")
            elif not colors and not _is_int(lv):
                ctx.error(_p(pk, "label-value"), f"must be an integer, found {_kind_of(lv)}.")
            elif lv in seen:
                ctx.error(
                    _p(pk, "label-value"),
                    f"label value {lv} already has a {what} entry ({seen[lv]}); values must be "
                    "unique.",
                )
            else:
                seen[lv] = k
        if colors and "rgba" in entry:
            rgba = entry["rgba"]
            if not isinstance(rgba, list) or len(rgba) != 4:
                ctx.error(
                    _p(pk, "rgba"),
                    f"must be a list of 4 integers from 0 to 255, found {_short(rgba)}.",
                )
            else:
                for c, x in enumerate(rgba):
                    if not _is_int(x) or not 0 <= x <= 255:
                        ctx.error(
                            _p(pk, "rgba", c),
                            f"must be an integer from 0 to 255, found {_short(x)}.",
                        )
                        break


def _check_path_list(value: Any, ctx: _Ctx, ptr: str, what: str) -> None:
    if not isinstance(value, list):
        ctx.error(ptr, f"must be a list of paths, found {_kind_of(value)}.")
        return
    if not value:
        ctx.warn(ptr, f"lists no {what}.")
    seen: dict[str, int] = {}
    for k, item in enumerate(value):
        pk = _p(ptr, k)
        if not isinstance(item, str):
            ctx.error(pk, f"must be a relative path string, found {_kind_of(item)}.")
            continue
        try:
            if not safe_join("", item):
                ctx.error(pk, f"must name a {what}, found an empty path.")
                continue
        except PathEscapeError as exc:
            ctx.error(pk, exc.message)
            continue
        if item in seen:
            ctx.error(pk, f"{item!r} is already listed at {seen[item]}.")
        else:
            seen[item] = k


# --- plates and wells -------------------------------------------------------------------------


def _check_plate(value: Any, ctx: _Ctx, ptr: str) -> None:
    if not isinstance(value, dict):
        ctx.error(ptr, f"must be a JSON object, found {_kind_of(value)}.")
        return
    names: dict[str, list[str | None]] = {}
    for key, what in (("columns", "column"), ("rows", "row")):
        pk = _p(ptr, key)
        if key not in value:
            ctx.missing(pk, f"the list of the plate's {key}")
            continue
        items = value[key]
        if not isinstance(items, list):
            ctx.error(pk, f"must be a list of {what} objects, found {_kind_of(items)}.")
            continue
        if not items:
            ctx.error(pk, f"must list at least one {what}, found an empty list.")
            continue
        seen: dict[str, int] = {}
        names[key] = []
        for i, item in enumerate(items):
            pi = _p(pk, i)
            name = item.get("name") if isinstance(item, dict) else None
            names[key].append(name if isinstance(name, str) else None)
            if not isinstance(item, dict):
                ctx.error(pi, f"must be a {what} object with a 'name', found {_kind_of(item)}.")
            elif "name" not in item:
                ctx.missing(_p(pi, "name"), f"the {what} name")
            elif not isinstance(name, str):
                ctx.error(_p(pi, "name"), f"must be a string, found {_kind_of(name)}.")
            elif not _NAME_RE.match(name):
                ctx.error(_p(pi, "name"), f"{name!r} must contain only letters and digits.")
            elif name in seen:
                ctx.error(_p(pi, "name"), f"{name!r} is already the name of {what} {seen[name]}.")
            else:
                seen[name] = i
    _check_wells(value, ctx, ptr, names)
    _check_acquisitions(value, ctx, ptr)
    if "field_count" in value:
        fc = value["field_count"]
        if not _is_int(fc) or fc <= 0:
            ctx.error(_p(ptr, "field_count"), f"must be a positive integer, found {_kind_of(fc)}.")
    if "name" in value and not isinstance(value["name"], str):
        ctx.error(_p(ptr, "name"), f"must be a string, found {_kind_of(value['name'])}.")
    elif "name" not in value and ctx.strict:
        ctx.missing(_p(ptr, "name"), "the strict schema requires the plate name")


def _check_wells(
    plate: Mapping[str, Any], ctx: _Ctx, ptr: str, names: dict[str, list[str | None]]
) -> None:
    pw = _p(ptr, "wells")
    if "wells" not in plate:
        ctx.missing(pw, "the list of the plate's wells")
        return
    wells = plate["wells"]
    if not isinstance(wells, list):
        ctx.error(pw, f"must be a list of well objects, found {_kind_of(wells)}.")
        return
    if not wells:
        ctx.error(pw, "must list at least one well, found an empty list.")
        return
    seen: dict[str, int] = {}
    for i, well in enumerate(wells):
        pi = _p(pw, i)
        if not isinstance(well, dict):
            ctx.error(pi, f"must be a well object, found {_kind_of(well)}.")
            continue
        path = well.get("path")
        if "path" not in well:
            ctx.missing(_p(pi, "path"), "the 'row/column' path of the well group")
        elif not isinstance(path, str):
            ctx.error(_p(pi, "path"), f"must be a string, found {_kind_of(path)}.")
        elif not _WELL_PATH_RE.match(path):
            ctx.error(
                _p(pi, "path"),
                f"{path!r} must be '<row>/<column>': two names of letters and digits separated "
                "by one '/'.",
            )
        elif path in seen:
            ctx.error(_p(pi, "path"), f"{path!r} is already the path of well {seen[path]}.")
        else:
            seen[path] = i
        index: dict[str, int] = {}
        for key, axis in (("rowIndex", "rows"), ("columnIndex", "columns")):
            if key not in well:
                ctx.missing(_p(pi, key), f"the index of the well in '{axis}'")
                continue
            v = well[key]
            if not _is_int(v) or v < 0:
                ctx.error(_p(pi, key), f"must be an integer >= 0, found {_kind_of(v)}.")
            elif axis in names and v >= len(names[axis]):
                ctx.error(
                    _p(pi, key),
                    f"{v} is out of range: the plate has {len(names[axis])} {axis}.",
                )
            elif axis in names:
                index[axis] = v
        if isinstance(path, str) and _WELL_PATH_RE.match(path) and len(index) == 2:
            row, col = names["rows"][index["rows"]], names["columns"][index["columns"]]
            if row is not None and col is not None and path != f"{row}/{col}":
                ctx.warn(
                    _p(pi, "path"),
                    f"{path!r} is not '<row>/<column>' = '{row}/{col}' (rows[{index['rows']}], "
                    f"columns[{index['columns']}]).",
                )


def _check_acquisitions(plate: Mapping[str, Any], ctx: _Ctx, ptr: str) -> None:
    if "acquisitions" not in plate:
        return
    pa = _p(ptr, "acquisitions")
    acqs = plate["acquisitions"]
    if not isinstance(acqs, list):
        ctx.error(pa, f"must be a list of acquisition objects, found {_kind_of(acqs)}.")
        return
    ids: dict[int, int] = {}
    for i, acq in enumerate(acqs):
        pi = _p(pa, i)
        if not isinstance(acq, dict):
            ctx.error(pi, f"must be an acquisition object, found {_kind_of(acq)}.")
            continue
        if "id" not in acq:
            ctx.missing(_p(pi, "id"), "the acquisition's integer id")
        elif not _is_int(acq["id"]) or acq["id"] < 0:
            ctx.error(_p(pi, "id"), f"must be an integer >= 0, found {_kind_of(acq['id'])}.")
        elif acq["id"] in ids:
            ctx.error(
                _p(pi, "id"), f"{acq['id']} is already the id of acquisition {ids[acq['id']]}."
            )
        else:
            ids[acq["id"]] = i
        checks: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
            ("maximumfieldcount", lambda v: _is_int(v) and v > 0, "a positive integer"),
            ("starttime", lambda v: _is_int(v) and v >= 0, "an integer timestamp >= 0"),
            ("endtime", lambda v: _is_int(v) and v >= 0, "an integer timestamp >= 0"),
            ("name", lambda v: isinstance(v, str), "a string"),
            ("description", lambda v: isinstance(v, str), "a string"),
        )
        for key, ok, what in checks:
            if key in acq and not ok(acq[key]):
                ctx.error(_p(pi, key), f"must be {what}, found {_kind_of(acq[key])}.")
        if ctx.strict:
            for key in ("name", "maximumfieldcount"):
                if key not in acq:
                    ctx.missing(_p(pi, key), f"the strict schema requires '{key}' on acquisitions")


def _check_well(value: Any, ctx: _Ctx, ptr: str) -> None:
    if not isinstance(value, dict):
        ctx.error(ptr, f"must be a JSON object, found {_kind_of(value)}.")
        return
    pi = _p(ptr, "images")
    if "images" not in value:
        ctx.missing(pi, "the list of the well's fields of view")
        return
    images = value["images"]
    if not isinstance(images, list):
        ctx.error(pi, f"must be a list of image objects, found {_kind_of(images)}.")
        return
    if not images:
        ctx.error(pi, "must list at least one field of view, found an empty list.")
        return
    seen: dict[str, int] = {}
    for k, img in enumerate(images):
        pk = _p(pi, k)
        if not isinstance(img, dict):
            ctx.error(pk, f"must be an image object with a 'path', found {_kind_of(img)}.")
            continue
        path = img.get("path")
        if "path" not in img:
            ctx.missing(_p(pk, "path"), "the path of the field's image group")
        elif not isinstance(path, str):
            ctx.error(_p(pk, "path"), f"must be a string, found {_kind_of(path)}.")
        elif not _NAME_RE.match(path):
            ctx.error(_p(pk, "path"), f"{path!r} must contain only letters and digits.")
        elif path in seen:
            ctx.error(_p(pk, "path"), f"{path!r} is already the path of image {seen[path]}.")
        else:
            seen[path] = k
        if "acquisition" in img and not _is_int(img["acquisition"]):
            ctx.error(
                _p(pk, "acquisition"),
                f"must be an integer acquisition id, found {_kind_of(img['acquisition'])}.",
            )


# --------------------------------------------------------------------------------------------
# Walking a store
# --------------------------------------------------------------------------------------------


@dataclass
class _Level:
    index: int
    path: str
    scale: list[float] | None
    translation: list[float] | None


@dataclass
class _Image:
    """The parts of one multiscale needed for the Zarr checks (tolerant extraction)."""

    ptr: str
    axes: list[str] | None
    levels: list[_Level] = field(default_factory=list)


def _vector(ts: Any, key: str) -> list[float] | None:
    if not isinstance(ts, list):
        return None
    if len(ts) == 1 and isinstance(ts[0], dict) and ts[0].get("type") == "sequence":
        ts = ts[0].get("transformations")
        if not isinstance(ts, list):
            return None
    for t in ts:
        if isinstance(t, dict) and t.get("type") == key:
            vec = t.get(key)
            if isinstance(vec, list) and all(_is_num(x) for x in vec):
                return [float(x) for x in vec]
            return None
    return None


def _axes_names(axes: Any) -> list[str] | None:
    if not isinstance(axes, list):
        return None
    out = []
    for ax in axes:
        if not isinstance(ax, dict) or not isinstance(ax.get("name"), str):
            return None
        out.append(ax["name"])
    return out


def _images(info: _OmeInfo) -> list[_Image]:
    c = info.container or {}
    ms = c.get("multiscales")
    if not isinstance(ms, list):
        return []
    out = []
    for i, m in enumerate(ms):
        if not isinstance(m, dict):
            continue
        if info.family == "0.6":
            systems = m.get("coordinateSystems")
            axes = None
            if isinstance(systems, list):
                counts = {len(cs.get("axes") or []) for cs in systems if isinstance(cs, dict)}
                named = [cs for cs in systems if isinstance(cs, dict)]
                if len(counts) == 1 and named:
                    axes = _axes_names(named[-1].get("axes"))
        else:
            axes = _axes_names(m.get("axes"))
        img = _Image(ptr=_p(info.base, "multiscales", i), axes=axes)
        datasets = m.get("datasets")
        for j, d in enumerate(datasets if isinstance(datasets, list) else []):
            if not isinstance(d, dict) or not isinstance(d.get("path"), str):
                continue
            try:
                path = safe_join("", d["path"])
            except PathEscapeError:
                continue
            if not path:
                continue
            ct = d.get("coordinateTransformations")
            img.levels.append(_Level(j, path, _vector(ct, "scale"), _vector(ct, "translation")))
        out.append(img)
    return out


def _str_list(value: Any) -> list[tuple[int, str]]:
    out = []
    for i, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, str):
            try:
                if safe_join("", item):
                    out.append((i, item))
            except PathEscapeError:
                continue
    return out


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _integer_dtype(meta: Mapping[str, Any], zarr_format: int) -> bool | None:
    if zarr_format == 3:
        dt = meta.get("data_type")
        name = dt.get("name") if isinstance(dt, dict) else dt
        if not isinstance(name, str):
            return None
        return bool(re.fullmatch(r"u?int\d+", name))
    dt = meta.get("dtype")
    if not isinstance(dt, str):
        return None
    return dt.lstrip("<>|=")[:1] in ("i", "u")


class _Walker:
    """Walk an OME-Zarr hierarchy, judging every node reached through the OME metadata."""

    def __init__(self, location: Location, store: Any, *, strict: bool, max_nodes: int) -> None:
        self.location = location
        self.store = store
        self.strict = strict
        self.max_nodes = max_nodes
        self.messages: list[ValidationMessage] = []
        self.nodes = 0
        self.visited: set[str] = set()
        self.capped = False
        self.fetched: dict[str, NodeMeta | Exception | None] = {}
        self.image_paths: set[str] = set()

    # -- reading ------------------------------------------------------------------------------

    def _read_node(self, path: str) -> NodeMeta | Exception | None:
        from napari_zarr_explorer.store import read_node

        try:
            return read_node(self.store, path, where="")
        except (ExplorerError, OSError) as exc:
            return exc

    def fetch(self, paths: Sequence[str]) -> None:
        """Read the nodes at *paths* ahead of :meth:`read`, concurrently (remote stores)."""
        todo = [p for p in dict.fromkeys(paths) if p not in self.fetched]
        todo = todo[: max(0, self.max_nodes - self.nodes)]
        if len(todo) < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(todo))) as pool:
            for path, result in zip(todo, pool.map(self._read_node, todo), strict=True):
                self.fetched[path] = result

    def read(self, path: str, ref: tuple[_Ctx, str] | None = None) -> NodeMeta | None:
        """Read a node; a corrupt document is reported (at *ref* too) and gives None."""
        self.nodes += 1
        result = self.fetched.pop(path) if path in self.fetched else self._read_node(path)
        if isinstance(result, Exception):
            exc = result
            self.messages.append(self._unreadable(path, exc))
            if ref is not None:
                ref[0].error(ref[1], f"the node {path or '/'!r} cannot be read (see its message).")
            unreadable: NodeMeta | None = _UNREADABLE
            return unreadable
        return result

    def _unreadable(self, path: str, exc: Exception) -> ValidationMessage:
        """Build the message for a node whose metadata document cannot be read."""
        text = str(exc)
        match = _KEY_PREFIX_RE.match(text)
        if match:  # the error names the document: use it as the file
            return ValidationMessage("error", "", match.group(2), path, match.group(1))
        return ValidationMessage("error", "", text, path, self._guess_key(path))

    def _guess_key(self, path: str) -> str:
        return (
            _join(path, "zarr.json")
            if self._exists(_join(path, "zarr.json"))
            else _join(path, ".zattrs")
        )

    def _exists(self, key: str) -> bool:
        from zarr.core.sync import sync

        try:
            return bool(sync(self.store.exists(key)))
        except Exception:  # an unanswerable existence check is "no"
            return False

    def ctx_for(self, node: NodeMeta) -> _Ctx:
        v3 = node.zarr_format == 3
        return _Ctx(
            self.messages,
            self.strict,
            node=node.path,
            file=_join(node.path, "zarr.json" if v3 else ".zattrs"),
            prefix="/attributes" if v3 else "",
            zarr_format=node.zarr_format,
        )

    # -- walk ---------------------------------------------------------------------------------

    def run(self) -> _OmeInfo:
        from napari_zarr_explorer.store import read_node

        self.nodes += 1
        try:
            root = read_node(self.store, "", where="")
        except ExplorerError as exc:  # a corrupt root document is the verdict
            self.messages.append(self._unreadable("", exc))
            return _OmeInfo()
        if root is None:
            raise MetadataError(
                f"{self.location}: no Zarr metadata at the root (zarr.json, .zgroup, .zarray or "
                ".zattrs).",
                hint="Give the folder or URL of a Zarr store, or a JSON attributes file.",
            )
        ctx = self.ctx_for(root)
        info = self.visit(root, ctx, expect=None, parent=None)
        if not info.kinds:
            ctx.error(
                "",
                "no OME-NGFF metadata at the root: this is a plain Zarr "
                f"{root.kind}, not an OME-Zarr (expected 'multiscales', 'plate', 'well', "
                "'labels', 'image-label' or 'bioformats2raw.layout' in its attributes).",
            )
        return info

    def visit(
        self, node: NodeMeta, ctx: _Ctx, *, expect: str | None, parent: _OmeInfo | None
    ) -> _OmeInfo:
        self.visited.add(node.path)
        info = _judge_attributes(node.attributes, ctx)
        what = {"image": "an image", "label": "a label image", "well": "a well"}
        if expect in ("image", "label") and "multiscales" not in (info.container or {}):
            ctx.error(
                "", f"expected {what[expect]} here, but the attributes have no 'multiscales'."
            )
        if expect == "label" and "image-label" not in (info.container or {}):
            ctx.error("", "expected a label image here, but the attributes have no 'image-label'.")
        if expect == "well" and "well" not in (info.container or {}):
            ctx.error("", "expected a well here, but the attributes have no 'well'.")
        if expect == "labels" and "labels" not in (info.container or {}):
            ctx.error(
                "",
                "the 'labels' group of an image must list its label images in 'labels', but its "
                "attributes have no 'labels'.",
            )
        if expect and node.kind != "group":
            ctx.error("", f"expected {what.get(expect, 'a group')} here, but this is an array.")
        if parent and parent.version and info.version and parent.version != info.version:
            ctx.warn(
                info.base + "/version" if info.base else "",
                f"OME-NGFF {info.version} here, inside OME-NGFF {parent.version} metadata.",
            )
        if info.family is None or info.container is None:
            return info
        c = info.container
        if "multiscales" in c:
            self.image_paths.add(node.path)
        if expect == "well" and parent is not None:
            self.check_well_in_plate(ctx, info, parent)
        if expect == "label":
            self.check_label_source(node, ctx, info)
        if "multiscales" in c:
            self.check_arrays(node, info, ctx, label="image-label" in c)
            labels_path = _join(node.path, "labels")
            if expect != "label" and labels_path not in self.visited:
                self.follow([(ctx, "", labels_path)], "labels", info, optional=True)
        if "labels" in c:
            items = _str_list(c["labels"])
            refs = [(ctx, _p(info.base, "labels", i), _join(node.path, s)) for i, s in items]
            self.follow(refs, "label", info)
        if "plate" in c and isinstance(c["plate"], dict):
            wells = [
                (i, w["path"])
                for i, w in enumerate(c["plate"].get("wells") or [])
                if isinstance(w, dict) and isinstance(w.get("path"), str)
            ]
            refs = []
            for i, wpath in wells:
                try:
                    refs.append(
                        (
                            ctx,
                            _p(info.base, "plate", "wells", i, "path"),
                            _join(node.path, safe_join("", wpath)),
                        )
                    )
                except PathEscapeError:
                    continue
            self.follow(refs, "well", info)
        if "well" in c and isinstance(c["well"], dict):
            items = [
                (i, img["path"])
                for i, img in enumerate(c["well"].get("images") or [])
                if isinstance(img, dict) and isinstance(img.get("path"), str)
            ]
            refs = []
            for i, ipath in items:
                try:
                    refs.append(
                        (
                            ctx,
                            _p(info.base, "well", "images", i, "path"),
                            _join(node.path, safe_join("", ipath)),
                        )
                    )
                except PathEscapeError:
                    continue
            self.follow(refs, "image", info)
        if "bioformats2raw.layout" in c and "plate" not in c:
            self.series(node, info, ctx)
        return info

    def check_well_in_plate(self, ctx: _Ctx, info: _OmeInfo, plate_info: _OmeInfo) -> None:
        """Check a well's fields against its plate: acquisition ids and ``field_count``."""
        plate = (plate_info.container or {}).get("plate")
        well = (info.container or {}).get("well")
        if not isinstance(plate, dict) or not isinstance(well, dict):
            return
        images = well.get("images")
        if not isinstance(images, list):
            return
        acqs = plate.get("acquisitions")
        if isinstance(acqs, list):
            ids = {a.get("id") for a in acqs if isinstance(a, dict)}
            for k, img in enumerate(images):
                acq = img.get("acquisition") if isinstance(img, dict) else None
                if _is_int(acq) and acq not in ids:
                    ctx.warn(
                        _p(info.base, "well", "images", k, "acquisition"),
                        f"acquisition {acq} is not among the plate's acquisitions "
                        f"{sorted(i for i in ids if isinstance(i, int))}.",
                    )
        field_count = plate.get("field_count")
        if isinstance(field_count, int) and 0 < field_count < len(images):
            ctx.warn(
                _p(info.base, "well", "images"),
                f"lists {len(images)} fields, more than the plate's field_count {field_count}.",
            )

    def check_label_source(self, node: NodeMeta, ctx: _Ctx, info: _OmeInfo) -> None:
        """Check that ``image-label.source.image`` leads to an image inside the store."""
        label = (info.container or {}).get("image-label")
        src = label.get("source") if isinstance(label, dict) else None
        image = src.get("image") if isinstance(src, dict) else None
        if not isinstance(image, str):
            return
        ptr = _p(info.base, "image-label", "source", "image")
        target = posixpath.normpath(posixpath.join("/", node.path, image)).strip("/")
        if (
            is_url(image)
            or image.startswith("/")
            or (posixpath.normpath(posixpath.join(node.path, image)).startswith(".."))
        ):
            ctx.warn(ptr, f"{image!r} leads outside the store; it is not followed.")
            return
        if target in self.visited:
            if target not in self.image_paths:
                ctx.warn(ptr, f"{image!r} leads to {target or '/'!r}, which is not an image.")
            return
        found = self.read(target)
        if found is _UNREADABLE:
            return
        attrs = found.attributes if found is not None else {}
        ms = attrs.get("ome", attrs) if isinstance(attrs.get("ome"), dict) else attrs
        if found is None or "multiscales" not in ms:
            ctx.warn(ptr, f"{image!r} leads to {target or '/'!r}, which is not an image.")

    def follow(
        self,
        refs: Sequence[tuple[_Ctx, str, str]],
        expect: str,
        parent: _OmeInfo,
        *,
        optional: bool = False,
    ) -> None:
        """Visit the nodes referenced at *refs*; report missing ones.

        When none of several referenced nodes exists, the hierarchy is taken as metadata only
        (conformance suites ship such hierarchies) and one warning is given instead of errors.
        """
        found: list[tuple[_Ctx, str, str, NodeMeta]] = []
        missing: list[tuple[_Ctx, str, str]] = []
        self.fetch([path for _c, _p, path in refs if path not in self.visited])
        for ref_ctx, ptr, path in refs:
            if path in self.visited:
                continue
            if self.nodes >= self.max_nodes:
                if not self.capped:
                    self.capped = True
                    ref_ctx.warn(
                        ptr,
                        f"stopped after {self.nodes} nodes (max_nodes={self.max_nodes}): the "
                        "rest of the hierarchy was not checked.",
                    )
                return
            node = self.read(path, (ref_ctx, ptr))
            if node is _UNREADABLE:
                continue
            if node is None:
                missing.append((ref_ctx, ptr, path))
            else:
                found.append((ref_ctx, ptr, path, node))
        if missing and not optional:
            what = {"label": "label image", "well": "well", "image": "image"}.get(expect, expect)
            if not found and len(missing) == len(refs):
                ref_ctx, ptr, _ = missing[0]
                parent_ptr = ptr.removesuffix("/path").rsplit("/", 1)[0]
                ref_ctx.warn(
                    parent_ptr,
                    _none_exist(len(missing), what),
                )
            else:
                for ref_ctx, ptr, path in missing:
                    ref_ctx.error(
                        ptr, f"the {what} {path!r} listed here does not exist in the store."
                    )
        for _ref_ctx, _ptr, _path, node in found:
            self.visit(node, self.ctx_for(node), expect=expect, parent=parent)

    def series(self, node: NodeMeta, info: _OmeInfo, ctx: _Ctx) -> None:
        """bioformats2raw: the images listed by OME/ 'series', or groups 0, 1, 2..."""
        ome_path = _join(node.path, "OME")
        ome_node = self.read(ome_path)
        series: list[tuple[_Ctx, str, str]] = []
        if ome_node is not None and ome_node is not _UNREADABLE:
            self.visited.add(ome_path)
            octx = self.ctx_for(ome_node)
            oinfo = _judge_attributes(ome_node.attributes, octx)
            c = oinfo.container or {}
            if "series" in c:
                series = [
                    (octx, _p(oinfo.base, "series", i), _join(node.path, s))
                    for i, s in _str_list(c["series"])
                ]
        n_xml = self.count_xml_images(_join(ome_path, "METADATA.ome.xml"))
        if series:
            self.follow(series, "image", info)
            n_found = len(series)
        else:
            n_found = 0
            while self.nodes < self.max_nodes:
                child = _join(node.path, str(n_found))
                probe = self.read(child)
                if probe is None:
                    break
                n_found += 1
                if probe is not _UNREADABLE and child not in self.visited:
                    self.visit(probe, self.ctx_for(probe), expect="image", parent=info)
            if not n_found:
                ctx.warn(
                    _p(info.base, "bioformats2raw.layout"),
                    "no series found: neither an OME/ group listing 'series' nor groups named "
                    "0, 1, 2...",
                )
        if n_xml is not None and n_xml != n_found:
            ctx.warn(
                _p(info.base, "bioformats2raw.layout"),
                f"OME/METADATA.ome.xml describes {_plural(n_xml, 'image')}, but "
                f"{_plural(n_found, 'series')} {'was' if n_found == 1 else 'were'} found.",
            )

    def count_xml_images(self, key: str) -> int | None:
        from napari_zarr_explorer.store import read_limited

        try:
            data = read_limited(self.store, key, MAX_OME_XML_BYTES)
        except Exception:  # an unreadable or oversized XML only loses this cross-check
            return None
        if data is None:
            return None
        return len(_OME_XML_IMAGE_RE.findall(data))

    # -- Zarr sanity of the levels ------------------------------------------------------------

    def check_arrays(self, node: NodeMeta, info: _OmeInfo, ctx: _Ctx, *, label: bool) -> None:
        for img in _images(info):
            self.check_image(node, info, ctx, img, label=label)

    def check_image(
        self, node: NodeMeta, info: _OmeInfo, ctx: _Ctx, img: _Image, *, label: bool
    ) -> None:
        from napari_zarr_explorer.store import check_array_metadata

        shapes: list[tuple[_Level, tuple[int, ...]]] = []
        missing: list[_Level] = []
        self.fetch([_join(node.path, lv.path) for lv in img.levels])
        for lv in img.levels:
            ptr = _p(img.ptr, "datasets", lv.index, "path")
            key = _join(node.path, lv.path)
            arr = self.read(key, (ctx, ptr))
            if arr is _UNREADABLE:
                continue
            if arr is None:
                missing.append(lv)
                continue
            self.visited.add(key)
            if arr.kind != "array":
                ctx.error(ptr, f"{key!r} is a group, not an array.")
                continue
            afile = _join(key, "zarr.json" if arr.zarr_format == 3 else ".zarray")
            try:
                check_array_metadata(arr.metadata, where=afile, zarr_format=arr.zarr_format)
            except (CodecError, UnsafeDataError) as exc:
                ctx.warn(ptr, f"the array {key!r} cannot be decoded here: {exc}")
            except ExplorerError as exc:
                ctx.error(ptr, f"the array {key!r} has bad metadata: {exc}")
                continue
            shape = arr.shape
            if shape is None:
                ctx.error(ptr, f"the array {key!r} has no valid shape in {afile}.")
                continue
            self.check_level(ctx, ptr, key, arr, shape, img, lv, info, label=label)
            shapes.append((lv, shape))
        if missing:
            if not shapes and len(missing) == len(img.levels):
                ctx.warn(
                    _p(img.ptr, "datasets"),
                    _none_exist(len(missing), "level"),
                )
            else:
                for lv in missing:
                    ctx.error(
                        _p(img.ptr, "datasets", lv.index, "path"),
                        f"no array at {_join(node.path, lv.path)!r}: this level does not exist "
                        "in the store.",
                    )
        self.check_pyramid(ctx, img, shapes)
        self.check_channels(ctx, info, img, shapes)

    def check_level(
        self,
        ctx: _Ctx,
        ptr: str,
        key: str,
        arr: NodeMeta,
        shape: tuple[int, ...],
        img: _Image,
        lv: _Level,
        info: _OmeInfo,
        *,
        label: bool,
    ) -> None:
        ndim = len(shape)
        if img.axes is not None and ndim != len(img.axes):
            ctx.error(
                ptr,
                f"the array {key!r} has {ndim} dimensions (shape {list(shape)}), but the "
                f"multiscale has {len(img.axes)} axes ({', '.join(img.axes)}).",
            )
        for what, vec in (("scale", lv.scale), ("translation", lv.translation)):
            if vec is not None and len(vec) != ndim:
                ctx.error(
                    _p(img.ptr, "datasets", lv.index, "coordinateTransformations"),
                    f"the {what} has {len(vec)} values, but the array {key!r} has {ndim} "
                    "dimensions.",
                )
        if info.family in ("0.5", "0.6") and arr.zarr_format != 3:
            ctx.error(
                ptr, f"the array {key!r} is Zarr v2; OME-NGFF {info.version} requires Zarr v3."
            )
        if info.family == "0.4" and arr.zarr_format != 2:
            ctx.error(ptr, f"the array {key!r} is Zarr v3; OME-NGFF 0.4 requires Zarr v2.")
        if arr.zarr_format == 3 and img.axes is not None:
            dims = arr.metadata.get("dimension_names")
            if isinstance(dims, list) and any(d is not None for d in dims) and dims != img.axes:
                ctx.warn(
                    ptr,
                    f"the array {key!r} has dimension_names {dims}, which differ from the axes "
                    f"{img.axes}.",
                )
        if label and _integer_dtype(arr.metadata, arr.zarr_format) is False:
            dtype = arr.metadata.get("data_type", arr.metadata.get("dtype"))
            ctx.error(
                ptr,
                f"the label array {key!r} has the data type {_short(dtype)}; label images must "
                "be integers.",
            )

    def check_pyramid(
        self, ctx: _Ctx, img: _Image, shapes: Sequence[tuple[_Level, tuple[int, ...]]]
    ) -> None:
        for (lv0, s0), (lv1, s1) in itertools.pairwise(shapes):
            if len(s0) != len(s1):
                ctx.error(
                    _p(img.ptr, "datasets", lv1.index, "path"),
                    f"level {lv1.path!r} has {len(s1)} dimensions, level {lv0.path!r} has "
                    f"{len(s0)}: all levels must have the same dimensions.",
                )
                continue
            grown = [d for d in range(len(s0)) if s1[d] > s0[d]]
            names = (
                img.axes
                if img.axes and len(img.axes) == len(s0)
                else [str(d) for d in range(len(s0))]
            )
            if grown:
                ctx.error(
                    _p(img.ptr, "datasets", lv1.index, "path"),
                    f"level {lv1.path!r} (shape {list(s1)}) is larger than the level before it "
                    f"{lv0.path!r} (shape {list(s0)}) along {', '.join(names[d] for d in grown)}: "
                    "levels must go from the largest to the smallest.",
                )
            elif s1 == s0:
                ctx.warn(
                    _p(img.ptr, "datasets", lv1.index, "path"),
                    f"level {lv1.path!r} has the same shape {list(s1)} as the level before it.",
                )
            if lv0.scale and lv1.scale and len(lv0.scale) == len(lv1.scale) == len(s0):
                finer = [d for d in range(len(s0)) if s1[d] < s0[d] and lv1.scale[d] < lv0.scale[d]]
                if finer:
                    ctx.warn(
                        _p(img.ptr, "datasets", lv1.index, "coordinateTransformations"),
                        f"level {lv1.path!r} is smaller than level {lv0.path!r} but has a finer "
                        f"scale along {', '.join(names[d] for d in finer)}.",
                    )

    def check_channels(
        self,
        ctx: _Ctx,
        info: _OmeInfo,
        img: _Image,
        shapes: Sequence[tuple[_Level, tuple[int, ...]]],
    ) -> None:
        c = info.container or {}
        omero = c.get("omero")
        if not isinstance(omero, dict) or not isinstance(omero.get("channels"), list):
            return
        if not shapes or not img.axes or len(img.axes) != len(shapes[0][1]):
            return
        ms = c.get("multiscales")
        axes = (
            ms[0].get("axes") if isinstance(ms, list) and ms and isinstance(ms[0], dict) else None
        )
        if not isinstance(axes, list):
            return
        for d, ax in enumerate(axes):
            if isinstance(ax, dict) and ax.get("type") == "channel":
                n = shapes[0][1][d]
                if len(omero["channels"]) != n:
                    ctx.warn(
                        _p(info.base, "omero", "channels"),
                        f"lists {len(omero['channels'])} channels, but the channel axis "
                        f"{ax.get('name')!r} has {n}.",
                    )
                return


# Sentinel for "the node exists but could not be read".
_UNREADABLE: Any = object()


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def validate(
    url_or_json_file: str | os.PathLike[str] | Location | Mapping[str, Any],
    *,
    strict: bool = False,
    storage_options: dict[str, Any] | None = None,
    max_nodes: int = 20_000,
) -> ValidationReport:
    """Validate OME-NGFF metadata: a whole store, or one JSON attributes document.

    Parameters
    ----------
    url_or_json_file
        A store (local folder, ``file://``, ``http(s)://``, ``s3://``, ``gs://``): its hierarchy
        is walked through the OME metadata and checked, arrays included (metadata only, no chunk
        is read). Or a JSON file: a ``zarr.json``, a ``.zattrs`` or a plain attributes document
        (``{"ome": {...}}`` or 0.4 top-level keys), judged alone. Or the attributes as a mapping.
    strict
        Also apply the strict schemas of the specification and turn its recommendations on
        units and per-axis transformation values into errors.
    storage_options
        Options for remote stores (credentials, endpoint...).
    max_nodes
        Stop walking after reading this many nodes (a warning says so).

    Returns
    -------
    ValidationReport
        ``valid`` is False when any error was found; every message points at a JSON path.

    Raises
    ------
    NotFoundError
        The path does not exist.
    MetadataError
        The input could not be read at all: a JSON file that is not JSON, or a folder without
        Zarr metadata at its root.
    RemoteError
        A remote store could not be reached.
    """
    if isinstance(url_or_json_file, Mapping):
        return _validate_document(
            dict(url_or_json_file), source="<attributes>", name="", strict=strict
        )
    if isinstance(url_or_json_file, Location):
        location = parse_location(url_or_json_file, storage_options)
    else:
        location = parse_location(os.fspath(url_or_json_file), storage_options)
    if location.is_local:
        if location.path.is_file():
            return _validate_json_file(location.path, strict=strict)
        if not location.path.exists():
            raise NotFoundError(
                f"{location.path}: no such file or directory.",
                hint="Give the folder of a Zarr store or a JSON attributes file.",
            )
    elif _looks_like_json_name(location.name):
        return _validate_remote_json(location, strict=strict)
    store = open_store(location)
    walker = _Walker(location, store, strict=strict, max_nodes=max_nodes)
    info = walker.run()
    messages = tuple(walker.messages)
    return ValidationReport(
        source=str(location),
        valid=not any(m.level == "error" for m in messages),
        messages=messages,
        version=info.version,
        kind=info.kind,
        strict=strict,
        mode="store",
        nodes_checked=walker.nodes,
    )


def _looks_like_json_name(name: str) -> bool:
    return name in ("zarr.json", ".zattrs") or name.endswith(".json")


def _validate_json_file(path: Path, *, strict: bool) -> ValidationReport:
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise MetadataError(f"{path}: {size} bytes is too large for a JSON attributes file.")
        raw = path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"{path}: cannot be read: {exc.strerror or exc}.") from None
    from napari_zarr_explorer.store import parse_json

    doc = parse_json(raw, str(path))
    return _validate_document(doc, source=str(path), name=path.name, strict=strict)


def _validate_remote_json(location: Location, *, strict: bool) -> ValidationReport:
    from napari_zarr_explorer.store import read_json

    parent_url, _, name = location.url.rstrip("/").rpartition("/")
    parent = parse_location(parent_url, location.storage_options)
    doc = read_json(open_store(parent), name, where=parent.url)
    if doc is None:
        raise NotFoundError(f"{location.url}: not found.", hint="Check the URL.")
    return _validate_document(doc, source=location.url, name=name, strict=strict)


def _validate_document(
    doc: dict[str, Any], *, source: str, name: str, strict: bool
) -> ValidationReport:
    messages: list[ValidationMessage] = []
    ctx = _Ctx(messages, strict, node="", file=name)
    attrs: Any = doc
    is_v3_doc = name == "zarr.json" or (
        doc.get("zarr_format") == 3 and "node_type" in doc and name != ".zattrs"
    )
    v2_node_doc = not is_v3_doc and name != ".zattrs" and doc.get("zarr_format") == 2
    if name in (".zarray", ".zgroup") or v2_node_doc:
        raise MetadataError(
            f"{source}: a {name or 'Zarr v2 metadata'} document holds no attributes.",
            hint="Give the .zattrs file next to it, or the folder of the store.",
        )
    if is_v3_doc:
        ctx.zarr_format = 3
        if doc.get("zarr_format") != 3:
            ctx.error(
                "/zarr_format",
                f"must be 3 in a zarr.json, found {_kind_of(doc.get('zarr_format'))}.",
            )
        if doc.get("node_type") not in ("group", "array"):
            ctx.error(
                "/node_type", f"must be 'group' or 'array', found {_kind_of(doc.get('node_type'))}."
            )
        attrs = doc.get("attributes", {})
        ctx.prefix = "/attributes"
        if not isinstance(attrs, dict):
            ctx.prefix = ""
            ctx.error("/attributes", f"must be a JSON object, found {_kind_of(attrs)}.")
            attrs = {}
    elif name == ".zattrs":
        ctx.zarr_format = 2
    info = _judge_attributes(attrs, ctx)
    if not info.kinds and "ome" not in attrs:
        ctx.error(
            "",
            "no OME-NGFF metadata found: expected 'multiscales', 'plate', 'well', 'labels', "
            "'image-label' or 'bioformats2raw.layout' (0.4), or an 'ome' object (0.5).",
        )
    return ValidationReport(
        source=source,
        valid=not any(m.level == "error" for m in messages),
        messages=tuple(messages),
        version=info.version,
        kind=info.kind,
        strict=strict,
        mode="attributes",
        nodes_checked=0,
    )
