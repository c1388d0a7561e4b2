"""Validation of a whole store: the walk through the OME metadata and the Zarr checks."""

from __future__ import annotations

import itertools
import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer._html import plural
from napari_zarr_explorer.errors import (
    CodecError,
    ExplorerError,
    MetadataError,
    NotFoundError,
    PathEscapeError,
    RemoteError,
    UnsafeDataError,
)
from napari_zarr_explorer.ome.validate._judge import judge_attributes as _judge_attributes
from napari_zarr_explorer.ome.validate.common import (
    _KEY_PREFIX_RE,
    _OME_XML_IMAGE_RE,
    MAX_JSON_BYTES,
    MAX_OME_XML_BYTES,
    ValidationMessage,
    ValidationReport,
    _Ctx,
    _Image,
    _images,
    _integer_dtype,
    _is_int,
    _join,
    _kind_of,
    _Level,
    _Messages,
    _none_exist,
    _OmeInfo,
    _p,
    _short,
    _str_list,
)
from napari_zarr_explorer.store import Location, is_url, open_store, parse_location, safe_join

if TYPE_CHECKING:
    from napari_zarr_explorer.store import NodeMeta

__all__ = ["validate"]


class _Walker:
    """Walk an OME-Zarr hierarchy, judging every node reached through the OME metadata."""

    def __init__(self, location: Location, store: Any, *, strict: bool, max_nodes: int) -> None:
        self.location = location
        self.store = store
        self.strict = strict
        self.max_nodes = max_nodes
        self.messages = _Messages()
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
        except RemoteError:  # nothing was read, so nothing can be judged
            raise
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
        if "scene" in c and isinstance(c["scene"], dict) and info.family == "0.6":
            refs = []
            seen: set[str] = set()
            cts = c["scene"].get("coordinateTransformations")
            for j, t in enumerate(cts if isinstance(cts, list) else []):
                for key in ("input", "output"):
                    ref = t.get(key) if isinstance(t, dict) else None
                    rpath = ref.get("path") if isinstance(ref, dict) else None
                    if not isinstance(rpath, str) or not rpath:
                        continue
                    try:
                        target = _join(node.path, safe_join("", rpath))
                    except PathEscapeError:
                        continue
                    if target not in seen:
                        seen.add(target)
                        ptr = _p(info.base, "scene", "coordinateTransformations", j, key, "path")
                        refs.append((ctx, ptr, target))
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
                f"OME/METADATA.ome.xml describes {plural(n_xml, 'image')}, but "
                f"{n_found} series {'was' if n_found == 1 else 'were'} found.",
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
        A remote store could not be reached, or refused access, when reading its root: nothing
        was judged (a failure below the root is a finding of the report).
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
    from napari_zarr_explorer.store.n5 import N5Store

    if isinstance(store, N5Store):  # N5: its own rules, not OME-NGFF's
        from napari_zarr_explorer.ome.validate.n5 import validate_n5

        return validate_n5(store, source=str(location), max_nodes=max_nodes)
    walker = _Walker(location, store, strict=strict, max_nodes=max_nodes)
    info = walker.run()
    messages = walker.messages.finish()
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
    doc = read_json(open_store(parent), name, where=parent.shown)
    if doc is None:
        raise NotFoundError(f"{location.shown}: not found.", hint="Check the URL.")
    return _validate_document(doc, source=location.shown, name=name, strict=strict)


def _validate_document(
    doc: dict[str, Any], *, source: str, name: str, strict: bool
) -> ValidationReport:
    sink = _Messages()
    ctx = _Ctx(sink, strict, node="", file=name)
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
    messages = sink.finish()
    return ValidationReport(
        source=source,
        valid=not any(m.level == "error" for m in messages),
        messages=messages,
        version=info.version,
        kind=info.kind,
        strict=strict,
        mode="attributes",
        nodes_checked=0,
    )
