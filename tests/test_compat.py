"""Each zarr-python internal the package relies on, checked against the installed zarr.

``napari_zarr_explorer._compat`` is the only module that touches zarr's private attributes. A
zarr release that renames or removes one fails here, with the name of what changed, rather than
later and elsewhere: the decompression guard, for one, refuses every array it cannot guard.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import threading
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
import zarr.abc.store
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore, MemoryStore, WrapperStore

from napari_zarr_explorer import _compat, testing
from napari_zarr_explorer.store import guard_decoding
from napari_zarr_explorer.store.remote import RemoteStore

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_zarr_explorer"


def _written(tmp_path: Path, **kwargs: Any) -> zarr.Array[Any]:
    data = np.arange(32 * 32, dtype="uint16").reshape(32, 32)
    testing.write_array(tmp_path / "a.zarr", data, chunks=(8, 8), **kwargs)
    return zarr.open_array(str(tmp_path / "a.zarr"), mode="r")


@pytest.mark.parametrize(
    "kwargs",
    [{"zarr_format": 2}, {"zarr_format": 3}, {"zarr_format": 3, "shards": (16, 16)}],
    ids=["v2", "v3", "v3-sharded"],
)
def test_codec_pipeline_is_replaced_by_the_guard(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    # AsyncArray.codec_pipeline: guard_decoding swaps in a pipeline with guarded compressors.
    arr = _written(tmp_path, **kwargs)
    before = arr.async_array.codec_pipeline
    guard_decoding(arr)
    after = arr.async_array.codec_pipeline
    assert after is not before
    assert "_Guarded" in repr(after)
    np.testing.assert_array_equal(arr[:], np.arange(32 * 32, dtype="uint16").reshape(32, 32))


def test_set_codec_pipeline_names_a_missing_attribute() -> None:
    class NoPipeline:
        async_array = object()

    with pytest.raises(_compat.ZarrInternalsChanged, match="codec_pipeline"):
        _compat.set_codec_pipeline(NoPipeline(), None)


def test_v2_codec_is_zarrs_array_to_bytes_codec() -> None:
    # zarr.codecs._v2.V2Codec
    codec = _compat.v2_codec(None, numcodecs.Zstd(level=1))
    assert isinstance(codec, ArrayBytesCodec)
    assert codec.compressor.codec_id == "zstd"


def test_numcodecs_codec_inside_zarrs_wrapper() -> None:
    # zarr.codecs.numcodecs.*._codec
    import zarr.codecs.numcodecs as zn

    wrapper = zn.Zlib(level=1)
    inner = _compat.numcodecs_codec_of(wrapper)
    assert isinstance(inner, numcodecs.Zlib)
    assert _compat.numcodecs_codec_of(zarr.codecs.ZstdCodec()) is None


def test_numcodecs_array_bytes_codec_class() -> None:
    # zarr.codecs.numcodecs._NumcodecsArrayBytesCodec
    cls = _compat.numcodecs_array_bytes_codec_class("Probe", "compat_probe")
    assert issubclass(cls, ArrayBytesCodec)
    assert cls.codec_name == "numcodecs.compat_probe"


def test_numcodecs_array_bytes_base_is_the_base_of_zarrs_zfpy() -> None:
    # zarr.codecs.numcodecs._NumcodecsArrayBytesCodec (the decompression guard wraps its
    # subclasses; a class it does not recognise would be decoded unguarded)
    import zarr.codecs.numcodecs as zn

    base = _compat.numcodecs_array_bytes_base()
    assert issubclass(base, ArrayBytesCodec)
    assert issubclass(zn.ZFPY, base)
    assert not issubclass(zarr.codecs.BytesCodec, base)


# Private zarr names imported outside _compat, each checked by a test above; a new one fails
# test_private_zarr_names_are_imported_through_compat until it goes through _compat (or here).
_PRIVATE_IMPORTS_OUTSIDE_COMPAT = {
    # the same base class as _compat.numcodecs_array_bytes_codec_class builds on
    ("codec_spec.py", "zarr.codecs.numcodecs", "_NumcodecsArrayBytesCodec"),
}


def test_private_zarr_names_are_imported_through_compat() -> None:
    private = {
        (file, module, name)
        for file, module, name in _zarr_imports()
        if file != "_compat.py"
        and (any(part.startswith("_") for part in module.split(".")) or (name or "")[:1] == "_")
    }
    new = private - _PRIVATE_IMPORTS_OUTSIDE_COMPAT
    assert not new, f"reach these through napari_zarr_explorer._compat: {sorted(new)}"


def test_unknown_codec_errors_cover_what_zarr_raises() -> None:
    from zarr.registry import get_codec_class

    with pytest.raises(_compat.unknown_codec_errors()):
        get_codec_class("no-such-codec-anywhere")


def test_memory_store_items() -> None:
    # MemoryStore._store_dict
    store = MemoryStore()
    zarr.create_array(store, name="a", shape=(4,), dtype="u1")
    items = dict(_compat.memory_store_items(store))
    assert "a/zarr.json" in items
    assert b'"zarr_format"' in items["a/zarr.json"].to_bytes()


def test_wrapped_store() -> None:
    # WrapperStore._store
    inner = MemoryStore()
    assert _compat.wrapped_store(WrapperStore(inner)) is inner
    assert _compat.wrapped_store(inner) is None


def test_object_store_lister() -> None:
    # zarr.storage.ObjectStore._list (the class is importable without obstore)
    from zarr.storage._obstore import ObjectStore

    assert callable(getattr(ObjectStore, "_list", None))
    assert _compat.object_store_lister(MemoryStore()) is None


def test_zarr_io_loop_and_thread() -> None:
    # zarr.core.sync.loop / iothread
    zarr.create_array(MemoryStore(), shape=(1,), dtype="u1")  # zarr starts its loop
    loop, thread = _compat.zarr_io_loop_and_thread()
    assert isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running()
    assert isinstance(thread, threading.Thread) and thread.is_alive()


def test_ranged_reads_of_a_wrapper_go_through_its_get(tmp_path: Path) -> None:
    # Store.get_ranges (zarr after 3.1): WrapperStore forwards it to the wrapped store, so
    # RemoteStore routes it through its own get (cache, retries, limits).
    (tmp_path / "k").write_bytes(bytes(range(100)))
    store = RemoteStore(LocalStore(tmp_path, read_only=True), url="file://test")
    ranges = [zarr.abc.store.RangeByteRequest(10, 20), zarr.abc.store.RangeByteRequest(30, 35)]
    if not hasattr(WrapperStore, "get_ranges"):  # zarr 3.1: shards are read with get only
        assert not hasattr(zarr.abc.store.Store, "get_ranges")
        return

    async def _read() -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        gen = store.get_ranges("k", ranges, prototype=default_buffer_prototype())
        async for group in gen:
            for i, buf in group:
                assert buf is not None
                out[i] = buf.to_bytes()
        return out

    from zarr.core.sync import sync

    before = store.stats.requests
    assert sync(_read()) == {0: bytes(range(10, 20)), 1: bytes(range(30, 35))}
    assert store.stats.requests > before  # counted by RemoteStore.get, not bypassed


def test_remote_store_declares_no_synchronous_io(tmp_path: Path) -> None:
    # zarr.abc.store._store_supports_sync_io (zarr after 3.1): WrapperStore would forward
    # get_sync to a wrapped LocalStore, past RemoteStore's get.
    store = RemoteStore(LocalStore(tmp_path, read_only=True), url="file://test")
    predicate = getattr(zarr.abc.store, "_store_supports_sync_io", None)
    if predicate is None:  # zarr 3.1: no synchronous store reads at all
        assert not hasattr(WrapperStore, "get_sync")
        return
    assert predicate(LocalStore(tmp_path, read_only=True))
    assert not predicate(store)


def _zarr_imports() -> list[tuple[str, str, str | None]]:
    """``(file, module, name)`` for every ``from zarr... import name`` / ``import zarr...``."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "zarr":
                assert node.module is not None
                found += [(path.name, node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(path.name, a.name, None) for a in node.names if a.name[:5] == "zarr."]
    return sorted(set(found))


@pytest.mark.parametrize(("file", "module", "name"), _zarr_imports())
def test_every_zarr_import_resolves(file: str, module: str, name: str | None) -> None:
    # zarr.core.* and other internal modules imported inside functions (some behind a broad
    # except) fail here first when a zarr release moves them.
    mod = importlib.import_module(module)
    if name is not None:
        assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), (
            f"{file}: 'from {module} import {name}' no longer works with zarr {zarr.__version__}"
        )


def test_local_store_internals_the_confined_store_builds_on(tmp_path: Path) -> None:
    # LocalStore._is_open / _open / _ensure_open_sync / _check_writable (ConfinedLocalStore)
    from napari_zarr_explorer.store._localstore import ConfinedLocalStore

    for name in ("_open", "_ensure_open_sync", "_check_writable"):
        assert callable(getattr(LocalStore, name, None)), f"LocalStore.{name} is gone"
    store = ConfinedLocalStore(tmp_path)
    assert store._is_open is False
    store._ensure_open_sync()
    assert store._is_open is True
    with pytest.raises(ValueError):
        store._check_writable()


# LocalStore readers that zarr builds on get / get_sync (checked below on a link leaving the store)
_BUILT_ON_GET = ("_get_bytes", "_get_bytes_sync", "_get_json", "_get_json_sync")


def test_every_local_read_path_is_confined(tmp_path: Path) -> None:
    # A read method that zarr's LocalStore implements itself (rather than on top of get or
    # get_sync, as the Store base class does) would read past ConfinedLocalStore's checks.
    from napari_zarr_explorer.store._localstore import ConfinedLocalStore

    readers = [n for n in dir(LocalStore) if n.startswith(("get", "_get", "list", "exists"))]
    unconfined = [
        n
        for n in readers
        if getattr(LocalStore, n) is not getattr(zarr.abc.store.Store, n, None)
        and getattr(ConfinedLocalStore, n) is getattr(LocalStore, n)
        and n not in _BUILT_ON_GET
    ]
    assert unconfined == [], f"zarr {zarr.__version__}: ConfinedLocalStore must override these"

    (tmp_path / "outside.json").write_text('{"secret": 1}')
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "link.json").symlink_to(tmp_path / "outside.json")
    store = ConfinedLocalStore(tmp_path / "store")
    from zarr.core.sync import sync

    for name in _BUILT_ON_GET:
        method = getattr(store, name, None)
        if method is None:  # not in this zarr release
            continue
        with pytest.raises(FileNotFoundError):
            result = method("link.json", prototype=default_buffer_prototype())
            if asyncio.iscoroutine(result):
                sync(result)


@pytest.mark.parametrize("kwargs", [{"zarr_format": 2}, {"zarr_format": 3}, {"shards": (4, 4)}])
def test_chunk_spec_describes_one_stored_object(kwargs: dict[str, Any]) -> None:
    from zarr.core.buffer import default_buffer_prototype

    from napari_zarr_explorer._compat import chunk_spec

    arr = zarr.create_array({}, shape=(8, 8), chunks=(2, 2), dtype="uint16", fill_value=7, **kwargs)
    spec = chunk_spec(arr, default_buffer_prototype())
    assert tuple(spec.shape) == ((4, 4) if "shards" in kwargs else (2, 2))
    assert spec.fill_value == 7
