"""Plates over HTTP (a real loopback server): the right pixels in the right well and field,
wells that differ from the first one, wells that are missing, and what is requested."""

from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerWarning
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.plate import MAX_TEXTURE

TILE = 64  # field shape (2, 64, 64), two levels


def _plate(http_server, tmp_path: Path, version: str, **kw) -> tuple[Path, str]:
    src = testing.write_plate(tmp_path / "plate.zarr", version=version, **kw)
    dst = http_server.root / "plate.zarr"
    shutil.copytree(src, dst)
    return dst, f"{http_server.url}/plate.zarr"


def _own(root: Path, well: str, field: str, level: int) -> np.ndarray:
    return np.asarray(zarr.open_array(str(root / well / field / str(level)), mode="r")[...])


def _tile(data, level: int, r: int, c: int) -> np.ndarray:
    n = TILE >> level
    return np.asarray(data[level][:, n * r : n * r + n, n * c : n * c + n])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_every_well_and_field_over_http(http_server, tmp_path: Path, version: str) -> None:
    root, url = _plate(http_server, tmp_path, version, rows=2, cols=3, fields=2)
    layers = open_layers(url)
    assert [k["metadata"]["plate"]["field"] for _, k, _ in layers] == ["0", "1"]
    for fi, (data, _, _) in enumerate(layers):
        assert data[0].shape == (2, 2 * TILE, 3 * TILE)
        for r, row in enumerate("AB"):
            for c in range(3):
                for level in (0, 1):
                    want = _own(root, f"{row}/{c + 1}", str(fi), level)
                    np.testing.assert_array_equal(_tile(data, level, r, c), want)
    # a region across four wells, not aligned to them
    got = np.asarray(layers[1][0][0][1, 40:90, 50:150])
    full = np.zeros((2 * TILE, 3 * TILE), dtype=got.dtype)
    for r, row in enumerate("AB"):
        for c in range(3):
            full[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = _own(
                root, f"{row}/{c + 1}", "1", 0
            )[1]
    np.testing.assert_array_equal(got, full[40:90, 50:150])


def test_overview_reads_each_well_once_without_its_metadata(http_server, tmp_path: Path) -> None:
    _, url = _plate(http_server, tmp_path, "0.4", rows=4, cols=6, fields=2)
    http_server.clear_log()
    layers = open_layers(url)
    for data, _, _ in layers[:1]:
        for ch in range(2):
            np.asarray(data[-1][ch])
    paths = [q.path for q in http_server.requests]
    counts = Counter(paths)
    assert max(counts.values()) == 1, [p for p, n in counts.items() if n > 1]
    # the first well's metadata only: no other well's .zattrs / .zgroup / .zarray
    wells = {p.split("/")[1] + "/" + p.split("/")[2] for p in paths if p.count("/") >= 3}
    meta = [p for p in paths if p.rsplit("/", 1)[-1].startswith(".z") and "/A/1/" not in p]
    assert all(p.count("/") <= 1 for p in meta), meta
    assert len(wells) == 24  # every well read (its chunk), once
    # no Zarr v3 probe once the store is known to be v2
    assert sum(1 for p in paths if p.endswith("zarr.json")) <= 1


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_differing_wells_are_read_correctly(http_server, tmp_path: Path, version: str) -> None:
    root, url = _plate(http_server, tmp_path, version, rows=2, cols=2, fields=2)
    fmt = 2 if version == "0.4" else 3
    # B/1 field 0: other chunks and another compressor than the first well
    for level in (0, 1):
        path = root / "B" / "1" / "0" / str(level)
        values = _own(root, "B/1", "0", level)
        shutil.rmtree(path)
        testing.write_array(path, values, zarr_format=fmt, chunks=(1, 16, 16), compressor="gzip")
    # B/2: its fields are stored under other paths than the first well's
    well = root / "B" / "2"
    for f in ("0", "1"):
        (well / f).rename(well / f"field-{f}")
    doc_name = ".zattrs" if version == "0.4" else "zarr.json"
    doc = json.loads((well / doc_name).read_text())
    block = doc if version == "0.4" else doc["attributes"]["ome"]
    for im in block["well"]["images"]:
        im["path"] = f"field-{im['path']}"
    (well / doc_name).write_text(json.dumps(doc))
    layers = open_layers(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplorerWarning)  # read correctly: nothing to warn about
        for fi, (data, _, _) in enumerate(layers):
            for level in (0, 1):
                np.testing.assert_array_equal(
                    _tile(data, level, 1, 0), _own(root, "B/1", str(fi), level)
                )
                np.testing.assert_array_equal(
                    _tile(data, level, 1, 1), _own(root, "B/2", f"field-{fi}", level)
                )
                np.testing.assert_array_equal(
                    _tile(data, level, 0, 1), _own(root, "A/2", str(fi), level)
                )


def test_missing_and_unusable_wells_are_empty_with_one_warning(http_server, tmp_path: Path) -> None:
    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=1)
    shutil.rmtree(root / "A" / "2")  # listed by the plate, not stored
    # B/2: float data where the first well has integers: never shown as wrong pixels
    for level in (0, 1):
        path = root / "B" / "2" / "0" / str(level)
        values = _own(root, "B/2", "0", level).astype("float64") + 0.5
        shutil.rmtree(path)
        testing.write_array(path, values, zarr_format=2, chunks=(1, 16, 16))
    ((data, _, _),) = open_layers(url)
    with pytest.warns(ExplorerWarning) as record:
        for _ in range(3):  # read again and again: one warning per well
            for level in (0, 1):
                assert not _tile(data, level, 0, 1).any()
                assert not _tile(data, level, 1, 1).any()
                np.testing.assert_array_equal(
                    _tile(data, level, 1, 0), _own(root, "B/1", "0", level)
                )
    messages = [str(w.message) for w in record]
    assert sum("'A/2'" in m for m in messages) == 1, messages
    assert sum("'B/2'" in m for m in messages) == 1, messages


def test_mosaic_fits_a_texture(tmp_path: Path) -> None:
    path = testing.write_plate(
        tmp_path / "wide.zarr", version="0.4", rows=2, cols=40, fields=1, shape=(1, 128, 128)
    )
    ((data, _, _),) = open_layers(path)
    assert data[0].shape[-1] == 40 * 128 > MAX_TEXTURE
    assert max(data[-1].shape[-2:]) <= MAX_TEXTURE
    # the strided level samples the field's coarsest level
    coarse = _own(path, "A/3", "0", 1)
    step = (data[-2].shape[-1] // 40) // (data[-1].shape[-1] // 40)
    n = data[-1].shape[-1] // 40
    np.testing.assert_array_equal(
        np.asarray(data[-1][:, :n, 2 * n : 3 * n]), coarse[:, ::step, ::step]
    )


def test_small_reads_go_out_together(http_server, tmp_path: Path) -> None:
    """The chunks of one view: 64 requests in flight per store, not zarr's global 10."""
    from napari_zarr_explorer.store import open_array, open_store, parse_location
    from napari_zarr_explorer.store.remote import read_region

    values = np.arange(96 * 96, dtype="uint16").reshape(96, 96)
    testing.write_array(http_server.root / "a.zarr", values, zarr_format=2, chunks=(8, 8))
    url = f"{http_server.url}/a.zarr"
    # the server holds requests until the limit is reached: no client timeout meanwhile
    patient = {"explorer_timeout": 120, "explorer_retries": 0, "explorer_read_ahead": False}
    http_server.gate_timeout = 60
    for options, limit, region in (
        (patient, 64, (slice(0, 64), slice(0, 64))),
        ({**patient, "explorer_concurrency": 16}, 16, (slice(0, 64), slice(8, 72))),  # per store
    ):
        loc = parse_location(url, options)
        arr = open_array(loc, store=open_store(loc))
        http_server.clear_log()
        http_server.gate = limit  # each request waits until this many are in flight
        np.testing.assert_array_equal(read_region(arr, region), values[region])
        assert len(http_server.requests) == 64 and http_server.max_active == limit


def test_plate_wells_go_out_together(http_server, tmp_path: Path) -> None:
    _, url = _plate(http_server, tmp_path, "0.4", rows=8, cols=12, fields=1)
    options = {"explorer_timeout": 120, "explorer_read_ahead": False}  # no stray requests
    ((data, _, _),) = open_layers(url, storage_options=options)
    http_server.clear_log()
    http_server.gate = 64
    http_server.gate_timeout = 60
    np.asarray(data[0][0])  # full resolution: not read yet (the overview was)
    assert len(http_server.requests) == 96 and http_server.max_active == 64


def test_channel_split_stays_lazy(http_server, tmp_path: Path) -> None:
    """napari splits channels with ``level[c]``: nothing may be read until a view is sliced."""
    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=2)
    layers = open_layers(url)
    http_server.clear_log()
    views = [level[1] for data, _, _ in layers for level in data]
    assert not http_server.requests
    assert views[0].shape == (2 * TILE, 2 * TILE)
    np.testing.assert_array_equal(np.asarray(views[0][TILE:, :TILE]), _own(root, "B/1", "0", 0)[1])
    with pytest.raises(IndexError):
        layers[0][0][0][5]


def _reshard(root: Path, shards: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    """Store every field level of a 0.5 plate sharded (shards may overhang the level)."""
    for arr_json in sorted(root.glob("*/*/*/*/zarr.json")):
        level = arr_json.parent
        values = np.asarray(zarr.open_array(str(level), mode="r")[...])
        attrs = json.loads(arr_json.read_text()).get("attributes", {})
        shutil.rmtree(level)
        testing.write_array(
            level, values, chunks=chunks, shards=shards, compressor="zstd:3", attributes=attrs
        )


def test_sharded_plate_over_http(http_server, tmp_path: Path) -> None:
    """OME 0.5 with sharded fields: right pixels everywhere, each object read once, no probes."""
    root, url = _plate(http_server, tmp_path, "0.5", rows=2, cols=3, fields=2)
    _reshard(root, shards=(2, 48, 48), chunks=(1, 16, 16))  # partial shards at the edges
    http_server.clear_log()
    layers = open_layers(url)
    # the field chooser: one layer per field, every field there, the first shown
    fields = [k["metadata"]["plate"]["field"] for _, k, _ in layers]
    assert fields == ["0", "1"]
    visible = [k.get("visible", True) for _, k, _ in layers]
    assert visible[0] in (True, [True, True]) and visible[1] in (False, [False, False])
    for data, _, _ in layers:  # the overview of every field, channel by channel
        for ch in range(2):
            np.asarray(data[-1][ch])
    paths = [q.path for q in http_server.requests]
    counts = Counter((q.path, q.range) for q in http_server.requests)
    assert max(counts.values()) == 1, [p for p, n in counts.items() if n > 1]
    assert not [p for p in paths if p.rsplit("/", 1)[-1] in (".zarray", ".zgroup", ".zattrs")]
    # the coarsest level: one shard per well and field, read whole, nothing else of the wells
    shards = [p for p in paths if "/c/" in p]
    assert len(shards) == 2 * 6, shards
    assert all(p.split("/")[4] == "1" for p in shards), shards
    for fi, (data, _, _) in enumerate(layers):
        for r, row in enumerate("AB"):
            for c in range(3):
                for level in (0, 1):
                    want = _own(root, f"{row}/{c + 1}", str(fi), level)
                    np.testing.assert_array_equal(_tile(data, level, r, c), want)


def test_damaged_shard_shows_its_well_empty_with_a_warning(http_server, tmp_path: Path) -> None:
    root, url = _plate(http_server, tmp_path, "0.5", rows=2, cols=2, fields=1)
    _reshard(root, shards=(2, 32, 32), chunks=(1, 16, 16))
    shard = root / "B" / "1" / "0" / "1" / "c" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-8] ^= 0xFF  # the shard index no longer matches its checksum
    shard.write_bytes(bytes(raw))
    ((data, _, _),) = open_layers(url)
    with pytest.warns(ExplorerWarning, match="c/0/0/0"):
        got = _tile(data, 1, 1, 0)
    assert not got.any()  # the fill value, never wrong pixels
    np.testing.assert_array_equal(_tile(data, 1, 0, 1), _own(root, "A/2", "0", 1))


def _move_fields(root: Path, well: str) -> None:
    """Store *well*'s fields under ``field-N`` (a valid plate: its chunks are not where the
    first well's layout puts them, so reading it needs its own metadata)."""
    wdir = root / well
    for f in sorted(p.name for p in wdir.iterdir() if p.is_dir()):
        (wdir / f).rename(wdir / f"field-{f}")
    doc = json.loads((wdir / ".zattrs").read_text())
    for im in doc["well"]["images"]:
        im["path"] = f"field-{im['path']}"
    (wdir / ".zattrs").write_text(json.dumps(doc))


def test_saving_a_plate_with_a_well_that_cannot_be_read_fails_and_keeps_nothing(
    http_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shown, a well that cannot be read is empty with a warning; saved, it is never zeros."""
    from napari_zarr_explorer import save
    from napari_zarr_explorer.errors import ExplorerError
    from napari_zarr_explorer.store import remote

    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    # failures are not remembered: once the server is back, the next save asks it again
    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=1)
    _move_fields(root, "B/1")
    http_server.fail("plate.zarr/B/1/.z*", 500)  # its metadata: the server fails
    layer = open_layers(url)[0]
    data = layer[0]
    # napari shows the other wells, and this one empty, with one warning naming it
    with pytest.warns(ExplorerWarning, match="'B/1' is shown empty") as record:
        assert not _tile(data, 0, 1, 0).any()
        np.testing.assert_array_equal(_tile(data, 0, 1, 1), _own(root, "B/2", "0", 0))
    assert sum("'B/1'" in str(w.message) for w in record) == 1
    # a save never writes those zeros as the well's data: it fails, naming the well's URL
    out = tmp_path / "saved.ome.zarr"
    with pytest.raises(ExplorerError) as caught:
        save([layer], str(out))
    message = str(caught.value)
    assert "well 'B/1'" in message and f"{url}/B/1/.z" in message, message
    assert "HTTP 500" in message and "Nothing was kept" in message, message
    assert not out.exists()
    assert not list(tmp_path.glob(".saved.ome.zarr*"))
    # the server is back: the same layer saves, the well with its own pixels
    http_server.clear_faults()
    report = save([layer], str(out))
    assert report.ok
    saved = zarr.open_array(str(out / "0"), mode="r")
    np.testing.assert_array_equal(saved[:, TILE:, :TILE], _own(root, "B/1", "field-0", 0))
    np.testing.assert_array_equal(saved[:, :TILE, TILE:], _own(root, "A/2", "0", 0))


def test_saving_a_plate_well_of_another_data_type_fails_and_a_missing_well_saves_empty(
    http_server, tmp_path: Path
) -> None:
    """A well whose data the mosaic cannot hold fails the save; a well not stored at all is
    saved as the fill value, as a chunk not stored is."""
    from napari_zarr_explorer import save
    from napari_zarr_explorer.errors import ExplorerError

    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=1)
    shutil.rmtree(root / "A" / "2")  # listed by the plate, not stored
    out = tmp_path / "saved.ome.zarr"
    with pytest.warns(ExplorerWarning, match="'A/2' is shown empty"):
        report = save([open_layers(url)[0]], str(out))
    assert report.ok
    saved = zarr.open_array(str(out / "0"), mode="r")
    assert not saved[:, :TILE, TILE:].any()
    np.testing.assert_array_equal(saved[:, TILE:, TILE:], _own(root, "B/2", "0", 0))
    # B/2: float data where the first well has integers
    for level in (0, 1):
        path = root / "B" / "2" / "0" / str(level)
        values = _own(root, "B/2", "0", level).astype("float64") + 0.5
        shutil.rmtree(path)
        testing.write_array(path, values, zarr_format=2, chunks=(1, 16, 16))
    other = tmp_path / "other.ome.zarr"
    with pytest.raises(ExplorerError) as caught:
        save([open_layers(url)[0]], str(other))
    message = str(caught.value)
    assert "well 'B/2'" in message and f"{url}/B/2" in message and "float64" in message, message
    assert "Nothing was kept" in message, message
    assert not other.exists()


def test_saving_a_plate_well_with_a_damaged_chunk_fails_after_it_was_shown(
    http_server, tmp_path: Path
) -> None:
    """A well read through its own arrays shows a damaged chunk as the fill value; the save
    that follows reads it again and fails, naming the chunk, rather than saving what was shown."""
    from napari_zarr_explorer import save
    from napari_zarr_explorer.errors import ExplorerError

    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=1)
    _move_fields(root, "B/1")  # read through its own metadata and arrays
    level = root / "B" / "1" / "field-0" / "0"
    values = _own(root, "B/1", "field-0", 0)
    shutil.rmtree(level)
    testing.write_array(level, values, zarr_format=2, chunks=(1, 16, 16))
    (level / "1.2.3").write_bytes(b"not a blosc frame")
    layer = open_layers(url)[0]
    with pytest.warns(ExplorerWarning, match="1.2.3"):
        shown = _tile(layer[0], 0, 1, 0)
    assert not shown[1, 32:48, 48:64].any()  # the fill value, where napari shows it
    np.testing.assert_array_equal(shown[0], values[0])
    out = tmp_path / "saved.ome.zarr"
    with pytest.raises(ExplorerError) as caught:
        save([layer], str(out))
    message = str(caught.value)
    assert "chunk 1.2.3 could not be read" in message and f"{url}/B/1/field-0/0" in message
    assert "Nothing was kept" in message, message
    assert not out.exists()


def test_a_plate_well_chunk_the_server_failed_shows_once_the_server_recovered(
    http_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well read through its own arrays shows a chunk the server failed as the fill value,
    with a warning; once the server recovered, a later read shows the well's real pixels."""
    from napari_zarr_explorer.store import remote

    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    monkeypatch.setattr(remote, "FAILURE_TTL", 0.0)
    monkeypatch.setattr(remote, "_BREAKER_FAILURES", 1000)
    root, url = _plate(http_server, tmp_path, "0.4", rows=2, cols=2, fields=1)
    _move_fields(root, "B/1")  # read through its own metadata and arrays
    level = root / "B" / "1" / "field-0" / "0"
    values = _own(root, "B/1", "field-0", 0)
    shutil.rmtree(level)
    testing.write_array(level, values, zarr_format=2, chunks=(1, 16, 16))
    http_server.fail("plate.zarr/B/1/field-0/0/1.2.3", 500)
    layer = open_layers(url)[0]
    with pytest.warns(ExplorerWarning, match="1.2.3"):
        shown = _tile(layer[0], 0, 1, 0)
    assert not shown[1, 32:48, 48:64].any()  # the fill value, where napari shows it
    np.testing.assert_array_equal(shown[0], values[0])

    http_server.clear_faults()
    np.testing.assert_array_equal(_tile(layer[0], 0, 1, 0), values)
