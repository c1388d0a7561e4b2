"""The rules of the store layer hold for hostile data, locally and over loopback HTTP.

One regression test per way through that was found: consolidated metadata that differs from
the real documents, decoding without the size guard, percent-encoded ``..`` in HTTP keys,
redirects to other hosts, deeply nested codecs, oversized metadata documents and unbounded
walks on stores that cannot list.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, WrapperStore

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError, MetadataError, PathEscapeError
from napari_zarr_explorer.store import (
    open_array,
    open_store,
    parse_location,
    read_json,
    read_node,
    safe_join,
)
from servers import serve_directory

MiB = 1 << 20


def _peak(func: Any) -> tuple[Any, int]:
    """Run *func*; return (its result or the ExplorerError it raised, peak traced bytes)."""
    tracemalloc.start()
    try:
        try:
            result: Any = func()
        except ExplorerError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------------------------
# 1. Arrays open from exactly the metadata that was checked


class _Sentinel:
    """Unpickling this creates a file: proof that code from data ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def _consolidated_lie(root: Path, sentinel: Path) -> Path:
    """A v2 group whose .zmetadata claims ``<u2`` while the real .zarray is a pickled object."""
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    real = {
        "zarr_format": 2,
        "shape": [1],
        "chunks": [1],
        "dtype": "|O",
        "compressor": {"id": "pickle"},
        "filters": [{"id": "vlen-utf8"}],
        "fill_value": None,
        "order": "C",
    }
    claimed = dict(
        real, dtype="<u2", compressor=None, filters=None, fill_value=0, shape=[4], chunks=[4]
    )
    (root / "a").mkdir()
    (root / "a" / ".zarray").write_text(json.dumps(real))
    (root / "a" / "0").write_bytes(pickle.dumps(_Sentinel(sentinel)))
    (root / ".zmetadata").write_text(
        json.dumps(
            {
                "zarr_consolidated_format": 1,
                "metadata": {".zgroup": {"zarr_format": 2}, "a/.zarray": claimed},
            }
        )
    )
    return root


def test_array_opens_from_the_checked_metadata_not_the_real_document(tmp_path, monkeypatch):
    import numcodecs.pickles

    # A numcodecs release that still unpickles (the floor in pyproject refuses, but the store
    # layer must not depend on it).
    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", True, raising=False)
    sentinel = tmp_path / "pwned"
    root = _consolidated_lie(tmp_path / "lie.zarr", sentinel)
    arr = open_array(parse_location(str(root)), "a")
    assert np.dtype(arr.dtype) == np.dtype("<u2")  # what was checked, not the real "|O"
    # pickle bytes are no <u2 chunk; numpy words it by the length of the pickle, which holds
    # the sentinel's path (odd: no whole <u2 values, even: not 4 of them)
    with pytest.raises(ValueError, match=r"reshape|must be a divisor"):
        arr[...]
    assert not sentinel.exists()


def test_layers_refuse_string_arrays(tmp_path):
    from napari_zarr_explorer.layers import open_layers

    root = tmp_path / "s.zarr"
    import zarr

    arr = zarr.create_array(
        str(root), shape=(4, 4), chunks=(4, 4), dtype="<U4", zarr_format=2, fill_value=""
    )
    arr[...] = np.full((4, 4), "ab")
    image = testing.write_ome_image(tmp_path / "img.ome.zarr", shape=(8, 8), axes="yx", levels=1)
    meta = json.loads((image / "0" / "zarr.json").read_text())
    meta["data_type"] = "string"
    meta["fill_value"] = ""
    meta["codecs"] = [{"name": "vlen-utf8"}, {"name": "zstd", "configuration": {"level": 0}}]
    (image / "0" / "zarr.json").write_text(json.dumps(meta))
    for path in (root, image):
        with pytest.raises(ExplorerError, match="image"):
            open_layers(str(path))


def test_numcodecs_floor_refuses_pickle():
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    spec = next(r.specifier for r in reqs if r.name == "numcodecs")
    # 0.16.6 is the first 0.16 release whose Pickle.decode refuses by default
    assert not spec.contains("0.16.5") and spec.contains(version("numcodecs"))


# --------------------------------------------------------------------------------------------
# 2. Every decode is bounded


def _zstd_bomb(root: Path, zarr_format: int) -> Path:
    """A small array whose one chunk is a zstd frame declaring 256 MiB."""
    import numcodecs

    path = testing.write_array(
        root,
        np.ones((64, 64), dtype="uint8"),
        zarr_format=zarr_format,
        chunks=(64, 64),
        compressor="zstd",
        fill_value=0,
    )
    bomb = numcodecs.Zstd(level=1).encode(np.zeros(256 * MiB, dtype="uint8"))
    assert len(bomb) < MiB
    key = root / ("c/0/0" if zarr_format == 3 else "0.0")
    key.write_bytes(bomb)
    return path


def test_chunks_verify_does_not_decompress_a_bomb(tmp_path, zarr_format):
    from napari_zarr_explorer.chunks import CORRUPT, chunk_map

    root = _zstd_bomb(tmp_path / "bomb.zarr", zarr_format)
    cmap, peak = _peak(lambda: chunk_map(str(root), verify=True))
    assert peak < 64 * MiB
    assert not isinstance(cmap, ExplorerError)
    assert cmap.state[0, 0] == CORRUPT
    assert "decompress" in " ".join(cmap.problems.values())


def test_estimate_does_not_decompress_a_bomb(tmp_path, zarr_format):
    from napari_zarr_explorer.estimate import estimate

    root = _zstd_bomb(tmp_path / "bomb.zarr", zarr_format)
    _, peak = _peak(lambda: estimate(str(root), "", ["zstd:1"], sample=1))
    assert peak < 64 * MiB


def test_guard_that_cannot_be_installed_refuses():
    from napari_zarr_explorer.store import guard_decoding

    class NotAnArray:
        pass

    with pytest.raises(ExplorerError, match="guard"):
        guard_decoding(NotAnArray())


# --------------------------------------------------------------------------------------------
# 3. Keys are decoded and normalised before the confinement check


@pytest.mark.parametrize(
    "rel",
    [
        "%2e%2e/secret",
        "%2E%2E/secret",
        "a/%2e%2e/%2e%2e/secret",
        "a%2f..%2fsecret",
        "a%5c..%5csecret",
        "%252e%252e/secret",
        "a\\b",
        "a\x00b",
        "a\x1bb",
        "a\nb",
        "a%00b",
    ],
)
def test_encoded_escapes_are_refused(rel):
    with pytest.raises(PathEscapeError):
        safe_join("", rel)


def test_ordinary_names_still_join():
    assert safe_join("a", "b c/0") == "a/b c/0"
    assert safe_join("", "100%") == "100%"


def _secret_beside(www: Path) -> None:
    testing.write_array(www / "secret", np.full((4, 4), 7, dtype="uint8"), zarr_format=3)


def test_percent_encoded_dotdot_does_not_leave_an_http_store(http_server):
    from napari_zarr_explorer.layers import open_layers

    www = http_server.root
    _secret_beside(www)
    image = testing.write_ome_image(www / "img.zarr", shape=(8, 8), axes="yx", levels=1)
    doc = json.loads((image / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = "%2e%2e/secret"
    (image / "zarr.json").write_text(json.dumps(doc))
    with contextlib.suppress(ExplorerError):
        open_layers(f"{http_server.url}/img.zarr")
    store = open_store(parse_location(f"{http_server.url}/img.zarr"))
    for key in ("%2e%2e/secret/zarr.json", "..%2fsecret/zarr.json", "a/../../secret/zarr.json"):
        with contextlib.suppress(ExplorerError):
            read_json(store, key, where="w")
    assert not any(p.startswith("secret") for p in http_server.paths()), http_server.paths()


# --------------------------------------------------------------------------------------------
# 4. Redirects stay on the origin, under the store's prefix


class _Redirector:
    """A loopback HTTP server serving *root* that answers 302 for the paths in *redirects*."""

    def __init__(self, root: Path, redirects: dict[str, str]) -> None:
        self.root = root
        self.redirects = redirects
        self.seen_headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen_headers.append(dict(self.headers))
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                target = owner.redirects.get(rel)
                if target is not None:
                    self.send_response(302)
                    self.send_header("Location", target.format(port=owner.port))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                file = (owner.root / rel).resolve()
                if not file.is_relative_to(owner.root) or not file.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def image_www(tmp_path: Path) -> Path:
    www = tmp_path / "www"
    testing.write_ome_image(www / "img.zarr", shape=(8, 8), axes="yx", levels=1)
    return www


def test_redirect_to_another_host_stops_the_read(image_www):
    from napari_zarr_explorer.layers import open_layers

    with serve_directory(image_www) as other:
        origin = _Redirector(image_www, {"img.zarr/zarr.json": f"{other.url}/img.zarr/zarr.json"})
        try:
            url = f"{origin.url}/img.zarr"
            opts = {"headers": {"Authorization": "Bearer s3cret"}}
            with pytest.raises(ExplorerError, match="redirect"):
                open_layers(url, storage_options=opts)
        finally:
            origin.close()
        assert other.requests == []


@pytest.mark.parametrize(
    "target",
    ["/elsewhere/img.zarr/zarr.json", "https://127.0.0.1:{port}/img.zarr/zarr.json"],
    ids=["outside-prefix", "other-scheme"],
)
def test_redirect_leaving_the_prefix_stops_the_read(image_www, target):
    origin = _Redirector(image_www, {"img.zarr/zarr.json": target})
    try:
        store = open_store(parse_location(f"{origin.url}/img.zarr"))
        with pytest.raises(ExplorerError, match="redirect"):
            read_json(store, "zarr.json", where=f"{origin.url}/img.zarr")
    finally:
        origin.close()


def test_redirect_under_the_prefix_is_followed(image_www):
    (image_www / "img.zarr" / "moved.json").write_bytes(
        (image_www / "img.zarr" / "zarr.json").read_bytes()
    )
    origin = _Redirector(image_www, {"img.zarr/zarr.json": "/img.zarr/moved.json"})
    try:
        store = open_store(parse_location(f"{origin.url}/img.zarr"))
        doc = read_json(store, "zarr.json", where=origin.url)
        assert doc is not None and doc["node_type"] == "group"
    finally:
        origin.close()


# --------------------------------------------------------------------------------------------
# 5. Nesting depth of codecs is limited


def _nested_sharding(depth: int) -> dict[str, Any]:
    codecs: list[Any] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    for _ in range(depth):
        codecs = [
            {
                "name": "sharding_indexed",
                "configuration": {"chunk_shape": [1], "codecs": codecs},
            }
        ]
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4],
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": codecs,
    }


@pytest.mark.parametrize("depth", [20, 300])
def test_deeply_nested_codecs_give_a_metadata_error(tmp_path, depth):
    from napari_zarr_explorer.chunks import chunk_map
    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.report import inspect

    root = tmp_path / "deep.zarr"
    root.mkdir()
    (root / "zarr.json").write_text(json.dumps(_nested_sharding(depth)))
    for call in (
        lambda: open_array(parse_location(str(root))),
        lambda: open_layers(str(root)),
        lambda: chunk_map(str(root)),
    ):
        with pytest.raises(MetadataError, match="nested"):
            call()
    report = inspect(str(root))
    assert "nested" in str(report.to_dict())


# --------------------------------------------------------------------------------------------
# 6. The metadata size limit holds while reading


def test_oversized_local_metadata_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES", str(MiB))
    root = tmp_path / "big.zarr"
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    with open(root / ".zattrs", "wb") as fh:  # sparse: no disk space used
        fh.truncate(64 * MiB)
    store = open_store(parse_location(str(root)))
    err, peak = _peak(lambda: read_node(store, "", where=str(root)))
    assert isinstance(err, MetadataError)
    assert "NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES" in str(err)
    assert peak < 8 * MiB


class _Endless:
    """A loopback server whose documents are endless (no Content-Length) or announce 1 GiB."""

    def __init__(self) -> None:
        self.sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                if rel.endswith("zarr.json") and rel.startswith(("endless", "announced")):
                    self.send_response(200)
                    if rel.startswith("announced"):
                        self.send_header("Content-Length", str(1 << 30))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    block = b" " * (64 * 1024)
                    try:
                        while owner.sent < 256 * MiB:
                            self.wfile.write(block)
                            owner.sent += len(block)
                    except OSError:
                        pass
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def endless() -> Iterator[_Endless]:
    srv = _Endless()
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize("name", ["endless", "announced"])
def test_endless_http_metadata_is_cut_off(endless, monkeypatch, name):
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES", str(MiB))
    store = open_store(parse_location(f"{endless.url}/{name}"))
    with pytest.raises(MetadataError, match="NAPARI_ZARR_EXPLORER_MAX_METADATA_BYTES"):
        read_json(store, "zarr.json", where=endless.url)
    assert endless.sent < 64 * MiB


# --------------------------------------------------------------------------------------------
# 7. Walks on stores that cannot list are bounded


class _CountingUnlistable(WrapperStore[Store]):
    """A local store that cannot list (like a web server) and counts reads."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.gets = 0

    @property
    def supports_listing(self) -> bool:
        return False

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self.gets += 1
        return await self._store.get(key, prototype, byte_range)


def _plate(root: Path, wells: int, present: int) -> Path:
    """A v3 plate naming *wells* wells of which only the first *present* exist."""
    rows = [f"R{i}" for i in range(max(1, wells // 100))]
    names = [(r, f"{c}") for r in rows for c in range(100)][:wells]
    root.mkdir()
    plate = {
        "version": "0.5",
        "rows": [{"name": r} for r in rows],
        "columns": [{"name": str(c)} for c in range(100)],
        "wells": [
            {"path": f"{r}/{c}", "rowIndex": rows.index(r), "columnIndex": int(c)} for r, c in names
        ],
    }
    doc = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "plate": plate}},
    }
    (root / "zarr.json").write_text(json.dumps(doc))
    group = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    for r in sorted({r for r, _ in names[:present]}):
        (root / r).mkdir()
        (root / r / "zarr.json").write_text(group)
    for r, c in names[:present]:
        (root / r / c).mkdir()
        (root / r / c / "zarr.json").write_text(group)
    return root


def test_probes_for_missing_wells_count_toward_max_nodes(tmp_path):
    from napari_zarr_explorer.report import inspect

    root = _plate(tmp_path / "plate.zarr", wells=2000, present=0)
    store = _CountingUnlistable(LocalStore(root, read_only=True))
    report = inspect(store, max_nodes=50)
    assert report.truncated
    assert store.gets < 50 * 8


def test_walk_of_20000_wells_reads_each_node_a_bounded_number_of_times(tmp_path):
    from napari_zarr_explorer.report import inspect

    root = _plate(tmp_path / "plate.zarr", wells=20_000, present=20_000)
    store = _CountingUnlistable(LocalStore(root, read_only=True))
    report = inspect(store, max_nodes=30_000)
    assert not report.truncated
    nodes = 1 + 200 + 20_000
    assert len(report.nodes) == nodes
    assert store.gets <= nodes * 2  # each node read once (v3: one document), plus a few


# --------------------------------------------------------------------------------------------
# a key naming a folder


def _group_with_folders(root: Path) -> Path:
    testing.write_array(root / "img", np.arange(16, dtype="u1").reshape(4, 4), chunks=(2, 2))
    (root / "notes" / "2024").mkdir(parents=True)
    (root / "notes" / "2024" / "readme.txt").write_text("a plain file in a plain folder")
    (root / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    return root


@pytest.mark.parametrize(
    ("key", "kind"), [("img", "an array"), ("notes", "a folder"), ("", "a group")]
)
def test_read_bytes_of_a_local_folder_names_the_key(tmp_path, key, kind):
    from napari_zarr_explorer.errors import NotAnObjectError
    from napari_zarr_explorer.store import read_bytes

    root = _group_with_folders(tmp_path / "g.zarr")
    for store in (open_store(parse_location(str(root))), LocalStore(root, read_only=True)):
        with pytest.raises(NotAnObjectError) as info:
            read_bytes(store, key)
        msg = str(info.value)
        assert f"{key!r} in {root}" in msg and f"is {kind}" in msg and "not an object" in msg
        assert isinstance(info.value, ExplorerError) and isinstance(info.value, IsADirectoryError)
    # objects, missing keys, and files inside folders read as before
    store = open_store(parse_location(str(root)))
    assert read_bytes(store, "notes/2024/readme.txt") == b"a plain file in a plain folder"
    assert read_bytes(store, "notes/missing") is None


def test_read_bytes_of_a_folder_key_over_http_and_s3_is_absent(tmp_path, http_server, s3_server):
    # Object stores have no folders: a group's key names no object there, so it reads as absent
    # (telling a prefix from a missing key would cost a listing on every missing chunk).
    from napari_zarr_explorer.store import read_bytes

    _group_with_folders(http_server.root / "g.zarr")
    http = open_store(parse_location(f"{http_server.url}/g.zarr"))
    assert read_bytes(http, "img") is None and read_bytes(http, "notes") is None
    assert read_bytes(http, "img/zarr.json") is not None
    url = s3_server.upload(http_server.root / "g.zarr", s3_server.public_bucket, "folders")
    s3 = open_store(parse_location(url, {"endpoint_url": s3_server.endpoint_url}))
    assert read_bytes(s3, "img") is None and read_bytes(s3, "notes") is None
    assert read_bytes(s3, "img/zarr.json") is not None
