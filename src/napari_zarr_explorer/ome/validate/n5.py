"""Validate an N5 container for what N5 promises (OME-NGFF rules do not apply to N5).

N5 (BigDataViewer, Fiji, n5-viewer, z5py) keeps each node's metadata in ``attributes.json``. The
checks follow the N5 specification and the conventions readers rely on:

* every ``attributes.json`` is a well-formed JSON object; the root's ``"n5"`` is a version
  string (``"4.0.0"``);
* a dataset has ``dimensions`` (non-negative integers), ``blockSize`` (positive integers, one per
  dimension), a ``dataType`` N5 defines and a ``compression`` (or the pre-1.0
  ``compressionType``) whose type is known;
* a multiscale group (n5-viewer / BigDataViewer conventions: datasets ``s0``, ``s1``...) has
  levels of one data type and rank that do not grow, ``downsamplingFactors`` / ``scales`` with
  one positive factor per dimension (level 0 at 1), and a ``pixelResolution`` / ``resolution``
  of one positive value per dimension.

The hierarchy is walked by listing where the store can list (groups only: the folders inside a
dataset are its blocks), else through the multiscale levels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.ome.validate.common import ValidationMessage, ValidationReport

__all__ = ["NOTE", "validate_n5"]

#: Said in every N5 report, so no one reads its verdict as an OME-NGFF one.
NOTE = (
    "N5 is not OME-Zarr: OME-NGFF rules do not apply. Checked what N5 promises: well-formed "
    "attributes.json, consistent dataset attributes, and the n5-viewer / BigDataViewer "
    "multiscale conventions."
)
_ATTRS = "attributes.json"
_DATASET_KEYS = ("dimensions", "blockSize", "dataType")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")
_MAX_LEVELS = 64


class _N5Walk:
    def __init__(self, store: Any, *, max_nodes: int) -> None:
        self.inner = store.inner
        self.where = str(store.where).rstrip("/")
        self.max_nodes = max_nodes
        self.messages: list[ValidationMessage] = []
        self.nodes = 0
        self._attrs: dict[str, dict[str, Any] | None] = {}

    # ------------------------------------------------------------------ helpers
    def error(self, node: str, path: str, message: str) -> None:
        self.messages.append(ValidationMessage("error", path, message, node, _file(node)))

    def warning(self, node: str, path: str, message: str) -> None:
        self.messages.append(ValidationMessage("warning", path, message, node, _file(node)))

    def attributes(self, node: str) -> dict[str, Any] | None:
        """Return the node's ``attributes.json`` (None when absent, or malformed: reported)."""
        if node in self._attrs:
            return self._attrs[node]
        from napari_zarr_explorer.store import read_json

        doc: dict[str, Any] | None
        try:
            doc = read_json(self.inner, _file(node), where=self.where)
        except ExplorerError as exc:
            self.error(node, "", f"attributes.json is not a well-formed JSON object: {exc}")
            doc = None
        self._attrs[node] = doc
        return doc

    def children(self, node: str) -> list[str]:
        if not self.inner.supports_listing:
            return []
        from zarr.core.sync import sync

        async def _list() -> list[str]:
            prefix = f"{node}/" if node else ""
            return [name.rstrip("/") async for name in self.inner.list_dir(prefix)]

        try:
            names = sync(_list())
        except (OSError, ExplorerError):
            return []
        out = []
        for name in sorted(names):
            if name == _ATTRS or name.endswith(".json"):
                continue
            out.append(f"{node}/{name}" if node else name)
        return out

    # ------------------------------------------------------------------ checks
    def run(self) -> str:
        root = self.attributes("")
        kind = "N5 group"
        if root is not None and "n5" in root:
            kind = "N5 container"
            self.check_version(root["n5"])
        queue = [""]
        seen: set[str] = set()
        first = True
        while queue:
            node = queue.pop(0)
            if node in seen:
                continue
            seen.add(node)
            if self.nodes >= self.max_nodes:
                self.warning(
                    node, "", f"stopped after {self.max_nodes} nodes; the rest is unchecked."
                )
                break
            self.nodes += 1
            attrs = self.attributes(node) if node else root
            if attrs is not None and _is_dataset(attrs):
                self.check_dataset(node, attrs)
                if first:
                    kind = "N5 dataset"
                first = False
                continue
            levels = self.levels(node)
            if levels:
                self.check_multiscale(node, attrs or {}, levels)
                if first:
                    kind = "N5 multiscale" if kind != "N5 container" else "N5 multiscale container"
                seen.update(levels)
                self.nodes += len(levels)
            elif attrs is not None and _multiscale_hint(attrs):
                self.warning(
                    node,
                    "",
                    "the attributes describe a multiscale group (downsamplingFactors, scales or "
                    "multiScale) but there is no dataset s0.",
                )
            first = False
            queue.extend(c for c in self.children(node) if c not in seen)
        return kind

    def check_version(self, value: Any) -> None:
        m = _VERSION.match(value) if isinstance(value, str) else None
        if m is None:
            self.error("", "/n5", f"the N5 version must be a string like '4.0.0', not {value!r}.")
        elif int(m.group(1)) > 4:
            self.warning("", "/n5", f"N5 version {value} is newer than the 4.x checked here.")

    def check_dataset(self, node: str, attrs: Mapping[str, Any]) -> None:
        from napari_zarr_explorer.store.n5 import n5_to_zarr

        try:
            n5_to_zarr(attrs, where=f"{node or '/'}")
        except ExplorerError as exc:
            key = next(
                (
                    k
                    for k in ("dimensions", "blockSize", "dataType", "compression")
                    if k in str(exc)
                ),
                "",
            )
            self.error(node, f"/{key}" if key else "", str(exc).split(": ", 1)[-1])
            return
        if "compression" not in attrs and "compressionType" in attrs:
            self.warning(
                node,
                "/compressionType",
                "'compressionType' is the N5 0.x way; N5 1.0 and later write a 'compression' "
                "object (readers still accept both).",
            )

    def levels(self, node: str) -> list[str]:
        out = []
        for i in range(_MAX_LEVELS):
            child = f"{node}/s{i}" if node else f"s{i}"
            attrs = self.attributes(child)
            if attrs is None or not _is_dataset(attrs):
                break
            out.append(child)
        return out

    def check_multiscale(self, node: str, attrs: Mapping[str, Any], levels: list[str]) -> None:
        docs = [self.attributes(level) or {} for level in levels]
        for level, doc in zip(levels, docs, strict=True):
            self.check_dataset(level, doc)
        dims0 = docs[0].get("dimensions")
        ndim = len(dims0) if isinstance(dims0, list) else 0
        dtype0 = docs[0].get("dataType")
        previous = dims0
        for i, (level, doc) in enumerate(zip(levels, docs, strict=True)):
            dims = doc.get("dimensions")
            if doc.get("dataType") != dtype0:
                self.error(
                    level,
                    "/dataType",
                    f"level s{i} has dataType {doc.get('dataType')!r}, level s0 {dtype0!r}: the "
                    "levels of a multiscale group share one data type.",
                )
            if not isinstance(dims, list) or len(dims) != ndim:
                self.error(level, "/dimensions", f"level s{i} does not have the rank of s0.")
                continue
            if isinstance(previous, list) and any(
                isinstance(a, int) and isinstance(b, int) and b > a
                for a, b in zip(previous, dims, strict=False)
            ):
                self.error(
                    level,
                    "/dimensions",
                    f"level s{i} ({dims}) is larger than the level before it ({previous}).",
                )
            previous = dims
            factors = doc.get("downsamplingFactors")
            if factors is not None and not _positive_numbers(factors, ndim):
                self.error(
                    level,
                    "/downsamplingFactors",
                    f"downsamplingFactors must hold {ndim} positive numbers, found {factors!r}.",
                )
            elif i == 0 and factors is not None and any(f != 1 for f in factors):
                self.warning(level, "/downsamplingFactors", "level s0 should not be downsampled.")
        scales = attrs.get("scales", attrs.get("downsamplingFactors"))
        key = "scales" if "scales" in attrs else "downsamplingFactors"
        if scales is not None:
            if not isinstance(scales, list) or len(scales) != len(levels):
                self.error(
                    node,
                    f"/{key}",
                    f"'{key}' must list one factor per level ({len(levels)}), found {scales!r}.",
                )
            else:
                for i, s in enumerate(scales):
                    if not _positive_numbers(s, ndim):
                        self.error(
                            node,
                            f"/{key}/{i}",
                            f"the factors of level s{i} must be {ndim} positive numbers, "
                            f"found {s!r}.",
                        )
        for where in (attrs, docs[0]):
            owner = node if where is attrs else levels[0]
            res = where.get("pixelResolution")
            if isinstance(res, Mapping):
                if not _positive_numbers(res.get("dimensions"), ndim):
                    self.error(
                        owner,
                        "/pixelResolution/dimensions",
                        f"pixelResolution.dimensions must hold {ndim} positive numbers.",
                    )
            elif res is not None and not _positive_numbers(res, ndim):
                self.error(
                    owner, "/pixelResolution", f"pixelResolution must hold {ndim} positive numbers."
                )
            resolution = where.get("resolution")
            if resolution is not None and not _positive_numbers(resolution, ndim):
                self.error(owner, "/resolution", f"resolution must hold {ndim} positive numbers.")
        if "multiScale" in attrs and not isinstance(attrs["multiScale"], bool):
            self.error(node, "/multiScale", "multiScale must be true or false.")


def _file(node: str) -> str:
    return f"{node}/{_ATTRS}" if node else _ATTRS


def _is_dataset(attrs: Mapping[str, Any]) -> bool:
    return all(k in attrs for k in _DATASET_KEYS)


def _multiscale_hint(attrs: Mapping[str, Any]) -> bool:
    return any(k in attrs for k in ("downsamplingFactors", "scales", "multiScale"))


def _positive_numbers(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in value
        )
    )


def validate_n5(store: Any, *, source: str, max_nodes: int = 20_000) -> ValidationReport:
    """Validate the N5 container (or group, or dataset) behind *store*.

    Parameters
    ----------
    store
        An :class:`napari_zarr_explorer.store.n5.N5Store`.
    source
        What was validated, for the report.
    max_nodes
        Stop walking after this many nodes (a warning says so).

    Returns
    -------
    ValidationReport
        ``kind`` is ``"N5 container"``, ``"N5 multiscale"``, ``"N5 multiscale container"``,
        ``"N5 dataset"`` or ``"N5 group"``; ``version`` is None (no OME-NGFF metadata is judged)
        and ``notes`` says that OME-NGFF rules do not apply.
    """
    walk = _N5Walk(store, max_nodes=max_nodes)
    kind = walk.run()
    messages = tuple(walk.messages)
    return ValidationReport(
        source=source,
        valid=not any(m.level == "error" for m in messages),
        messages=messages,
        version=None,
        kind=kind,
        mode="store",
        nodes_checked=walk.nodes,
        notes=(NOTE,),
    )
