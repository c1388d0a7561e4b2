"""Remote stores over HTTP: reading, request economy, caching and failing gracefully.

Everything runs against a real threaded HTTP server on loopback (``tests/servers.py``).
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import (
    AccessDeniedError,
    ExplorerError,
    ExplorerWarning,
    NotFoundError,
    RemoteError,
)
from napari_zarr_explorer.store import parse_location
from napari_zarr_explorer.store.remote import (
    ChunkFetchError,
    RemoteOptions,
    RemoteStore,
    fetch_many,
    open_remote_store,
    read_region,
)

# Fast failure settings so that error tests take milliseconds.
FAST = {"explorer_retries": 2, "explorer_backoff": 0.01, "explorer_timeout": 2}
METADATA_SUFFIXES = (".zarray", ".zgroup", ".zattrs", ".zmetadata", "zarr.json")


def _image(root: Path, name: str = "img.ome.zarr", **kwargs: object) -> Path:
    opts: dict[str, object] = {"shape": (2, 4, 64, 64), "chunks": (1, 1, 32, 32), "levels": 2}
    opts.update(kwargs)
    return testing.write_ome_image(root / name, **opts)  # type: ignore[arg-type]


def _store(url: str, **options: object) -> RemoteStore:
    return open_remote_store(parse_location(url, dict(options)))


# --------------------------------------------------------------------------------------------
# reading


def test_reader_opens_ome_image_over_http(http_server):
    pytest.importorskip("napari_zarr_explorer._reader")
    import npe2

    npe2.PluginManager.instance().discover()

    local = _image(http_server.root, labels=True)
    url = f"{http_server.url}/{local.name}"
    remote_layers = npe2.read([url], stack=False, plugin_name="napari-zarr-explorer")
    local_layers = npe2.read([str(local)], stack=False, plugin_name="napari-zarr-explorer")
    assert [lt for *_, lt in remote_layers] == [lt for *_, lt in local_layers]
    for (rdata, rmeta, _), (ldata, lmeta, _) in zip(remote_layers, local_layers, strict=True):
        assert set(rmeta) == set(lmeta)
        assert rmeta.get("name") == lmeta.get("name")
        r = rdata[-1] if isinstance(rdata, list) else rdata
        ln = ldata[-1] if isinstance(ldata, list) else ldata
        np.testing.assert_array_equal(np.asarray(r), np.asarray(ln))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_pyramid_over_http_equals_local(http_server, version):
    from napari_zarr_explorer.pyramid import open_pyramid

    local = _image(http_server.root, version=version)
    remote = open_pyramid(f"{http_server.url}/{local.name}")
    here = open_pyramid(str(local))
    assert [a.shape for a in remote] == [a.shape for a in here]
    for r, h in zip(remote, here, strict=True):
        np.testing.assert_array_equal(r.compute(), h.compute())


def test_sharded_array_reads_with_range_requests(http_server):
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(http_server.root / "s.zarr", data, chunks=(8, 8), shards=(32, 32))
    store = _store(f"{http_server.url}/s.zarr")
    arr = zarr.open_array(store, mode="r", zarr_format=3)
    np.testing.assert_array_equal(arr[3:10, 40:50], data[3:10, 40:50])
    ranged = [r for r in http_server.requests if r.range]
    assert ranged, "inner chunks of a shard are read with Range requests"
    assert all(r.status == 206 for r in ranged)


def test_answers_to_ignored_range_headers_are_cut_to_the_range():
    # Some servers answer a Range request with the whole object (the GCS emulator does for
    # suffix ranges: see test_gcs_sharded_array); the store cuts out the range asked for.
    from zarr.abc.store import RangeByteRequest, SuffixByteRequest

    from napari_zarr_explorer.store.remote import _trim

    assert _trim(b"0123456789", RangeByteRequest(2, 5)) == b"234"
    assert _trim(b"0123456789", SuffixByteRequest(3)) == b"789"
    assert _trim(b"234", RangeByteRequest(2, 5)) == b"234"
    assert _trim(b"789", SuffixByteRequest(3)) == b"789"


# --------------------------------------------------------------------------------------------
# request economy


def test_v3_metadata_is_not_probed_for_v2_files(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    local = _image(http_server.root, version="0.5")
    levels = open_pyramid(f"{http_server.url}/{local.name}")
    levels[-1][0, 0].compute()
    paths = http_server.paths()
    assert not [p for p in paths if p.endswith((".zarray", ".zgroup", ".zattrs", ".zmetadata"))]
    # each metadata document is asked for once
    meta = [p for p in paths if p.endswith("zarr.json")]
    assert len(meta) == len(set(meta))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_consolidated_metadata_is_used(http_server, zarr_format):
    from napari_zarr_explorer.store import read_node

    root = http_server.root / "c.zarr"
    group = zarr.open_group(root, mode="w", zarr_format=zarr_format)
    for i in range(4):
        group.create_array(f"a{i}", shape=(8, 8), chunks=(4, 4), dtype="uint8")
    zarr.consolidate_metadata(str(root), zarr_format=zarr_format)
    store = _store(f"{http_server.url}/c.zarr")
    for i in range(4):
        node = read_node(store, f"a{i}", where=store.url)
        assert node is not None
        assert node.kind == "array"
        assert node.shape == (8, 8)
    paths = http_server.paths()
    assert not [p for p in paths if p.startswith("c.zarr/a")], paths  # nothing below the root
    assert len(paths) == len(set(paths))


def test_metadata_requests_go_out_concurrently(tmp_path):
    from servers import serve_directory

    local = _image(tmp_path, levels=4)
    with serve_directory(tmp_path, latency=0.2) as srv:
        store = _store(f"{srv.url}/{local.name}")
        keys = [f"{i}/zarr.json" for i in range(4)]
        docs = fetch_many(store, keys)
        assert all(docs[k] is not None for k in keys)
        assert srv.max_active >= 2
        # and again from the cache, without a request
        srv.clear_log()
        fetch_many(store, keys)
        assert srv.requests == []


def test_read_ahead_requests_levels_and_labels_concurrently(tmp_path):
    from servers import serve_directory

    local = _image(tmp_path, levels=3)
    with serve_directory(tmp_path, latency=0.2) as srv:
        store = _store(f"{srv.url}/{local.name}")
        fetch_many(store, ["zarr.json"])
        docs = fetch_many(store, ["0/zarr.json", "1/zarr.json", "2/zarr.json", "labels/zarr.json"])
        assert docs["labels/zarr.json"] is None
        for key in ("0", "1", "2", "labels"):
            assert srv.count(f"{local.name}/{key}/zarr.json") == 1
        assert srv.max_active >= 2


def test_read_ahead_can_be_disabled(http_server):
    local = _image(http_server.root)
    store = _store(f"{http_server.url}/{local.name}", explorer_read_ahead="0")
    fetch_many(store, ["zarr.json"])
    assert http_server.paths() == [f"{local.name}/zarr.json"]


def test_read_ahead_stays_inside_the_store(http_server):
    import json

    root = http_server.root / "g.zarr"
    (root / "ok").mkdir(parents=True)
    (http_server.root / "outside").mkdir()
    ms = {
        "datasets": [
            {"path": "../outside"},
            {"path": f"{http_server.url}/outside"},
            {"path": "/outside"},
            {"path": "ok"},
        ]
    }
    doc = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"multiscales": [ms]}}}
    (root / "zarr.json").write_text(json.dumps(doc))
    store = _store(f"{http_server.url}/g.zarr")
    fetch_many(store, ["zarr.json"])
    fetch_many(store, ["ok/zarr.json", "labels/zarr.json"])  # joins the read-ahead in flight
    assert sorted(http_server.paths()) == [
        "g.zarr/labels/zarr.json",
        "g.zarr/ok/zarr.json",
        "g.zarr/zarr.json",
    ]


def test_v2_store_is_not_probed_for_v3_documents(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    local = _image(http_server.root, version="0.4")
    levels = open_pyramid(f"{http_server.url}/{local.name}")
    levels[-1][0, 0].compute()
    v3 = [p for p in http_server.paths() if p.endswith("zarr.json")]
    assert v3 == [f"{local.name}/zarr.json"]  # only the first probe, at the root


def test_joined_request_survives_cancellation_of_the_first_reader(http_server):
    import asyncio

    from zarr.core.sync import sync

    _image(http_server.root)
    http_server.slow("img.ome.zarr/zarr.json", 0.5, times=1)
    store = _store(f"{http_server.url}/img.ome.zarr")

    async def scenario() -> bytes | None:
        first = asyncio.ensure_future(store.get_bytes("zarr.json"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(store.get_bytes("zarr.json"))
        await asyncio.sleep(0.05)
        first.cancel()
        return await second

    assert sync(scenario()) is not None
    assert store.stats.merged == 1


def test_fetch_many_reports_missing_keys_as_none(http_server):
    _image(http_server.root)
    store = _store(f"{http_server.url}/img.ome.zarr")
    docs = fetch_many(store, ["zarr.json", "nope/zarr.json", "zarr.json"])
    assert docs["nope/zarr.json"] is None
    assert docs["zarr.json"] is not None
    assert http_server.count("img.ome.zarr/zarr.json") == 1


def test_concurrency_limit_is_respected(tmp_path):
    from servers import serve_directory

    data = np.ones((64, 64), dtype="uint8")
    testing.write_array(tmp_path / "a.zarr", data, chunks=(8, 8))
    with serve_directory(tmp_path, latency=0.05) as srv:
        store = _store(f"{srv.url}/a.zarr", explorer_concurrency=2)
        arr = zarr.open_array(store, mode="r", zarr_format=3)
        np.testing.assert_array_equal(arr[:], data)
        assert srv.count("a.zarr/c/*") == 64
        assert srv.max_active <= 2


def test_cache_avoids_refetching_chunks(http_server):
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16))
    store = _store(f"{http_server.url}/a.zarr")
    arr = zarr.open_array(store, mode="r", zarr_format=3)
    np.testing.assert_array_equal(arr[0:32, 0:32], data[0:32, 0:32])
    first = http_server.count("a.zarr/c/*")
    assert first == 4
    np.testing.assert_array_equal(arr[0:32, 16:48], data[0:32, 16:48])  # pan right
    np.testing.assert_array_equal(arr[0:32, 0:32], data[0:32, 0:32])  # and back
    assert http_server.count("a.zarr/c/*") == 6  # only the two new chunks were fetched
    assert store.stats.cache_hits >= 6
    assert store.cache_nbytes > 0


def test_cache_can_be_disabled(http_server):
    data = np.zeros((16, 16), dtype="uint8")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16))
    store = _store(f"{http_server.url}/a.zarr", explorer_cache_mb=0)
    arr = zarr.open_array(store, mode="r", zarr_format=3)
    arr[:]
    arr[:]
    assert http_server.count("a.zarr/c/*") == 2


def test_cache_is_bounded(http_server):
    data = np.random.default_rng(0).integers(0, 255, (64, 64), dtype="uint8")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), compressor="none")
    # 16 chunks of 256 bytes; room for about two of them
    store = _store(f"{http_server.url}/a.zarr", explorer_cache_mb=700 / 2**20)
    arr = zarr.open_array(store, mode="r", zarr_format=3)
    arr[:]
    assert store.cache_nbytes <= 700


@pytest.mark.parametrize(
    "region",
    [(0, 32, 0, 32), (3, 29, 5, 30), (10, 50, 20, 64), (0, 64, 0, 64), (32, 40, 33, 34)],
    ids=["one-shard", "inside-a-shard", "across-shards", "everything", "small"],
)
def test_read_region_equals_plain_read(http_server, region):
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(http_server.root / "s.zarr", data, chunks=(8, 8), shards=(32, 32))
    arr = zarr.open_array(_store(f"{http_server.url}/s.zarr"), mode="r")
    y0, y1, x0, x1 = region
    sel = (slice(y0, y1), slice(x0, x1))
    np.testing.assert_array_equal(read_region(arr, sel), data[sel])


def test_read_region_fetches_inner_chunks_concurrently(tmp_path):
    from servers import serve_directory

    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(tmp_path / "s.zarr", data, chunks=(8, 8), shards=(64, 64))
    with serve_directory(tmp_path, latency=0.1) as srv:
        arr = zarr.open_array(_store(f"{srv.url}/s.zarr"), mode="r")
        srv.clear_log()
        np.testing.assert_array_equal(
            read_region(arr, (slice(4, 28), slice(4, 28))), data[4:28, 4:28]
        )
        assert srv.count("s.zarr/c/0/0") == 1 + 16  # the index once, then 16 inner chunks
        assert srv.max_active >= 2


def test_ranges_of_an_object_read_whole_come_from_the_cache(http_server):
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(http_server.root / "s.zarr", data, chunks=(8, 8), shards=(32, 32))
    arr = zarr.open_array(_store(f"{http_server.url}/s.zarr"), mode="r")
    np.testing.assert_array_equal(arr[:32, :32], data[:32, :32])  # the whole shard
    http_server.clear_log()
    np.testing.assert_array_equal(arr[3:9, 17:30], data[3:9, 17:30])  # index + inner chunks
    assert http_server.requests == []


# --------------------------------------------------------------------------------------------
# failing gracefully


def test_missing_store_names_the_url(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    with pytest.raises(NotFoundError) as info:
        open_pyramid(f"{http_server.url}/nothing.zarr")
    # the URL as given, "http://" included, so that it can be copied and tried
    assert str(info.value).startswith(f"{http_server.url}/nothing.zarr: ")


def test_group_without_image_names_the_url(http_server):
    import zarr

    from napari_zarr_explorer.pyramid import open_pyramid

    zarr.open_group(http_server.root / "empty.zarr", mode="w", zarr_format=3)
    with pytest.raises(ExplorerError) as info:
        open_pyramid(f"{http_server.url}/empty.zarr")
    assert str(info.value).startswith(f"{http_server.url}/empty.zarr: no image array found.")


def test_missing_chunk_is_the_fill_value_without_warning(http_server):
    data = np.full((32, 32), 7, dtype="uint8")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), fill_value=3)
    (http_server.root / "a.zarr" / "c" / "0" / "0").unlink()
    from napari_zarr_explorer.pyramid import open_pyramid

    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplorerWarning)
        (level,) = open_pyramid(f"{http_server.url}/a.zarr")
        out = level.compute()
    assert (out[:16, :16] == 3).all()
    assert (out[16:, 16:] == 7).all()


def test_access_denied_says_so_and_how_to_pass_credentials(http_server):
    _image(http_server.root)
    http_server.fail("img.ome.zarr/zarr.json", 403)
    store = _store(f"{http_server.url}/img.ome.zarr", **FAST)
    with pytest.raises(AccessDeniedError) as info:
        fetch_many(store, ["zarr.json"])
    msg = str(info.value)
    assert "Access denied" in msg
    assert "img.ome.zarr/zarr.json" in msg
    assert "--storage-options" in msg and "storage_options=" in msg  # command line, Python
    assert http_server.count("img.ome.zarr/zarr.json") == 1  # not retried


def test_http_credentials_from_storage_options(http_server):
    data = np.arange(16, dtype="uint8").reshape(4, 4)
    testing.write_array(http_server.root / "a.zarr", data)
    http_server.require_header("Authorization", "Bearer sesame")
    with pytest.raises(AccessDeniedError, match="HTTP 401"):
        fetch_many(_store(f"{http_server.url}/a.zarr", **FAST), ["zarr.json"])
    store = _store(f"{http_server.url}/a.zarr", headers={"Authorization": "Bearer sesame"})
    np.testing.assert_array_equal(zarr.open_array(store, mode="r")[:], data)


def test_server_error_then_ok_is_retried(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    local = _image(http_server.root)
    http_server.fail("img.ome.zarr/zarr.json", 500, times=2)
    http_server.fail("img.ome.zarr/1/c/*", 503, times=1)
    levels = open_pyramid(f"{http_server.url}/{local.name}", storage_options=FAST)
    here = open_pyramid(str(local))
    np.testing.assert_array_equal(levels[-1].compute(), here[-1].compute())
    assert http_server.count("img.ome.zarr/zarr.json") == 3


def test_retries_leave_the_sessions_random_numbers_alone(http_server):
    """Backoff jitter has its own generator: a seeded ``random`` of the user's stays seeded."""
    import random

    _image(http_server.root)
    http_server.fail("img.ome.zarr/zarr.json", 500, times=2)
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    store = _store(f"{http_server.url}/img.ome.zarr", **FAST)
    assert fetch_many(store, ["zarr.json"])["zarr.json"]
    assert http_server.count("img.ome.zarr/zarr.json") == 3  # two retries happened
    assert random.random() == expected


def test_persistent_server_error_names_host_and_key(http_server):
    _image(http_server.root)
    http_server.fail("img.ome.zarr/zarr.json", 500)
    store = _store(f"{http_server.url}/img.ome.zarr", **FAST)
    with pytest.raises(RemoteError) as info:
        fetch_many(store, ["zarr.json"])
    msg = str(info.value)
    assert f"127.0.0.1:{http_server.port}" in msg
    assert "HTTP 500" in msg
    assert "img.ome.zarr/zarr.json" in msg
    assert "3 attempts" in msg
    assert http_server.count("img.ome.zarr/zarr.json") == 3


def test_slow_response_times_out_then_succeeds(http_server):
    _image(http_server.root)
    http_server.slow("img.ome.zarr/zarr.json", 5.0, times=1)
    store = _store(f"{http_server.url}/img.ome.zarr", **{**FAST, "explorer_timeout": 0.3})
    assert fetch_many(store, ["zarr.json"])["zarr.json"] is not None
    assert store.stats.retries == 1


def test_always_slow_server_gives_a_timeout_error(http_server):
    _image(http_server.root)
    http_server.slow("img.ome.zarr/zarr.json", 5.0)
    store = _store(
        f"{http_server.url}/img.ome.zarr",
        **{**FAST, "explorer_timeout": 0.2, "explorer_retries": 1},
    )
    with pytest.raises(RemoteError, match=r"did not answer within 0\.2 s") as info:
        fetch_many(store, ["zarr.json"])
    # The way to raise the limit is given for the command line and for Python alike.
    assert "NZE_REMOTE_TIMEOUT" in info.value.hint
    assert "--storage-options" in info.value.hint and "storage_options=" in info.value.hint


def test_connection_reset_is_retried(http_server):
    _image(http_server.root)
    http_server.reset("img.ome.zarr/zarr.json", times=2)
    store = _store(f"{http_server.url}/img.ome.zarr", **FAST)
    assert fetch_many(store, ["zarr.json"])["zarr.json"] is not None
    assert http_server.count("img.ome.zarr/zarr.json") == 3


def _closed_endpoint(tmp_path: Path) -> str:
    """``http://127.0.0.1:PORT`` of a server that has stopped: connections are refused."""
    from servers import serve_directory

    with serve_directory(tmp_path) as srv:
        return srv.url


# the three ways a store reaches a server: the lean HTTP client, fsspec over aiohttp (any option
# beyond headers), and s3fs at a custom endpoint
REFUSING = {
    "http": lambda endpoint: (f"{endpoint}/a.zarr", {}),
    "http-aiohttp": lambda endpoint: (f"{endpoint}/a.zarr", {"client_kwargs": {}}),
    "s3": lambda endpoint: ("s3://bucket/a.zarr", {"endpoint_url": endpoint, "anon": True}),
    "gcs": lambda endpoint: ("gs://bucket/a.zarr", {"endpoint_url": endpoint, "token": "anon"}),
}


@pytest.mark.parametrize("access", sorted(REFUSING))
def test_connection_refused_names_host_and_port_without_errno(tmp_path, access):
    """A refused connection says so in words, naming HOST:PORT and the key, and what to check:
    not the operating system's ``[Errno 111] Connection refused``."""
    endpoint = _closed_endpoint(tmp_path)
    url, options = REFUSING[access](endpoint)
    store = _store(url, **options, **FAST)
    with pytest.raises(RemoteError) as info:
        fetch_many(store, ["zarr.json"])
    port = endpoint.rpartition(":")[2]
    msg = str(info.value)
    assert msg.startswith(f"Connection refused by 127.0.0.1:{port}"), msg
    assert f"{url}/zarr.json" in msg
    assert "Errno" not in msg and "Connect call failed" not in msg
    assert info.value.hint == "Check the URL (host name and port) and that the server is running."


@pytest.mark.parametrize("access", sorted(REFUSING))
def test_connection_refused_is_retried_once_only(tmp_path, access):
    """A refused connection is a wrong host or port, or a server that is down: asked once more
    (it may be restarting), not as many times as a server error or a timeout."""
    url, options = REFUSING[access](_closed_endpoint(tmp_path))
    store = _store(url, **options, **{**FAST, "explorer_retries": 3})
    with pytest.raises(RemoteError, match="after 2 attempts"):
        fetch_many(store, ["zarr.json"])
    assert store.stats.requests == 2 and store.stats.retries == 1


def test_connection_refused_is_not_retried_without_retries(tmp_path):
    store = _store(f"{_closed_endpoint(tmp_path)}/a.zarr", **{**FAST, "explorer_retries": 0})
    with pytest.raises(RemoteError, match="Connection refused by") as info:
        fetch_many(store, ["zarr.json"])
    assert "attempts" not in str(info.value)
    assert store.stats.requests == 1 and store.stats.retries == 0


def test_server_errors_keep_every_retry(http_server):
    """Only refusals are cut short: a 503 or 429 is tried the configured number of times."""
    _image(http_server.root)
    http_server.fail("img.ome.zarr/zarr.json", 503)
    http_server.fail("img.ome.zarr/0/zarr.json", 429)
    store = _store(f"{http_server.url}/img.ome.zarr", **{**FAST, "explorer_retries": 3})
    for key in ("zarr.json", "0/zarr.json"):
        with pytest.raises(RemoteError, match="after 4 attempts"):
            fetch_many(store, [key])
    assert http_server.count("img.ome.zarr/zarr.json") == 4
    assert http_server.count("img.ome.zarr/0/zarr.json") == 4


def test_unknown_host_is_named():
    store = _store("http://no-such-host.invalid/a.zarr", **FAST)
    with pytest.raises(RemoteError, match=r"no-such-host\.invalid"):
        fetch_many(store, ["zarr.json"])


def test_chunk_failing_after_retries_is_fill_with_warning(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    data = np.full((32, 32), 9, dtype="uint16")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), fill_value=0)
    http_server.fail("a.zarr/c/1/0", 500)
    (level,) = open_pyramid(f"{http_server.url}/a.zarr", storage_options=FAST)
    with pytest.warns(ExplorerWarning, match=r"c/1/0") as record:
        out = level.compute()
    assert (out[16:, :16] == 0).all()
    assert (out[:16] == 9).all()
    assert "HTTP 500" in str(record[0].message)
    # three attempts, then the failure is remembered rather than retried at once
    assert http_server.count("a.zarr/c/1/0") == 3


@pytest.mark.parametrize("shards", [None, (16, 32)], ids=["chunks", "shards"])
def test_chunk_map_says_which_key_the_server_failed_and_why(http_server, shards):
    from napari_zarr_explorer.chunks import chunk_map

    data = np.full((32, 32), 9, dtype="uint16")
    kwargs = {"shards": shards} if shards else {}
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), **kwargs)
    url = f"{http_server.url}/a.zarr"
    http_server.fail("a.zarr/c/1/*", 500)
    cmap = chunk_map(url, storage_options=FAST)
    # the chunks the server did not answer for are unknown, not missing, and the map says why
    assert cmap.chunks_unknown == 2 and cmap.chunks_present == 2 and cmap.chunks_missing == 0
    (warning,) = cmap.warnings
    what = "2 of 4 chunks; they" if shards is None else "1 of 2 shards; their chunks"
    assert f"{url}: the store failed to answer for {what} show as unknown." in warning, warning
    assert f"The first: 127.0.0.1:{http_server.port} answered HTTP 500" in warning, warning
    assert f"{url}/c/1/0" in warning and "try again later" in warning, warning


@pytest.mark.parametrize(
    ("shards", "verify", "what"),
    [
        ((16, 32), False, "1 of 2 shards; their chunks"),
        ((16, 32), True, "1 of 2 shards; their chunks"),
        (None, True, "2 of 4 chunks; they"),
    ],
    ids=["shard-index", "shard-verify", "chunk-verify"],
)
def test_chunks_the_server_does_not_deliver_are_unknown_not_corrupt(
    http_server, shards, verify, what
):
    """A server that drops the connection mid-answer has not shown the data to be damaged."""
    from napari_zarr_explorer.chunks import chunk_map

    data = np.full((32, 32), 9, dtype="uint16")
    kwargs = {"shards": shards} if shards else {}
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), **kwargs)
    url = f"{http_server.url}/a.zarr"
    http_server.truncate("a.zarr/c/1/*", 0)  # a HEAD answers; a GET's body never comes
    cmap = chunk_map(url, verify=verify, storage_options=FAST)
    assert cmap.chunks_corrupt == 0 and cmap.corrupt_keys == ()
    assert cmap.chunks_unknown == 2 and cmap.chunks_present == 2
    (warning,) = cmap.warnings
    assert f"{url}: the store failed to answer for {what} show as unknown." in warning, warning
    assert f"{url}/c/1/0" in warning and "connection dropped" in warning, warning
    assert "answered connection" not in warning, warning  # said as what happened
    assert f"from 127.0.0.1:{http_server.port} failed after 3 attempts" in warning, warning
    # the map is incomplete, and says so: not verified, what was not delivered counted
    assert cmap.unanswered >= 1 and cmap.verified is False
    assert cmap.to_dict()["unanswered"] == cmap.unanswered
    assert "did not deliver" in str(cmap) and "did not deliver" in cmap._repr_html_()


def test_chunks_command_does_not_pass_a_map_the_server_left_incomplete(http_server, capsys):
    """``chunks --verify`` in a script: chunks that could not be read are not a clean bill."""
    import json

    from napari_zarr_explorer.cli import main

    data = np.full((32, 32), 9, dtype="uint16")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16))
    url = f"{http_server.url}/a.zarr"
    opts = ["--storage-options", json.dumps(FAST)]
    assert main(["chunks", url, "--verify", "--json", *opts]) == 0  # all delivered: clean
    assert json.loads(capsys.readouterr().out)["verified"] is True
    http_server.truncate("a.zarr/c/1/*", 0)
    assert main(["chunks", url, "--verify", *opts]) == 3
    out = capsys.readouterr().out
    assert "no: the store did not deliver some of the data" in out, out
    assert main(["chunks", url, "--verify", "--json", *opts]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["verified"] is False and doc["unanswered"] == 2 and doc["chunks_unknown"] == 2


def test_host_failing_repeatedly_is_not_asked_again_for_a_while(http_server):
    from napari_zarr_explorer.pyramid import open_pyramid

    data = np.full((64, 16), 4, dtype="uint8")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(8, 16), fill_value=0)
    (level,) = open_pyramid(f"{http_server.url}/a.zarr", storage_options=FAST)
    http_server.fail("a.zarr/c/*", 500)
    with pytest.warns(ExplorerWarning):
        assert (level[:32].compute() == 0).all()
    http_server.clear_log()
    with pytest.warns(ExplorerWarning, match="not asking it again"):
        assert (level[32:].compute() == 0).all()
    assert http_server.requests == []


def test_a_remembered_failure_says_so_and_when_it_is_asked_again(http_server, monkeypatch):
    """Asked again right after a failure, a store answers with the failure it remembers, and
    says so: the server may have recovered meanwhile, and it was not asked."""
    from napari_zarr_explorer.store import remote

    monkeypatch.setattr(remote, "FAILURE_TTL", 3600.0)  # whatever the machine's speed
    monkeypatch.setattr(remote, "_FRESH_FAILURE", 0.0)  # asked again later, not in this read
    _image(http_server.root)
    url = f"{http_server.url}/img.ome.zarr"
    store = _store(url, explorer_read_ahead=0, **FAST)
    http_server.fail("img.ome.zarr/zarr.json", 500)
    with pytest.raises(RemoteError) as first:
        fetch_many(store, ["zarr.json"])
    assert "HTTP 500" in first.value.message and "(Remembered" not in str(first.value)

    # the server recovered; this store does not ask it yet, and says why it fails
    http_server.clear_faults()
    http_server.clear_log()
    with pytest.raises(RemoteError) as again:
        fetch_many(store, ["zarr.json"])
    assert http_server.requests == []
    message = again.value.message
    assert message.startswith(first.value.message), message  # the failure remembered...
    assert "(Remembered from a failure " in message and " ago; asked again in " in message
    assert message.endswith(" s.)"), message  # ... when it was, when it is asked again
    assert again.value.hint == first.value.hint

    # once the failure is forgotten, the same store asks again and reads it
    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    assert fetch_many(store, ["zarr.json"])["zarr.json"] is not None
    assert http_server.count("img.ome.zarr/zarr.json") == 1


def test_a_remembered_chunk_failure_says_so_in_the_save_that_meets_it(
    http_server, tmp_path, monkeypatch
):
    """A layer's store remembers a chunk the server failed for: saving the layer right after
    the server recovered fails again, saying the failure was remembered, not seen anew."""
    from napari_zarr_explorer import save
    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.store import remote

    monkeypatch.setenv("NZE_REMOTE_RETRIES", "0")
    monkeypatch.setattr(remote, "FAILURE_TTL", 3600.0)  # whatever the machine's speed
    # the save reads the chunks again one by one after its read of several failed: the same
    # failure, the save's own (however slow the machine), said as it was
    monkeypatch.setattr(remote, "_FRESH_FAILURE", 3600.0)
    data = np.arange(32 * 32, dtype="uint16").reshape(32, 32)
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16), fill_value=0)
    layer = open_layers(f"{http_server.url}/a.zarr")[0]
    http_server.fail("a.zarr/c/1/*", 500)
    out = tmp_path / "saved.ome.zarr"
    with pytest.raises(ExplorerError) as first:
        save([layer], str(out))
    assert "HTTP 500" in str(first.value) and "(Remembered" not in str(first.value)
    assert not out.exists()

    # the server recovered; the user saves again (later than the save's own reads)
    http_server.clear_faults()
    monkeypatch.setattr(remote, "_FRESH_FAILURE", 0.0)
    with pytest.raises(ExplorerError) as again:
        save([layer], str(out))
    shown = str(again.value)
    assert "HTTP 500" in shown and "(Remembered from a failure " in shown, shown
    assert " ago; asked again in " in shown, shown
    assert not out.exists()

    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    assert save([layer], str(out)).ok
    saved = zarr.open_array(str(out / "0"), mode="r")[:]
    np.testing.assert_array_equal(saved.reshape(data.shape), data)


def test_a_store_opened_again_asks_the_server_whatever_another_remembers(http_server, monkeypatch):
    """What a store remembers of failures is its own: a store opened again for the same URL
    (the Explorer's Refresh, a new chunk map, another command) asks the server at once."""
    from napari_zarr_explorer.chunks import chunk_map
    from napari_zarr_explorer.report import inspect
    from napari_zarr_explorer.store import remote

    monkeypatch.setattr(remote, "FAILURE_TTL", 3600.0)  # whatever the machine's speed
    monkeypatch.setattr(remote, "_FRESH_FAILURE", 0.0)
    data = np.full((32, 32), 9, dtype="uint16")
    testing.write_array(http_server.root / "a.zarr", data, chunks=(16, 16))
    url = f"{http_server.url}/a.zarr"
    old = _store(url, **FAST)
    http_server.fail("a.zarr/*", 500)
    for key in ("zarr.json", "c/0/0", "c/0/1"):  # three failures in a row: the host too
        with pytest.raises((RemoteError, ChunkFetchError)):
            fetch_many(old, [key])
    with pytest.raises(ChunkFetchError, match="not asking it again"):
        fetch_many(old, ["c/1/1"])

    with pytest.raises(ChunkFetchError, match="not asking it again") as left_alone:
        fetch_many(old, ["c/1/1"])
    # said as the host left alone (with the time left), not as a failure of that key
    assert "(Remembered" not in str(left_alone.value), left_alone.value

    http_server.clear_faults()
    http_server.clear_log()
    with pytest.raises(RemoteError, match="not asking it again"):
        fetch_many(old, [".zattrs"])  # that store still leaves the host alone
    assert http_server.requests == []
    fresh = _store(url, **FAST)
    assert fetch_many(fresh, ["zarr.json", "c/0/0"])["c/0/0"] is not None
    report = inspect(url, storage_options=FAST)
    assert report.nodes and not report.errors, report.errors
    cmap = chunk_map(url, verify=True, storage_options=FAST)
    assert cmap.verified and cmap.chunks_present == 4
    old.clear_cache()  # and a store told to forget asks again too
    assert fetch_many(old, ["zarr.json"])["zarr.json"] is not None


def test_chunk_fetch_error_is_not_a_remote_error():
    # readers treat it like a corrupt chunk; metadata failures stay RemoteError
    assert not issubclass(ChunkFetchError, RemoteError)
    assert issubclass(ChunkFetchError, ExplorerError)


# --------------------------------------------------------------------------------------------
# store behaviour and options


def test_remote_store_is_read_only(http_server):
    store = _store(f"{http_server.url}/a.zarr")
    assert store.read_only
    assert not store.supports_writes
    assert not store.supports_listing  # plain web servers cannot list
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    with pytest.raises(ExplorerError, match="read-only"):
        sync(store.set("x", default_buffer_prototype().buffer.from_bytes(b"1")))
    with pytest.raises(ExplorerError, match="read-only"):
        store.with_read_only(False)


def test_remote_store_pickles_for_workers(http_server):
    data = np.arange(16, dtype="uint8").reshape(4, 4)
    testing.write_array(http_server.root / "a.zarr", data)
    store = _store(f"{http_server.url}/a.zarr", explorer_concurrency=3)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.options.concurrency == 3
    np.testing.assert_array_equal(zarr.open_array(clone, mode="r")[:], data)


def test_options_from_environment_and_storage_options():
    opts, rest = RemoteOptions.split(
        {"explorer_timeout": "3", "anon": True},
        {"NZE_REMOTE_TIMEOUT": "9", "NZE_REMOTE_RETRIES": "5", "NZE_REMOTE_CACHE_MB": "1"},
    )
    assert opts.timeout == 3.0  # storage options win
    assert opts.retries == 5
    assert opts.cache_bytes == 2**20
    assert rest == {"anon": True}
    assert RemoteOptions.from_env({}) == RemoteOptions()


def test_invalid_options_are_refused():
    with pytest.raises(ExplorerError, match="explorer_timeout"):
        RemoteOptions.split({"explorer_timout": 1}, {})
    with pytest.raises(ExplorerError, match="not a number"):
        RemoteOptions.split({}, {"NZE_REMOTE_TIMEOUT": "soon"})
    with pytest.raises(ExplorerError):
        RemoteOptions(concurrency=0)


def test_chained_urls_are_refused():
    with pytest.raises(ExplorerError, match="chained") as info:
        parse_location("simplecache::http://example.org/a.zarr")
    assert "--storage-options" in info.value.hint and "storage_options=" in info.value.hint


def test_query_strings_are_refused_with_the_way_to_pass_tokens():
    with pytest.raises(ExplorerError, match="query string") as info:
        open_remote_store(parse_location("http://127.0.0.1:9/a.zarr?token=1"))
    assert "--storage-options" in info.value.hint and "storage_options=" in info.value.hint
    assert "headers" in info.value.hint


# --------------------------------------------------------------------------------------------
# inspection


def test_inspect_over_http_matches_local(http_server):
    report = pytest.importorskip("napari_zarr_explorer.report")
    local = _image(http_server.root, labels=True)
    here = report.inspect(str(local))
    there = report.inspect(f"{http_server.url}/{local.name}")
    assert not there.errors
    # Without a listing the walk probes optional paths (an image's "labels"); those that turn
    # out not to exist must not show up as unreadable nodes.
    assert [n.path for n in there.nodes] == [n.path for n in here.nodes]
    for a, b in zip(there.nodes, here.nodes, strict=True):
        assert type(a) is type(b)
        assert getattr(a, "shape", None) == getattr(b, "shape", None)


@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_unreachable_store_cannot_be_opened(tmp_path, scheme):
    """A store that cannot be reached at all is no report of nothing: inspect() raises the
    error naming the URL (and the host), whether the listing or the root's metadata failed
    first."""
    from napari_zarr_explorer.report import inspect
    from servers import serve_directory

    with serve_directory(tmp_path) as srv:
        endpoint = srv.url  # closed once the block ends: connections are refused
    if scheme == "http":
        url, options = f"{endpoint}/a.zarr", dict(FAST)
    else:
        url, options = "s3://bucket/a.zarr", {**FAST, "endpoint_url": endpoint, "anon": True}
    with pytest.raises(RemoteError) as info:
        inspect(url, storage_options=options)
    assert url in str(info.value)
    assert "127.0.0.1" in str(info.value)


# --------------------------------------------------------------------------------------------
# what an OS error that is not one of the explorer's own says (docks, notebook, command line)


def test_error_message_of_a_refused_connection_names_no_errno(tmp_path):
    import socket

    from napari_zarr_explorer.errors import error_message

    port = int(_closed_endpoint(tmp_path).rpartition(":")[2])
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert error_message(info.value) == (
        "ConnectionRefusedError: connection refused. Check the URL (host name and port) and "
        "that the server is running."
    )


def test_error_message_of_aiohttp_refusal_names_host_and_port(tmp_path):
    """aiohttp knows where it tried to connect: the message names it."""
    import asyncio

    import aiohttp

    from napari_zarr_explorer.errors import error_message

    endpoint = _closed_endpoint(tmp_path)

    async def get() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{endpoint}/a.zarr/zarr.json") as resp,
        ):
            await resp.read()

    with pytest.raises(aiohttp.ClientConnectorError) as info:
        asyncio.run(get())
    port = endpoint.rpartition(":")[2]
    assert error_message(info.value) == (
        f"ClientConnectorError: connection refused by 127.0.0.1:{port}. Check the URL (host "
        "name and port) and that the server is running."
    )


def test_error_message_of_other_os_errors_keeps_the_type_drops_the_errno(tmp_path):
    from napari_zarr_explorer.errors import error_message

    missing = tmp_path / "missing.zarr"
    with pytest.raises(FileNotFoundError) as info:
        missing.read_bytes()
    assert (
        error_message(info.value)
        == f"FileNotFoundError: No such file or directory: {str(missing)!r}"
    )
    assert error_message(ConnectionResetError(104, "Connection reset by peer")) == (
        "ConnectionResetError: Connection reset by peer. Check the URL and your network connection."
    )
    assert error_message(OSError("no errno here")) == "OSError: no errno here"
    # an error raised from a refusal says something of its own: its words are kept
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise OSError("the scheduler went away") from refused
    except OSError as exc:
        assert error_message(exc) == "OSError: the scheduler went away"
    assert error_message(ValueError("bad")) == "ValueError: bad"
    assert error_message(KeyError()) == "KeyError"


# --------------------------------------------------------------------------------------------
# the lean HTTP client


def test_wait_idle_after_close_waits_for_the_requests_still_in_flight(http_server):
    """``close()`` lets requests in flight finish: ``wait_idle()`` after it returns once they
    have their answers (it returned at once, with a request still on the wire)."""
    import time

    from napari_zarr_explorer.store._http import HTTPClient

    _image(http_server.root)
    http_server.slow("img.ome.zarr/zarr.json", 1.0)
    client = HTTPClient(f"{http_server.url}/img.ome.zarr", timeout=60)
    client.fetch_ahead(["zarr.json"], 2**20)
    deadline = time.monotonic() + 60  # generous: only a request that never arrives fails
    while "img.ome.zarr/zarr.json" not in http_server.arrived:  # on the wire, not queued
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.01)
    client.close()
    assert client.wait_idle(60.0)
    # the server logs a request as it answers it
    assert http_server.count("img.ome.zarr/zarr.json") == 1
    assert isinstance(client.peek_early("zarr.json"), bytes)


def test_wait_idle_after_close_with_nothing_in_flight_returns_at_once(http_server):
    from napari_zarr_explorer.store._http import HTTPClient

    _image(http_server.root)
    client = HTTPClient(f"{http_server.url}/img.ome.zarr", timeout=60)
    client.fetch_ahead(["zarr.json"], 2**20)
    assert client.wait_idle(60.0)
    client.close()
    assert client.wait_idle(0.0)  # no wait at all: nothing is left to wait for


def test_a_failed_gcs_token_refresh_is_retried_not_access_denied():
    """gcsfs words a token refresh that failed for a moment as HTTP 401 caused by RefreshError."""
    from gcsfs.retry import HttpError
    from google.auth.exceptions import RefreshError

    from napari_zarr_explorer.store.remote import _classify

    try:
        try:
            raise RefreshError("token endpoint unreachable")
        except RefreshError as cause:
            raise HttpError({"code": 401, "message": "Invalid Credentials"}) from cause
    except HttpError as exc:
        assert _classify(exc)[0] == "transient"
    assert _classify(HttpError({"code": 401, "message": "Invalid Credentials"}))[0] == "denied"


def test_a_broken_pipe_is_not_a_network_problem():
    from napari_zarr_explorer.errors import error_message

    msg = error_message(BrokenPipeError(32, "Broken pipe"))
    assert msg == "BrokenPipeError: Broken pipe" and "network" not in msg


# --------------------------------------------------------------------------------------------
# sizes: a missing key is FileNotFoundError, as in every zarr store; a failure is a RemoteError

HTTP_CLIENTS = {"lean": {}, "aiohttp": {"client_kwargs": {}}}


def _array_missing_one_chunk(root: Path) -> Path:
    data = np.full((32, 32), 5, dtype="uint8")
    local = testing.write_array(root / "a.zarr", data, chunks=(16, 16), fill_value=1)
    (local / "c" / "1" / "1").unlink()
    return local


@pytest.mark.parametrize("client", sorted(HTTP_CLIENTS))
def test_the_size_of_a_missing_key_is_file_not_found(http_server, client):
    from zarr.core.sync import sync

    local = _array_missing_one_chunk(http_server.root)
    store = _store(f"{http_server.url}/a.zarr", **HTTP_CLIENTS[client], **FAST)
    assert sync(store.getsize("c/0/0")) == (local / "c" / "0" / "0").stat().st_size
    with pytest.raises(FileNotFoundError) as info:
        sync(store.getsize("c/1/1"))
    assert f"{http_server.url}/a.zarr/c/1/1" in str(info.value)
    assert not sync(store.exists("c/1/1"))
    assert store.stats.retries == 0  # an answer, not a failure
    asked = http_server.count("a.zarr/c/1/1")
    with pytest.raises(FileNotFoundError):  # remembered, as a missing chunk read is
        sync(store.getsize("c/1/1"))
    assert http_server.count("a.zarr/c/1/1") == asked


@pytest.mark.parametrize("client", sorted(HTTP_CLIENTS))
def test_the_size_of_a_key_that_cannot_be_read_is_a_remote_error(http_server, client):
    """Failures stay failures: a server error after the retries, a refusal."""
    from zarr.core.sync import sync

    _array_missing_one_chunk(http_server.root)
    http_server.fail("a.zarr/c/0/0", 503)
    http_server.fail("a.zarr/c/0/1", 403)
    store = _store(f"{http_server.url}/a.zarr", **HTTP_CLIENTS[client], **FAST)
    with pytest.raises(RemoteError, match="HTTP 503") as failed:
        sync(store.getsize("c/0/0"))
    assert not isinstance(failed.value, FileNotFoundError)
    assert store.stats.retries == 2  # retried
    with pytest.raises(AccessDeniedError, match="HTTP 403") as denied:
        sync(store.getsize("c/0/1"))
    assert not isinstance(denied.value, FileNotFoundError)
    assert "a.zarr/c/0/1" in str(denied.value)


@pytest.mark.parametrize("access", sorted(REFUSING))
def test_the_size_on_a_refused_connection_is_a_remote_error(tmp_path, access):
    from zarr.core.sync import sync

    url, options = REFUSING[access](_closed_endpoint(tmp_path))
    store = _store(url, **options, **FAST)
    with pytest.raises(RemoteError, match="Connection refused by") as info:
        sync(store.getsize("c/0/0"))
    assert not isinstance(info.value, FileNotFoundError)


def test_the_chunk_map_over_http_says_a_missing_chunk_is_missing(http_server):
    """It asks each chunk's size: a missing chunk was "unknown", as if the request had failed."""
    from napari_zarr_explorer import chunk_map
    from napari_zarr_explorer.chunks import MISSING, PRESENT

    _array_missing_one_chunk(http_server.root)
    cmap = chunk_map(f"{http_server.url}/a.zarr", storage_options=FAST)
    assert not cmap.problems
    assert cmap.state.tolist() == [[PRESENT, PRESENT], [PRESENT, MISSING]]
    assert cmap.chunks_present == 3


# --------------------------------------------------------------------------------------------
# a closed client


def test_a_closed_client_refuses_new_requests(http_server):
    """``close()`` is final: a request after it says the client is closed (it used to open new
    connections and threads, which nothing would close again)."""
    from napari_zarr_explorer.store._http import ClientClosedError, HTTPClient

    _image(http_server.root)
    client = HTTPClient(f"{http_server.url}/img.ome.zarr", timeout=60)
    assert client.get("zarr.json") is not None
    client.close()
    http_server.clear_log()
    for use in (
        lambda: client.get("zarr.json"),
        lambda: client.get("0/zarr.json", ("range", 0, 10)),
        lambda: client.head("zarr.json"),
        lambda: client.request("zarr.json"),
        lambda: client.fetch_ahead(["0/zarr.json"], 2**20),
        lambda: client.executor,
    ):
        with pytest.raises(ClientClosedError, match="closed") as info:
            use()
        assert f"{http_server.url}/img.ome.zarr" in str(info.value)
    assert not http_server.requests
    assert not client._pool.idle and client._pool.executor is None
    assert client.closed
    client.close()  # closing again is harmless


def test_a_store_over_a_closed_client_says_so(http_server):
    """A store whose client was closed fails at once with that reason: not retried, not taken
    for a missing key or a server that is down."""
    from napari_zarr_explorer.store._http import ClientClosedError

    _image(http_server.root)
    store = _store(f"{http_server.url}/img.ome.zarr", explorer_read_ahead=0, **FAST)
    assert fetch_many(store, ["zarr.json"])["zarr.json"] is not None
    store._store.client.close()
    with pytest.raises(ClientClosedError, match="closed"):
        fetch_many(store, ["0/zarr.json"])
    assert store.stats.retries == 0
    store.clear_cache()
    with pytest.raises(ClientClosedError):
        fetch_many(store, ["zarr.json"])
