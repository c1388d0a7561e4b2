"""Open stores, arrays and groups: arrays only from metadata checked by :mod:`.meta`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from napari_zarr_explorer.errors import ExplorerError, MetadataError, NotFoundError, shown_url
from napari_zarr_explorer.store.decode import guard_decoding
from napari_zarr_explorer.store.keys import safe_join
from napari_zarr_explorer.store.locate import Location, parse_location
from napari_zarr_explorer.store.meta import (
    _V2_ARRAY,
    _V3,
    _where,
    check_array_metadata,
    join_key,
    read_node,
)

if TYPE_CHECKING:
    import zarr
    from zarr.abc.store import Store

__all__ = ["array_from_metadata", "open_array", "open_group", "open_store", "open_url"]


def open_store(location: Location) -> Store:
    """Open *location* as a read-only ``zarr.abc.store.Store``.

    A local store is a ``zarr.storage.LocalStore`` confined to its folder: keys reached
    through symbolic links that leave it, and anything but regular files (FIFOs, devices,
    sockets), are absent. Remote stores are opened by :mod:`.remote`.
    """
    if location.is_local:
        from napari_zarr_explorer.store._localstore import ConfinedLocalStore

        if not location.path.exists():
            raise NotFoundError(
                f"{location.url}: no such file or directory.",
                hint="Check the path; a Zarr store is a directory.",
            )
        if not location.path.is_dir():
            raise ExplorerError(
                f"{location.url} is a file, not a Zarr store directory.",
                hint="Open the folder that contains .zarray/.zgroup/zarr.json instead.",
            )
        store: Any = ConfinedLocalStore(location.path)
    else:
        from napari_zarr_explorer.store import remote

        store = remote.open_remote_store(location)
    from napari_zarr_explorer.store.n5 import maybe_wrap  # N5 containers read as Zarr v3

    return maybe_wrap(store, location)


def open_url(url: Any, storage_options: Mapping[str, Any] | None = None) -> tuple[Store, str]:
    """Open *url* (a path, URL, :class:`~.locate.Location` or zarr store).

    Returns
    -------
    tuple
        The read-only store and the text naming it in messages and reports (without the
        secrets of its URL: :attr:`~.locate.Location.shown`).
    """
    from zarr.abc.store import Store

    if isinstance(url, Store):
        named = str(getattr(url, "root", None) or getattr(url, "path", None) or url)
        return url, shown_url(named)
    loc = parse_location(url, dict(storage_options) if storage_options else None)
    return open_store(loc), loc.shown


def _open_store(location: Location | Any) -> tuple[Location, Any]:
    loc = parse_location(location)
    return loc, open_store(loc)


def open_array(location: Location, path: str = "", *, store: Any = None) -> zarr.Array[Any]:
    """Open the array at *path* read-only, after checking its metadata.

    Parameters
    ----------
    location
        Where the store is (see :func:`napari_zarr_explorer.store.parse_location`).
    path
        Store-relative path of the array; refused if it would leave the store.
    store
        An already opened store for *location* (saves opening it again).

    Returns
    -------
    zarr.Array

    Raises
    ------
    MetadataError, CodecError, UnsafeDataError, PathEscapeError, NotFoundError
    """
    path = safe_join("", path)
    if store is None:
        location, store = _open_store(location)
    where = _where(str(location), path)
    node = read_node(store, path, where=str(location))
    if node is None:
        raise NotFoundError(f"{where}: no Zarr array here.", hint="Check the path.")
    if node.kind != "array":
        raise MetadataError(f"{where}: this is a group, not an array.")
    return array_from_metadata(
        store,
        path,
        node.metadata,
        zarr_format=node.zarr_format,
        where=str(location),
        attributes=node.attributes,
    )


def array_from_metadata(
    store: Any,
    path: str,
    metadata: Mapping[str, Any],
    *,
    zarr_format: int,
    where: str,
    attributes: Mapping[str, Any] | None = None,
) -> zarr.Array[Any]:
    """Check *metadata* and build the read-only array at *path* from exactly that document.

    zarr-python never reads the array's metadata itself: a consolidated document that differs
    from the real ``.zarray`` / ``zarr.json`` cannot make it decode with other codecs or another
    dtype than the ones checked here. The array decodes through the guarded pipeline
    (:func:`~napari_zarr_explorer.store.decode.guard_decoding`).

    Parameters
    ----------
    store
        The store the array's chunks are read from.
    path
        Store-relative path of the array (already confined).
    metadata
        The ``.zarray`` (v2) or ``zarr.json`` (v3) document, as read by :func:`read_node`.
    zarr_format
        2 or 3.
    where
        The location of the store, used in messages.
    attributes
        The array's attributes (v2 ``.zattrs``); v3 documents carry their own.

    Returns
    -------
    zarr.Array

    Raises
    ------
    MetadataError, CodecError, UnsafeDataError
        When the metadata is refused or zarr cannot use it.
    """
    import copy

    import zarr
    from zarr.core.array import AsyncArray
    from zarr.storage import StorePath

    doc_where = _where(where, join_key(path, _V3 if zarr_format == 3 else _V2_ARRAY))
    check_array_metadata(metadata, where=doc_where, zarr_format=zarr_format)
    data: dict[str, Any] = copy.deepcopy(dict(metadata))
    if zarr_format == 2:
        data["zarr_format"] = 2
        data["attributes"] = copy.deepcopy(dict(attributes or {}))
    try:
        async_array = AsyncArray.from_dict(StorePath(store, path), data)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        raise MetadataError(
            f"{doc_where}: zarr cannot use this array metadata: {str(exc).rstrip('.')}.",
            hint="The array metadata is corrupt; fix it or restore it from a copy.",
        ) from None
    guarded: zarr.Array[Any] = guard_decoding(zarr.Array(async_array))
    return guarded


def open_group(location: Location, path: str = "", *, store: Any = None) -> zarr.Group:
    """Open the group at *path* read-only (without trusting consolidated child metadata).

    The group is for browsing its attributes and member names; open its arrays with
    :func:`open_array`, which checks their metadata and guards their decoding (indexing the
    group would hand zarr-python an unchecked array).

    Parameters
    ----------
    location
        Where the store is.
    path
        Store-relative path of the group.
    store
        An already opened store for *location*.

    Returns
    -------
    zarr.Group
    """
    import zarr

    path = safe_join("", path)
    if store is None:
        location, store = _open_store(location)
    where = _where(str(location), path)
    node = read_node(store, path, where=str(location))
    if node is None:
        raise NotFoundError(f"{where}: no Zarr group here.", hint="Check the path.")
    if node.kind != "group":
        raise MetadataError(f"{where}: this is an array, not a group.")
    try:
        return zarr.open_group(
            store=store,
            path=path,
            mode="r",
            zarr_format=node.zarr_format,
            use_consolidated=False,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise MetadataError(f"{where}: zarr could not read the group metadata: {exc}") from None
