"""What every OME-NGFF version shares: the report, the message context, the section checks.

The version modules (:mod:`.v04`, :mod:`.v05`, :mod:`.v06`) hold the rules that differ between
versions; :mod:`._judge` picks the version of a document, :mod:`._store` walks a store.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from napari_zarr_explorer._html import plural
from napari_zarr_explorer.errors import PathEscapeError
from napari_zarr_explorer.store import safe_join

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_OME_XML_BYTES",
    "SPACE_UNITS",
    "TIME_UNITS",
    "ValidationMessage",
    "ValidationReport",
]

Level = Literal["error", "warning"]

#: Largest JSON attributes file read in attributes mode.
MAX_JSON_BYTES = 256 * 1024 * 1024
#: Largest ``OME/METADATA.ome.xml`` scanned for its number of images.
MAX_OME_XML_BYTES = 64 * 1024 * 1024
#: Messages listed per metadata document; one closing message counts the rest.
MAX_MESSAGES_PER_DOCUMENT = 100
#: Longest text kept in a message's fields (a value quoted in it, a path from the data).
MAX_MESSAGE_CHARS = 500

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
        ``"bioformats2raw"``, ``"series"`` or ``"scene"``; None without OME metadata.
    strict
        Whether the strict rules were applied.
    mode
        ``"store"`` (a hierarchy was walked) or ``"attributes"`` (one JSON document was judged).
    nodes_checked
        Number of Zarr nodes whose metadata was read (0 in attributes mode).
    notes
        What the verdict covers, when it is not OME-NGFF (an N5 container: OME-NGFF rules do
        not apply).
    """

    source: str
    valid: bool
    messages: tuple[ValidationMessage, ...] = ()
    version: str | None = None
    kind: str | None = None
    strict: bool = False
    mode: Literal["store", "attributes"] = "store"
    nodes_checked: int = 0
    notes: tuple[str, ...] = ()

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
        counts = plural(len(errors), "error") + ", " + plural(len(warnings), "warning")
        head = f"{'valid' if self.valid else 'invalid'} {what} ({counts})"
        if self.notes:
            head += " [" + " ".join(self.notes) + "]"
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
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [
            f"Validation of {self.source}: {'VALID' if self.valid else 'INVALID'}"
            + (
                f" (OME-NGFF {self.version} {self.kind})"
                if self.version
                else (f" ({self.kind})" if self.kind and self.notes else "")
            ),
            f"  {plural(len(self.errors), 'error')}, {plural(len(self.warnings), 'warning')}"
            + (f", {plural(self.nodes_checked, 'node')} checked" if self.mode == "store" else "")
            + (", strict rules" if self.strict else ""),
        ]
        lines.extend(f"  note: {n}" for n in self.notes)
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
        if not self.version and self.kind and self.notes:
            what = esc(self.kind)
        counts = (
            f"{plural(len(self.errors), 'error')}, {plural(len(self.warnings), 'warning')}"
            + (f", {plural(self.nodes_checked, 'node')} checked" if self.mode == "store" else "")
            + (", strict rules" if self.strict else "")
        )
        head = f"<div><code>{esc(self.source)}</code>: {verdict} {what} ({esc(counts)})</div>"
        head += "".join(f"<div><i>{esc(n)}</i></div>" for n in self.notes)
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
    if type(value) is int and -(10**15) < value < 10**15:  # the common case, quickly
        return str(value)
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


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """*text*, or its start and end around ``...`` when longer than *limit* characters."""
    if len(text) <= limit:
        return text
    head = (limit - 5) * 2 // 3
    return f"{text[:head]} ... {text[head - limit + 5 :]}"


class _Messages(list[ValidationMessage]):
    """The messages of one validation, bounded however large or broken the metadata is.

    Text taken from the data (a quoted value, a node path) is clipped to
    ``MAX_MESSAGE_CHARS``; of each document's messages the first ``MAX_MESSAGES_PER_DOCUMENT``
    are kept and the rest counted: :meth:`finish` adds one message per document and level that
    says how many were left out. A list of a million bad entries gives about a hundred
    messages, not a million (each a copy of its JSON path and text).
    """

    def __init__(self) -> None:
        super().__init__()
        self.errors = 0  # every error, listed or not
        self._listed: dict[tuple[str, str], int] = {}
        self._left_out: dict[tuple[str, str, Level], int] = {}

    def left_out(self, level: Level, node: str, file: str) -> bool:
        """Count a message for *node* and *file*; True when it is not to be listed."""
        node, file = _clip(node), _clip(file)
        if self._listed.get((node, file), 0) < MAX_MESSAGES_PER_DOCUMENT:
            return False
        if level == "error":
            self.errors += 1
        key = (node, file, level)
        self._left_out[key] = self._left_out.get(key, 0) + 1
        return True

    def append(self, m: ValidationMessage) -> None:
        if self.left_out(m.level, m.node, m.file):
            return
        if m.level == "error":
            self.errors += 1
        node, file = _clip(m.node), _clip(m.file)
        self._listed[(node, file)] = self._listed.get((node, file), 0) + 1
        super().append(ValidationMessage(m.level, _clip(m.path), _clip(m.message), node, file))

    def finish(self) -> tuple[ValidationMessage, ...]:
        """Return the messages kept, each document's count of those left out after its own."""
        out: list[ValidationMessage] = []
        closing: dict[tuple[str, str], list[ValidationMessage]] = {}
        for (node, file, level), n in self._left_out.items():
            text = (
                f"{plural(n, 'more ' + level)} in this document not listed (only the first "
                f"{MAX_MESSAGES_PER_DOCUMENT} messages of a document are)."
            )
            closing.setdefault((node, file), []).append(
                ValidationMessage(level, "", text, node, file)
            )
        last = {(m.node, m.file): i for i, m in enumerate(self)}
        for i, m in enumerate(self):
            out.append(m)
            if last[(m.node, m.file)] == i:
                out.extend(closing.pop((m.node, m.file), ()))
        return tuple(out)


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
        self._add("error", ptr, message)

    def warn(self, ptr: str, message: str) -> None:
        self._add("warning", ptr, message)

    def _add(self, level: Level, ptr: str, message: str) -> None:
        sink = self.sink
        if isinstance(sink, _Messages) and sink.left_out(level, self.node, self.file):
            return  # counted only: this document's messages are all listed already
        sink.append(ValidationMessage(level, self.prefix + ptr, message, self.node, self.file))

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
        for k in ("plate", "well", "bioformats2raw", "label", "image", "labels", "series", "scene"):
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
    if "scene" in c:
        out.append("scene")
    return tuple(out)


#: Checks one ``multiscales`` list: ``(value, ctx, pointer)``; each version has its own.
MultiscalesCheck = Callable[[Any, "_Ctx", str], None]


def _check_sections(
    c: Mapping[str, Any], ctx: _Ctx, base: str, check_multiscales: MultiscalesCheck
) -> None:
    """Check every OME section of the container *c*; *check_multiscales* is the version's."""
    has_ms = "multiscales" in c
    if has_ms:
        check_multiscales(c["multiscales"], ctx, _p(base, "multiscales"))
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


def _check_multiscales_list(
    value: Any, ctx: _Ctx, ptr: str, check_one: Callable[[dict[str, Any], _Ctx, str], None]
) -> None:
    """Check what every version asks of the list and each entry, then call *check_one*."""
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
        check_one(m, ctx, p)


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
        cts = d.get("coordinateTransformations")
        if (
            family == "0.6"
            and isinstance(cts, list)
            and len(cts) == 1
            and isinstance(cts[0], dict)
            and cts[0].get("type") == "identity"
        ):
            continue  # 0.6: a single identity is allowed too
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
    n_scale = types.count("scale")
    if n_scale == 0:
        ctx.error(ptr, "must contain exactly one 'scale' transformation, found none.")
    elif n_scale > 1:
        ctx.error(ptr, f"must contain exactly one 'scale' transformation, found {n_scale}.")
    elif types[0] != "scale":
        ctx.error(ptr, "the 'scale' transformation must come first.")
    if types.count("translation") > 1:
        ctx.error(ptr, f"may contain one 'translation', found {types.count('translation')}.")


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
            f"has {plural(len(vec), 'value')} for {_axes_word(n_axes)}: the specification "
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
# What the store walk reads from the metadata
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
