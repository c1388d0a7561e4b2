"""The reader over HTTP (a real loopback server): same layers as from disk, no listing needed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer._reader import napari_get_reader
from napari_zarr_explorer.layers import open_layers
from scripts import printed_json, run_python
from servers import serve_sharded_image


def test_ome_image_over_http(http_server, tmp_path: Path) -> None:
    src = testing.write_ome_image(
        tmp_path / "img.ome.zarr",
        version="0.5",
        shape=(2, 8, 64, 64),
        chunks=(1, 4, 32, 32),
        shards=(1, 8, 64, 64),
        levels=2,
        labels=True,
    )
    url = http_server.publish(src)
    reader = napari_get_reader(url)
    assert reader is not None
    local = open_layers(src)
    remote = reader(url)
    assert [t for _, _, t in remote] == ["image", "labels"]
    assert remote[0][1]["metadata"]["source_url"] == url
    for (ld, lk, _), (rd, rk, _) in zip(local, remote, strict=True):
        assert lk["name"] == rk["name"]
        np.testing.assert_array_equal(
            np.asarray(ld[0][..., :40, :40]), np.asarray(rd[0][..., :40, :40])
        )


def test_plate_over_http(http_server, tmp_path: Path) -> None:
    src = testing.write_plate(tmp_path / "plate.zarr", version="0.4", rows=1, cols=2, fields=1)
    ((data, _, _),) = open_layers(http_server.publish(src))
    ((local, _, _),) = open_layers(src)
    np.testing.assert_array_equal(np.asarray(data[0]), np.asarray(local[0]))


def test_unfetchable_chunk_shows_fill_and_warns(http_server, tmp_path: Path) -> None:
    import pytest

    from napari_zarr_explorer.errors import ExplorerWarning

    values = np.arange(40 * 40, dtype="uint16").reshape(40, 40) + 1
    testing.write_array(http_server.root / "a.zarr", values, zarr_format=2, chunks=(20, 20))
    http_server.fail("*a.zarr/1.0", 500)
    ((data, _, _),) = open_layers(
        f"{http_server.url}/a.zarr",
        storage_options={"explorer_retries": 0, "explorer_backoff": 0},
    )
    with pytest.warns(ExplorerWarning, match=r"chunk 1\.0 "):
        out = np.asarray(data)
    expected = values.copy()
    expected[20:, :20] = 0
    np.testing.assert_array_equal(out, expected)


# What a fresh napari session does to show the first image: the reader, the coarsest level's
# central plane (the contrast limits), then a full-resolution tile. Prints the modules it had
# imported after the reader, after the plane and after the tile.
_FIRST_IMAGE = r"""
import json, sys
import numpy as np
from napari_zarr_explorer._reader import napari_get_reader
heavy = ("zarr", "numcodecs", "fsspec", "aiohttp", "distributed", "imagecodecs", "s3fs")
url = sys.argv[1]
layers = napari_get_reader(url)(url)
seen = {"open": sorted(m for m in heavy if m in sys.modules)}
levels = layers[0][0]
coarse, full = levels[-1], levels[0]
a = np.asarray(coarse[:, coarse.shape[1] // 2])
seen["first image"] = sorted(m for m in heavy if m in sys.modules)
b = np.asarray(full[:, full.shape[1] // 2, 32:64, 32:64])
seen["tile"] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"sums": [int(a.sum()), int(b.sum())], "seen": seen,
                  "reader": type(full.reader).__name__}))
"""


def test_first_image_over_http_imports_only_what_it_needs(http_server, tmp_path: Path) -> None:
    """Neither zarr-python nor aiohttp before the first image; no dask.distributed, no image
    codecs for the first tile (zarr-python may then start in the background); each document
    and each byte range requested once; no Zarr v2 document asked of a Zarr v3 image."""
    url, src = serve_sharded_image(http_server, tmp_path)
    http_server.clear_log()
    result = printed_json(run_python(_FIRST_IMAGE, url))
    assert result["reader"] == "_LeanReader"
    assert result["seen"]["open"] == result["seen"]["first image"] == []
    assert not {"aiohttp", "distributed", "imagecodecs", "s3fs"} & set(result["seen"]["tile"])
    local = open_layers(str(src))[0][0]
    want = [
        int(np.asarray(local[-1][:, local[-1].shape[1] // 2]).sum()),
        int(np.asarray(local[0][:, local[0].shape[1] // 2, 32:64, 32:64]).sum()),
    ]
    assert result["sums"] == want
    counts = Counter((q.path, q.range) for q in http_server.requests)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    names = [q.path.rsplit("/", 1)[-1] for q in http_server.requests]
    assert not {".zarray", ".zgroup", ".zattrs", ".zmetadata"} & set(names)
    assert names.count("zarr.json") == 5  # the root, three levels, the labels probe


def test_reader_fetches_metadata_ahead_and_hands_it_to_the_store(
    http_server, tmp_path: Path
) -> None:
    from napari_zarr_explorer.store import _http

    url, _src = serve_sharded_image(http_server, tmp_path)
    http_server.clear_log()
    client = _http.prefetch(url, limit=2**20)
    assert client is not None
    layers = open_layers(url)  # takes the client and its answers
    assert _http.take_prefetched(url, {}) is None
    assert not client.early_keys()  # every answer fetched ahead was used
    np.asarray(layers[0][0][-1][0, 0])
    counts = Counter(q.path for q in http_server.requests if q.path.endswith("zarr.json"))
    assert set(counts.values()) == {1}, counts


def test_no_fetching_ahead_when_read_ahead_is_off(http_server, tmp_path: Path, monkeypatch) -> None:
    from napari_zarr_explorer import _reader
    from napari_zarr_explorer.store import _http

    url, _src = serve_sharded_image(http_server, tmp_path)
    monkeypatch.setenv("NZE_REMOTE_READ_AHEAD", "0")
    http_server.clear_log()
    _reader._prefetch(url)
    assert _http.take_prefetched(url, {}) is None
    assert not http_server.requests


def test_http_options_beyond_headers_go_through_fsspec(http_server, tmp_path: Path) -> None:
    """Options only fsspec's aiohttp file system knows keep working, with the same rules."""
    import pytest
    from zarr.storage import FsspecStore

    from napari_zarr_explorer.errors import ExplorerError
    from napari_zarr_explorer.store import open_store, parse_location
    from napari_zarr_explorer.store.remote import HTTPStore, fetch_many

    url, src = serve_sharded_image(http_server, tmp_path)
    lean = open_store(parse_location(url))
    assert isinstance(lean._store, HTTPStore)
    options = {"client_kwargs": {"trust_env": False}}
    store = open_store(parse_location(url, options))
    assert isinstance(store._store, FsspecStore)
    layers = open_layers(url, storage_options=options)
    local = open_layers(str(src))
    np.testing.assert_array_equal(np.asarray(layers[0][0][-1]), np.asarray(local[0][0][-1]))
    http_server.redirect("img.ome.zarr/0/zarr.json", "http://example.invalid/x/zarr.json")
    for opts in ({}, options):
        with pytest.raises(ExplorerError, match="redirect"):
            fetch_many(open_store(parse_location(url, opts)), ["0/zarr.json"])


def test_reused_connections_survive_the_server_closing_them(http_server, tmp_path: Path) -> None:
    """A kept-alive connection the server has closed meanwhile is replaced, not an error."""
    from napari_zarr_explorer.store._http import HTTPClient

    url, src = serve_sharded_image(http_server, tmp_path)
    client = HTTPClient(url, timeout=5)
    first = client.get("zarr.json", limit=2**20)
    assert first is not None
    for conn in client._pool.idle:  # what a server closing idle connections leaves behind
        assert conn.sock is not None
        conn.sock.shutdown(2)
    assert client.get("zarr.json", limit=2**20) == first
    assert (
        client.get("0/zarr.json", ("range", 0, 10)) == (src / "0" / "zarr.json").read_bytes()[:10]
    )
    assert client.get("missing.json") is None
    client.close()


def test_a_server_ignoring_range_headers_gives_the_right_bytes(tmp_path: Path) -> None:
    """The standard library's file server answers every Range request with the whole file."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from napari_zarr_explorer.pyramid import open_pyramid
    from napari_zarr_explorer.store._http import HTTPClient

    www = tmp_path / "www"
    www.mkdir()
    blob = bytes(range(256)) * 4
    (www / "blob.bin").write_bytes(blob)
    values = np.arange(2 * 64 * 64, dtype="uint16").reshape(2, 64, 64)
    testing.write_array(www / "s.zarr", values, chunks=(1, 16, 16), shards=(1, 32, 32))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        client = HTTPClient(url, timeout=5)
        assert client.get("blob.bin", ("range", 10, 20)) == blob[10:20]
        assert client.get("blob.bin", ("offset", 1000, 0)) == blob[1000:]
        assert client.get("blob.bin", ("suffix", 7, 0)) == blob[-7:]
        client.close()
        (level,) = open_pyramid(f"{url}/s.zarr")
        np.testing.assert_array_equal(level[:, 8:40, 8:40].compute(), values[:, 8:40, 8:40])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetching_ahead_with_one_request_at_a_time(
    http_server, tmp_path: Path, monkeypatch
) -> None:
    """A concurrency of 1 still works (nothing waits for a thread it occupies itself)."""
    from napari_zarr_explorer._reader import read_zarr

    url, _src = serve_sharded_image(http_server, tmp_path)
    monkeypatch.setenv("NZE_REMOTE_CONCURRENCY", "1")
    monkeypatch.setenv("NZE_REMOTE_TIMEOUT", "30")
    http_server.clear_log()
    layers = read_zarr(url)
    assert np.asarray(layers[0][0][-1][0, 0]).shape == (32, 32)
    counts = Counter(q.path for q in http_server.requests)
    assert set(counts.values()) == {1}, counts
    assert http_server.max_active == 1


def test_image_codecs_are_registered_when_an_array_needs_one(tmp_path: Path) -> None:
    """The image codecs are no longer registered for every array: in a fresh process, an array
    stored with one still opens, and one without does not import imagecodecs."""
    from napari_zarr_explorer import recompress

    data = (np.arange(2 * 32 * 48) % 200).astype("uint8").reshape(2, 32, 48)
    testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    recompress(tmp_path / "src.zarr", tmp_path / "png.zarr", compressor="png", chunks=(1, 32, 48))
    code = (
        "import json, sys\nimport numpy as np\n"
        "from napari_zarr_explorer.layers import open_layers\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    before = 'imagecodecs' in sys.modules\n"
        "    out[name] = [int(np.asarray(open_layers(name)[0][0]).sum(dtype=np.int64)),\n"
        "                 'imagecodecs' in sys.modules and not before]\n"
        "print(json.dumps(out))\n"
    )
    src, png = str(tmp_path / "src.zarr"), str(tmp_path / "png.zarr")
    result = printed_json(run_python(code, src, png, flags=["-W", "ignore"]))
    total = int(data.sum(dtype=np.int64))
    assert result[src] == [total, False]  # zstd only: imagecodecs not imported
    assert result[png] == [total, True]  # png: registered on demand, read exactly


_EXIT_CHILD = r"""
import sys
from napari_zarr_explorer.store._http import HTTPClient
client = HTTPClient(sys.argv[1], timeout=600.0)
future = client.executor.submit(client.request, "zarr.json")
sys.stdin.readline()  # the server has the request: now quit
"""


def test_a_request_in_flight_does_not_hold_the_interpreter_at_exit(tmp_path: Path) -> None:
    """Quitting (napari, a script) while a server holds a request open ends at once."""
    import socket
    import subprocess
    import sys

    held: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        port = server.getsockname()[1]
        child = subprocess.Popen(
            [sys.executable, "-c", _EXIT_CHILD, f"http://127.0.0.1:{port}/store.zarr"],
            stdin=subprocess.PIPE,
            text=True,
        )
        try:
            conn, _ = server.accept()  # the request arrives and is never answered
            held.append(conn)
            assert child.stdin is not None
            child.stdin.write("quit\n")
            child.stdin.close()
            # the request has 600 s before it times out: exit must not wait for it
            assert child.wait(timeout=60) == 0
        finally:
            child.kill()
            for conn in held:
                conn.close()


# A script showing the first image of a remote image (lean: no zarr-python), then quitting.
# Its first exit handler runs last, after the package's own: it reports the sockets still
# connected to the server, then drops what the script and the prefetch table hold and collects
# them, so that any socket left open is finalised while warnings are still shown.
_QUIT_AFTER_FIRST_IMAGE = r"""
import atexit, gc, json, socket, sys

def at_exit():
    port = int(sys.argv[2])
    def still_open():
        found = 0
        for obj in gc.get_objects():
            if isinstance(obj, socket.socket) and obj.fileno() != -1:
                try:
                    found += obj.getpeername()[1] == port
                except OSError:
                    pass
        return found
    print(json.dumps({"open at exit": still_open()}), flush=True)
    globals().pop("layers", None)
    sys.modules["napari_zarr_explorer.store._http"]._PREFETCHED.clear()
    gc.collect()

atexit.register(at_exit)

import numpy as np
from napari_zarr_explorer._reader import napari_get_reader
from napari_zarr_explorer.store._http import peek_prefetched
url = sys.argv[1]
layers = napari_get_reader(url)(url)
print(int(np.asarray(layers[0][0][-1][:, 0]).sum()))
client = peek_prefetched(url, {})
for key in client.early_keys():  # the answers fetched ahead: nothing is left in flight
    client.peek_early(key)
assert type(layers[0][0][0].reader).__name__ == "_LeanReader"
del client
"""


def test_no_connection_is_left_open_at_exit(http_server, tmp_path: Path) -> None:
    """Quitting after opening a remote image closes the kept-alive connections: no
    ``ResourceWarning: unclosed <socket...>`` at exit."""
    url, _src = serve_sharded_image(http_server, tmp_path, labels=True)
    proc = run_python(
        _QUIT_AFTER_FIRST_IMAGE,
        url,
        str(http_server.port),
        flags=["-X", "dev", "-W", "always::ResourceWarning"],
    )
    assert printed_json(proc) == {"open at exit": 0}, proc.stderr[-2000:]
    assert "ResourceWarning" not in proc.stderr, proc.stderr[-2000:]
    assert "unclosed" not in proc.stderr, proc.stderr[-2000:]


def test_peeking_at_a_client_not_fetching_ahead_returns_at_once(
    http_server, tmp_path: Path
) -> None:
    """A client :func:`prefetch` did not start has nothing fetched ahead: asking it for an
    early answer says so at once, without a request (it used to wait its whole timeout)."""
    import threading

    from napari_zarr_explorer.store._http import NOTHING, HTTPClient

    url, _src = serve_sharded_image(http_server, tmp_path)
    client = HTTPClient(url, timeout=600.0)
    http_server.clear_log()
    got: list[object] = []
    peek = threading.Thread(target=lambda: got.append(client.peek_early("zarr.json")), daemon=True)
    peek.start()
    peek.join(60.0)  # generous: only a wait for the 600 s timeout fails here
    try:
        assert not peek.is_alive(), "peek_early waited for answers nobody is fetching"
        assert got == [NOTHING]
        assert not http_server.requests
    finally:
        client.close()


def test_waiting_until_the_reads_ahead_of_a_store_are_over(http_server, tmp_path: Path) -> None:
    """``RemoteStore.wait_idle`` returns once the reads ahead a document started are answered,
    so that what the store asked for can be counted after it (a level answered late here)."""
    from zarr.core.sync import sync

    from napari_zarr_explorer.store import open_store, parse_location

    url, _src = serve_sharded_image(http_server, tmp_path, labels=True)
    http_server.clear_log()
    http_server.slow("*/0/zarr.json", 0.5)
    store = open_store(parse_location(url))
    sync(store.get_bytes("zarr.json"))  # reads ahead its levels and labels
    assert store.wait_idle(120.0)  # generous: only a hang fails
    assert sorted(p.split(".ome.zarr/", 1)[-1] for p in http_server.paths()) == [
        "0/zarr.json",
        "1/zarr.json",
        "2/zarr.json",
        "labels/zarr.json",
        "zarr.json",
    ]


def test_waiting_until_a_client_has_fetched_ahead(http_server, tmp_path: Path) -> None:
    """``HTTPClient.wait_idle`` on a client :func:`prefetch` made returns once it has asked for
    all it fetches ahead and every answer has come (a level answered late here)."""
    from napari_zarr_explorer.store import _http

    url, _src = serve_sharded_image(http_server, tmp_path)
    http_server.clear_log()
    http_server.slow("*/2/zarr.json", 0.5)
    client = _http.prefetch(url, limit=2**20)
    assert client is not None
    try:
        assert client.wait_idle(120.0)  # generous: only a hang fails
        assert "img.ome.zarr/2/zarr.json" in http_server.paths()
    finally:
        taken = _http.take_prefetched(url, {})
        assert taken is client
        client.close()


def _read(http_server, layout: str, how: str, **options):
    """Write a 40 x 40 array served over HTTP; a function reading it the way napari does.

    ``layout`` "v2": chunks of 20 x 20 (the stored object ``a.zarr/1.0`` holds [20:, :20]);
    "sharded": Zarr v3 shards of 20 x 20 holding chunks of 10 x 10 (``a.zarr/c/1/0``).
    ``how`` "layer": the layer data napari slices (through the cache of decoded chunks);
    "pyramid": an ``open_pyramid`` level computed (no cache).
    """
    from napari_zarr_explorer.pyramid import open_pyramid

    values = np.arange(40 * 40, dtype="uint16").reshape(40, 40) + 1
    if layout == "v2":
        testing.write_array(http_server.root / "a.zarr", values, zarr_format=2, chunks=(20, 20))
        key = "a.zarr/1.0"
    else:
        testing.write_array(
            http_server.root / "a.zarr", values, zarr_format=3, chunks=(10, 10), shards=(20, 20)
        )
        key = "a.zarr/c/1/0"
    url = f"{http_server.url}/a.zarr"
    opts = {"explorer_retries": 0, "explorer_backoff": 0, **options}
    if how == "layer":
        ((data, _, _),) = open_layers(url, storage_options=opts)
        return values, key, lambda: np.asarray(data)
    (level,) = open_pyramid(url, storage_options=opts)
    return values, key, lambda: np.asarray(level)


def _explorer_warnings(read):
    import warnings

    from napari_zarr_explorer.errors import ExplorerWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = read()
    return out, [str(w.message) for w in seen if issubclass(w.category, ExplorerWarning)]


@pytest.mark.parametrize("how", ["layer", "pyramid"])
@pytest.mark.parametrize("layout", ["v2", "sharded"])
def test_a_chunk_the_server_failed_shows_once_the_server_recovered(
    http_server, monkeypatch, layout: str, how: str
) -> None:
    """Panning back after the server recovered shows the real pixels, not the fill value."""
    from napari_zarr_explorer.store import remote

    # what the store remembers of a failure is over at once (it is 10 s for users), and the
    # host is never left alone: each read asks the server again
    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    monkeypatch.setattr(remote, "_BREAKER_FAILURES", 1000)
    values, key, read = _read(http_server, layout, how)
    http_server.fail(key, 500)
    expected = values.copy()
    expected[20:, :20] = 0

    out, said = _explorer_warnings(read)
    np.testing.assert_array_equal(out, expected)
    assert len(said) == 1
    assert "500" in said[0] and "fill value" in said[0]
    assert "decoded" not in said[0]  # the server failed: nothing says the data is damaged

    asked = http_server.count(key)
    out, said = _explorer_warnings(read)  # still failing: asked again, not warned again
    np.testing.assert_array_equal(out, expected)
    assert said == []
    assert http_server.count(key) > asked
    if how == "layer":  # saving the layer never writes fill values for what was not read
        from napari_zarr_explorer.errors import ExplorerError
        from napari_zarr_explorer.pyramid import strict_reads

        with strict_reads(), pytest.raises(ExplorerError, match="could not be read"):
            read()

    http_server.clear_faults()
    out, said = _explorer_warnings(read)
    np.testing.assert_array_equal(out, values)
    assert said == []


@pytest.mark.parametrize("how", ["layer", "pyramid"])
@pytest.mark.parametrize("layout", ["v2", "sharded"])
def test_a_damaged_chunk_stays_the_fill_value_and_is_not_asked_again(
    http_server, monkeypatch, layout: str, how: str
) -> None:
    from napari_zarr_explorer.store import remote

    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    # no bytes kept by the store either: every decode of the chunk would be a request
    values, key, read = _read(http_server, layout, how, explorer_cache_mb=0)
    stored = http_server.root / key
    stored.write_bytes(b"\x00not a chunk\xff" * 4)
    expected = values.copy()
    if layout == "v2":
        expected[20:, :20] = 0
    else:
        expected[20:40, 0:20] = 0  # every inner chunk of the damaged shard

    out, said = _explorer_warnings(read)
    np.testing.assert_array_equal(out, expected)
    assert len(said) == 1 and "decoded" in said[0]
    asked = http_server.count(key)
    for _ in range(3):
        out, said = _explorer_warnings(read)
        np.testing.assert_array_equal(out, expected)
        assert said == []
    assert http_server.count(key) == asked
