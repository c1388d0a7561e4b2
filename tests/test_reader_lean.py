"""The first image of a remote OME image without zarr-python (``layers.open_first_image``).

Over the real loopback HTTP server: the lean reader returns exactly what zarr-python reads, for
Zarr v2 and v3, sharded or not, every codec it reads, edge chunks, missing chunks and fill
values, big-endian data; damaged data gives the messages of the ordinary path; anything unusual
is opened by the ordinary path.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer._reader import read_zarr
from napari_zarr_explorer.errors import ExplorerError, ExplorerWarning
from napari_zarr_explorer.layers import _LeanReader, open_layers
from napari_zarr_explorer.pyramid import ChunkReader
from scripts import printed_json, run_python

_AXES = [
    {"name": "z", "type": "space"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def _values(shape: tuple[int, ...], dtype: str, fill: Any, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = rng.normal(100, 30, shape).astype(dt)
    elif dt.kind == "b":
        data = rng.random(shape) > 0.5
    else:
        info = np.iinfo(dt)
        data = rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dt)
    # a region of fill values: those chunks are not stored
    data[:, :20, :20] = False if dt.kind == "b" else (fill if fill is not None else 0)
    return data


def _ome_store(
    root: Path,
    *,
    zarr_format: int,
    dtype: str,
    compressor: Any,
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None = None,
    fill: Any = None,
    separator: str | None = None,
    shape: tuple[int, ...] = (3, 70, 45),
) -> list[np.ndarray]:
    """Write a two-level OME image (0.5 for v3, 0.4 for v2); return the levels' values."""
    base = _values(shape, dtype, fill, seed=1)
    levels = [base, np.ascontiguousarray(base[:, ::2, ::2])]
    for i, data in enumerate(levels):
        if zarr_format == 3 and dtype.startswith(">"):
            _big_endian_v3(root, str(i), data, chunks, shards, fill)
            continue
        testing.write_array(
            root,
            data,
            zarr_format=zarr_format,
            chunks=chunks,
            shards=shards,
            compressor=compressor,
            fill_value=fill,
            separator=separator,
            name=str(i),
        )
    datasets = [
        {
            "path": str(i),
            "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.0**i, 2.0**i]}],
        }
        for i in range(len(levels))
    ]
    ms = {"name": "lean", "axes": _AXES, "datasets": datasets}
    if zarr_format == 3:
        doc = {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "multiscales": [ms]}},
        }
        (root / "zarr.json").write_text(json.dumps(doc))
    else:
        (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (root / ".zattrs").write_text(json.dumps({"multiscales": [{"version": "0.4", **ms}]}))
    return levels


def _big_endian_v3(
    root: Path,
    name: str,
    data: np.ndarray,
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None,
    fill: Any,
) -> None:
    from zarr.codecs import BytesCodec, ZstdCodec

    arr = zarr.create_array(
        zarr.storage.LocalStore(root),
        name=name,
        shape=data.shape,
        dtype=data.dtype.newbyteorder("="),
        chunks=chunks,
        shards=shards,
        serializer=BytesCodec(endian="big"),
        compressors=[ZstdCodec(level=1)],
        fill_value=fill,
        zarr_format=3,
        overwrite=True,
    )
    arr[...] = data


# (zarr_format, dtype, compressor, chunks, shards, fill, separator)
_CASES = {
    "v3-raw": (3, "uint16", None, (1, 16, 16), None, None, None),
    "v3-zstd": (3, "uint16", "zstd:3", (1, 16, 16), None, 7, None),
    "v3-gzip": (3, "int16", "gzip", (2, 32, 16), None, None, "."),
    "v3-blosc": (3, "float32", "blosc", (1, 16, 16), None, "NaN", None),
    "v3-big-endian": (3, ">u2", "zstd:1", (1, 16, 16), None, 3, None),
    "v3-sharded-zstd": (3, "uint16", "zstd:3", (1, 16, 16), (1, 32, 32), 7, None),
    "v3-sharded-raw": (3, "uint8", None, (1, 8, 16), (3, 32, 32), None, None),
    "v3-sharded-gzip": (3, "float64", "gzip", (1, 16, 8), (1, 32, 16), 0.5, None),
    "v3-sharded-blosc": (3, "int32", "blosc", (1, 16, 16), (2, 32, 32), -5, None),
    "v3-sharded-big-endian": (3, ">f4", "zstd:3", (1, 16, 16), (1, 32, 32), None, None),
    "v3-bool": (3, "bool", "zstd:3", (1, 16, 16), None, None, None),
    "v3-missing-shard": (3, "uint16", "zstd:3", (1, 8, 8), (1, 16, 16), 5, None),
    "v2-raw": (2, "<u2", None, (1, 16, 16), None, None, None),
    "v2-zstd": (2, "<u2", "zstd:3", (1, 16, 16), None, 7, None),
    "v2-gzip": (2, "<i2", "gzip", (2, 16, 32), None, 0, "/"),
    "v2-zlib": (2, "<u1", "zlib", (1, 16, 16), None, 0, None),
    "v2-blosc": (2, "<f4", "blosc", (1, 16, 16), None, "NaN", None),
    "v2-big-endian": (2, ">u2", "zstd:3", (1, 16, 16), None, 9, None),
}

#: Regions read: whole level, inside one chunk, across chunk and shard edges, the array's edge.
_REGIONS = [
    (slice(0, 3), slice(0, 70), slice(0, 45)),
    (slice(1, 2), slice(3, 9), slice(2, 7)),
    (slice(0, 3), slice(10, 50), slice(5, 40)),
    (slice(2, 3), slice(30, 70), slice(30, 45)),
    (slice(0, 1), slice(0, 32), slice(0, 32)),
]


def _serve(
    http_server: Any, tmp_path: Path, name: str, *, zarr_format: int = 3, **kw: Any
) -> tuple[str, Path]:
    """An image of :func:`_ome_store` served as *name* (by default zstd, chunks of 1x16x16,
    fill value 0, uint16 little-endian): its URL and the local original."""
    src = tmp_path / name
    defaults = {"compressor": "zstd:3", "chunks": (1, 16, 16), "fill": 0}
    dtype = "uint16" if zarr_format == 3 else "<u2"
    _ome_store(src, **{"zarr_format": zarr_format, "dtype": dtype, **defaults, **kw})
    return http_server.publish(src), src


@pytest.mark.parametrize("case", list(_CASES))
def test_lean_reads_are_exactly_zarrs(http_server, tmp_path: Path, case: str) -> None:
    fmt, dtype, comp, chunks, shards, fill, sep = _CASES[case]
    url, src = _serve(
        http_server,
        tmp_path,
        f"{case}.ome.zarr",
        zarr_format=fmt,
        dtype=dtype,
        compressor=comp,
        chunks=chunks,
        shards=shards,
        fill=fill,
        separator=sep,
    )
    lean_layers = read_zarr(url)
    plain_layers = open_layers(url)
    # the same layer data as the ordinary path: names, scales, metadata...
    assert [(k, t) for _, k, t in lean_layers] == [(k, t) for _, k, t in plain_layers]
    levels = lean_layers[0][0]
    assert all(isinstance(lv.reader, _LeanReader) for lv in levels)
    assert all(type(lv.reader) is ChunkReader for lv in plain_layers[0][0])
    for i, level in enumerate(levels):
        reader = level.reader
        stored = zarr.open_array(src / str(i), mode="r")
        if stored.shards is not None:
            assert reader.lean.shards is not None
        for region in _REGIONS:
            region = tuple(
                slice(min(s.start, n), min(s.stop, n))
                for s, n in zip(region, stored.shape, strict=True)
            )
            # the lean reader itself: it must read these, not hand them to zarr-python
            got = reader.lean.read(reader.image.client, region)
            want = stored[region]
            assert got.dtype == reader.dtype
            assert got.dtype.isnative
            np.testing.assert_array_equal(got, want)
    # and through the layer (the lean reader until zarr-python takes over)
    for lv, pv in zip(levels, plain_layers[0][0], strict=True):
        np.testing.assert_array_equal(np.asarray(lv), np.asarray(pv))


def test_the_cases_cover_what_they_claim(tmp_path: Path) -> None:
    """Big-endian v3 data really has a big-endian ``bytes`` codec; missing chunks are missing."""
    src = tmp_path / "be.ome.zarr"
    _ome_store(src, zarr_format=3, dtype=">u2", compressor="zstd:1", chunks=(1, 16, 16), fill=3)
    doc = json.loads((src / "0" / "zarr.json").read_text())
    assert doc["codecs"][0]["configuration"]["endian"] == "big"
    assert not (src / "0" / "c" / "0" / "0" / "0").exists()  # all fill values: not stored
    assert (src / "0" / "c" / "0" / "2" / "2").exists()
    src = tmp_path / "sbe.ome.zarr"
    _ome_store(
        src, zarr_format=3, dtype=">f4", compressor=None, chunks=(1, 16, 16), shards=(1, 32, 32)
    )
    doc = json.loads((src / "0" / "zarr.json").read_text())
    assert doc["codecs"][0]["configuration"]["codecs"][0]["configuration"]["endian"] == "big"


def _sharded(http_server: Any, tmp_path: Path, name: str) -> tuple[str, Path]:
    return _serve(http_server, tmp_path, name, shards=(1, 32, 32), fill=7)


def _outcome(layers: list[Any], which: int = 0) -> tuple[Any, list[str]]:
    """Every level of layer *which* read (or the error met), and the explorer's warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out: Any = [np.asarray(lv) for lv in layers[which][0]]
        except ExplorerError as exc:
            out = f"{type(exc).__name__}: {exc}"
    return out, sorted(str(w.message) for w in caught if issubclass(w.category, ExplorerWarning))


def _same_outcome(lean: tuple[Any, list[str]], plain: tuple[Any, list[str]]) -> list[str]:
    """Assert two outcomes of :func:`_outcome` are the same; return the warnings."""
    assert lean[1] == plain[1]
    if isinstance(plain[0], str):
        assert lean[0] == plain[0]
    else:
        for a, b in zip(lean[0], plain[0], strict=True):
            np.testing.assert_array_equal(a, b)
    return lean[1]


def _open_both_ways(url: str, *, errors: bool = False) -> tuple[Any, Any, list[str]]:
    """*url* opened lean (``read_zarr``) and the ordinary way, with the same warnings: both
    layer lists (or, when *errors*, the :class:`ExplorerError` raised) and the warnings."""
    opened = []
    for open_ in (read_zarr, open_layers):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                layers: Any = open_(url)
            except ExplorerError as exc:
                if not errors:
                    raise
                layers = exc
        opened.append((layers, [str(w.message) for w in caught]))
    (lean, lean_msgs), (plain, plain_msgs) = opened
    assert lean_msgs == plain_msgs
    return lean, plain, lean_msgs


def _same_error(url: str) -> str:
    """Opening *url* lean fails as the ordinary way does: the message."""
    lean, plain, _msgs = _open_both_ways(url, errors=True)
    assert isinstance(plain, ExplorerError)
    assert type(lean) is type(plain)
    assert str(lean) == str(plain)
    return str(lean)


def _damage(path: Path, *, keep: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    if keep is not None:
        path.write_bytes(bytes(data[:keep]))
        return
    data[0:8] = b"\xff" * 8  # the first inner chunk's zstd header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["chunk", "index"])
def test_damaged_data_gives_the_ordinary_messages(http_server, tmp_path: Path, damage) -> None:
    url, _src = _sharded(http_server, tmp_path, f"{damage}.ome.zarr")
    shard = http_server.root / f"{damage}.ome.zarr" / "0" / "c" / "1" / "1" / "0"
    if damage == "chunk":
        _damage(shard)  # an inner chunk's bytes
    else:
        _damage(shard, keep=shard.stat().st_size - 7)  # the index cut short
    lean_layers = read_zarr(url)
    assert isinstance(lean_layers[0][0][0].reader, _LeanReader)
    with pytest.raises(Exception):  # whatever the decoder says: the lean reader stops
        r = lean_layers[0][0][0].reader
        r.lean.read(r.image.client, (slice(1, 2), slice(32, 64), slice(0, 32)))
    msgs = _same_outcome(_outcome(lean_layers), _outcome(open_layers(url)))
    assert msgs, "the damage must be reported"


def test_unknown_codec_gives_the_ordinary_error(http_server, tmp_path: Path) -> None:
    url, _src = _sharded(http_server, tmp_path, "codec.ome.zarr")
    doc_path = http_server.root / "codec.ome.zarr" / "1" / "zarr.json"
    doc = json.loads(doc_path.read_text())
    doc["codecs"][0]["configuration"]["codecs"][1] = {"name": "no-such-codec"}
    doc_path.write_text(json.dumps(doc))
    assert "no-such-codec" in _same_error(url)


def test_v2_level_saying_another_format_gives_the_ordinary_error(
    http_server, tmp_path: Path
) -> None:
    name = "format.ome.zarr"
    url, _src = _serve(http_server, tmp_path, name, zarr_format=2)
    meta = http_server.root / name / "1" / ".zarray"
    doc = json.loads(meta.read_text())
    doc["zarr_format"] = 3
    meta.write_text(json.dumps(doc))
    assert "zarr_format is 3, expected 2" in _same_error(url)


@pytest.mark.parametrize(
    "change",
    [
        "transpose",
        "order-F",
        "filters",
        "crc32c",
        "hex-fill",
        "bad-fill",
        "gzip-level",
        "compressor-argument",
        "two-multiscales",
    ],
)
def test_unusual_images_are_opened_by_the_ordinary_path(
    http_server, tmp_path: Path, change: str
) -> None:
    fmt = 2 if change in ("order-F", "filters", "compressor-argument") else 3
    name = f"{change}.ome.zarr"
    url, _src = _serve(http_server, tmp_path, name, zarr_format=fmt)
    served = http_server.root / name
    if change == "two-multiscales":
        doc = json.loads((served / "zarr.json").read_text())
        ms = doc["attributes"]["ome"]["multiscales"]
        ms.append(dict(ms[0], name="again"))
        (served / "zarr.json").write_text(json.dumps(doc))
    else:
        for level in ("0", "1"):
            meta = served / level / (".zarray" if fmt == 2 else "zarr.json")
            doc = json.loads(meta.read_text())
            if change == "transpose":
                order = {"order": [0, 1, 2]}
                doc["codecs"].insert(0, {"name": "transpose", "configuration": order})
            elif change == "crc32c":
                doc["codecs"].append({"name": "crc32c"})
            elif change == "hex-fill":
                doc["fill_value"] = "0x0000"
            elif change == "bad-fill":
                doc["fill_value"] = 70000
            elif change == "gzip-level":
                doc["codecs"][1] = {"name": "gzip", "configuration": {"level": 12}}
            elif change == "order-F":
                doc["order"] = "F"
            elif change == "compressor-argument":
                doc["compressor"]["no_such_argument"] = 1
            elif change == "filters":
                doc["filters"] = [{"id": "delta", "dtype": "<u2"}]
            meta.write_text(json.dumps(doc))
    lean_layers, plain_layers, _msgs = _open_both_ways(url, errors=True)
    if isinstance(plain_layers, ExplorerError):
        assert str(lean_layers) == str(plain_layers)
        return
    for (ld, lk, lt), (pd, pk, pt) in zip(lean_layers, plain_layers, strict=True):
        assert (lk, lt) == (pk, pt)
        lv = ld if isinstance(ld, list) else [ld]
        assert not any(isinstance(getattr(x, "reader", None), _LeanReader) for x in lv)
        pv = pd if isinstance(pd, list) else [pd]
        np.testing.assert_array_equal(np.asarray(lv[-1]), np.asarray(pv[-1]))


def test_a_shard_read_whole_is_one_request(http_server, tmp_path: Path) -> None:
    """The lean reader asks what the ordinary path asks: a whole shard at once; else the index
    once and the inner chunks needed."""
    url, _src = _sharded(http_server, tmp_path, "requests.ome.zarr")
    layers = read_zarr(url)
    reader = layers[0][0][0].reader
    http_server.clear_log()
    reader.lean.read(reader.image.client, (slice(0, 1), slice(32, 64), slice(0, 32)))
    assert [(q.path.rsplit("/", 4)[-4:], q.range) for q in http_server.requests] == [
        (["c", "0", "1", "0"], None)
    ]
    http_server.clear_log()
    reader.lean.read(reader.image.client, (slice(1, 2), slice(32, 48), slice(0, 40)))
    paths = sorted(q.path.rsplit("/", 3)[-3:] for q in http_server.requests)
    n_index = sum(1 for q in http_server.requests if q.range and q.range.startswith("bytes=-"))
    assert n_index == 2  # shards (1, 1, 0) and (1, 1, 1), each index once
    assert len(paths) == 2 + 3  # inner chunks (1, 2, 0), (1, 2, 1) and (1, 2, 2)


def test_zarr_takes_over_after_the_first_image_without_asking_twice(
    http_server, tmp_path: Path
) -> None:
    """The first reads are lean; once a read of another level than the coarsest is served,
    zarr-python is imported and reads the rest, finding the shard indexes already read."""
    from collections import Counter

    url, src = _sharded(http_server, tmp_path, "takeover.ome.zarr")
    http_server.clear_log()
    layers = read_zarr(url)
    full, coarse = layers[0][0]
    image = full.reader.image
    np.asarray(coarse[0])  # the contrast limits: lean, zarr-python not started
    assert not image.ready and image.reads == 1
    np.asarray(full[1, 32:48, 0:16])  # the first tile: lean; zarr-python starts
    assert image.reads == 2
    assert full.reader.array is not None  # waits for zarr-python's arrays
    assert image.ready
    got = np.asarray(full[1, 48:64, 0:32])  # the rest of that shard: through zarr-python
    assert image.reads == 2
    np.testing.assert_array_equal(got, zarr.open_array(src / "0", mode="r")[1, 48:64, 0:32])
    counts = Counter((q.path, q.range) for q in http_server.requests)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    index = [q for q in http_server.requests if q.range and q.range.startswith("bytes=-")]
    assert len(index) == 1  # shard (1, 1, 0)'s index, read once by the lean reader


def test_a_v2_array_without_fill_value_leaves_missing_chunks_to_zarr(
    http_server, tmp_path: Path
) -> None:
    from napari_zarr_explorer.store.lean import LeanUnsupported

    url, src = _serve(http_server, tmp_path, "nofill.ome.zarr", zarr_format=2)
    for root in (src, http_server.root / "nofill.ome.zarr"):
        for level in ("0", "1"):
            meta = root / level / ".zarray"
            doc = json.loads(meta.read_text())
            doc["fill_value"] = None
            meta.write_text(json.dumps(doc))
    layers = read_zarr(url)
    full = layers[0][0][0]
    assert isinstance(full.reader, _LeanReader)
    stored = zarr.open_array(src / "0", mode="r")
    region = (slice(0, 1), slice(16, 48), slice(16, 45))  # stored chunks only: read here
    np.testing.assert_array_equal(
        full.reader.lean.read(full.reader.image.client, region), stored[region]
    )
    with pytest.raises(LeanUnsupported):  # a missing chunk: zarr-python's fill value
        full.reader.lean.read(full.reader.image.client, (slice(0, 1), slice(0, 16), slice(0, 16)))
    np.testing.assert_array_equal(np.asarray(full), stored[...])


@pytest.mark.parametrize("case", ["damaged-whole-shard", "damaged-inner-chunks", "v2-no-fill"])
def test_a_read_handed_to_zarr_asks_for_nothing_twice(
    http_server, tmp_path: Path, case: str
) -> None:
    """When a lean read fails (a chunk it cannot decode, a missing chunk whose fill value only
    zarr-python knows), zarr-python reads the region from what the lean read fetched: each
    object and byte range is requested once, and the outcome is the ordinary path's."""
    from collections import Counter

    name = f"{case}.ome.zarr"
    if case == "v2-no-fill":
        url, _src = _serve(http_server, tmp_path, name, zarr_format=2)
        meta = http_server.root / name / "0" / ".zarray"
        doc = json.loads(meta.read_text())
        doc["fill_value"] = None
        meta.write_text(json.dumps(doc))
        region: tuple[Any, ...] = (1, slice(0, 48), slice(0, 45))  # chunk (1, 0, 0) is missing
    else:
        url, _src = _sharded(http_server, tmp_path, name)
        _damage(http_server.root / name / "0" / "c" / "1" / "1" / "0")  # its first inner chunk
        # the whole shard (1, 1, 0) in one request, or its index and two inner chunks
        region = (1, slice(32, 64), slice(0, 32))
        if case == "damaged-inner-chunks":
            region = (1, slice(32, 48), slice(0, 32))
    lean_layers = read_zarr(url)
    full = lean_layers[0][0][0]
    assert isinstance(full.reader, _LeanReader)
    http_server.clear_log()
    lean = _outcome([([full[region]], {}, "image")])
    _settle(lean_layers)
    counts = Counter((q.path, q.range) for q in http_server.requests)
    assert counts, "the region was read from the server"
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert full.reader.image.ready  # zarr-python read it
    plain = _outcome([([open_layers(url)[0][0][0][region]], {}, "image")])
    _same_outcome(lean, plain)
    if case != "v2-no-fill":
        assert lean[1], "the damage is reported"


def test_what_is_kept_for_zarr_is_bounded_in_bytes() -> None:
    """What lean reads fetched is kept for zarr-python's store until it opens, at most
    ``_LEAN_KEEP_BYTES`` (64 MiB): whole shards could be large. Beyond, nothing is kept."""
    from napari_zarr_explorer.layers import _LEAN_KEEP_BYTES, _LeanImage
    from napari_zarr_explorer.store.locate import parse_location

    assert _LEAN_KEEP_BYTES == 64 * 2**20
    image = _LeanImage(parse_location("http://127.0.0.1:9/kept.ome.zarr"), None, [])
    shard = bytes(20 * 2**20)
    for i in range(4):
        image.record(f"0/c/0/0/{i}", None, shard)
    assert image.kept_nbytes == 3 * len(shard)  # the fourth would go beyond
    image.record("0/c/0/1/0", ("suffix", 68), bytes(68))  # a shard index still fits
    image.record("0/c/0/1/1", None, None)  # a missing object costs no byte
    assert image.kept_nbytes == 3 * len(shard) + 68
    image.record("0/c/0/2/0", None, bytes(_LEAN_KEEP_BYTES))
    assert image.kept_nbytes == 3 * len(shard) + 68


def test_what_is_not_kept_for_zarr_is_asked_again(http_server, tmp_path: Path, monkeypatch) -> None:
    """A whole shard beyond the bytes kept for zarr-python is fetched again by it, with the
    ordinary path's outcome; the shard indexes and documents are still asked for once."""
    from collections import Counter

    from napari_zarr_explorer import layers

    monkeypatch.setattr(layers, "_LEAN_KEEP_BYTES", 200)  # a shard index, not a whole shard
    name = "beyond.ome.zarr"
    url, _src = _sharded(http_server, tmp_path, name)
    shard = http_server.root / name / "0" / "c" / "1" / "1" / "0"
    assert shard.stat().st_size > 200
    _damage(shard)  # its first inner chunk: the lean read fails, zarr-python reads it
    lean_layers = read_zarr(url)
    full = lean_layers[0][0][0]
    assert isinstance(full.reader, _LeanReader)
    http_server.clear_log()
    region = (1, slice(32, 64), slice(0, 32))  # the whole shard (1, 1, 0)
    lean = _outcome([([full[region]], {}, "image")])
    _settle(lean_layers)
    counts = Counter((q.path.split(".ome.zarr/", 1)[-1], q.range) for q in http_server.requests)
    assert counts.pop(("0/c/1/1/0", None)) == 2  # by the lean reader, then by zarr-python
    assert not counts or max(counts.values()) == 1, counts
    assert full.reader.image.ready
    plain = _outcome([([open_layers(url)[0][0][0][region]], {}, "image")])
    assert _same_outcome(lean, plain), "the damage is reported"


@pytest.mark.parametrize(
    "fault", ["fail-once", "fail", "not-found", "truncate", "lie", "redirect-away", "reset-once"]
)
def test_server_faults_give_the_ordinary_outcome(http_server, tmp_path: Path, fault) -> None:
    """A fault met by a lean read: the read is done again by zarr-python, with its retries,
    errors and warnings; the outcome is that of the ordinary path."""
    url, _src = _sharded(http_server, tmp_path, f"{fault}.ome.zarr")
    pattern = f"{fault}.ome.zarr/0/c/1/1/0"

    def inject() -> None:
        http_server.clear_faults()
        if fault == "fail-once":
            http_server.fail(pattern, 503, times=1)
        elif fault == "fail":
            http_server.fail(pattern, 500)
        elif fault == "not-found":
            http_server.fail(pattern, 404)
        elif fault == "truncate":
            http_server.truncate(pattern, 10)
        elif fault == "lie":
            http_server.lie_about_length(pattern, 5)
        elif fault == "redirect-away":
            http_server.redirect(pattern, "http://example.invalid/elsewhere")
        else:
            http_server.reset(pattern, times=1)

    lean_layers = read_zarr(url)
    assert isinstance(lean_layers[0][0][0].reader, _LeanReader)
    inject()
    lean = _outcome(lean_layers)
    inject()
    plain = _outcome(open_layers(url))
    http_server.clear_faults()
    _same_outcome(lean, plain)


def _plain_meta(codec: dict[str, Any] | None) -> dict[str, Any]:
    codecs: list[Any] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if codec is not None:
        codecs.append(codec)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [8, 8],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 4]}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": codecs,
    }


def test_chunks_not_declaring_exactly_their_size_are_not_decoded_here() -> None:
    """Bombs, frames without a content size, data after the frame: the lean decoder refuses
    them before decoding past the chunk (zarr-python's guarded path then decides)."""
    import gzip
    import zlib

    import numcodecs
    import zstandard

    from napari_zarr_explorer.store.lean import lean_array

    chunk = np.arange(16, dtype="<u2").tobytes()
    zstd = lean_array(_plain_meta({"name": "zstd"}), 3, "a")
    assert zstd is not None
    np.testing.assert_array_equal(
        zstd.decode(zstandard.ZstdCompressor().compress(chunk)), np.arange(16).reshape(4, 4)
    )
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(chunk)
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (1 << 20))
    for bad in (no_size, bomb, zstandard.ZstdCompressor().compress(chunk) + b"\0\0"):
        with pytest.raises(Exception):
            zstd.decode(bad)
    gz = lean_array(_plain_meta({"name": "gzip"}), 3, "a")
    assert gz is not None
    np.testing.assert_array_equal(gz.decode(gzip.compress(chunk)).ravel(), np.arange(16))
    for bad in (gzip.compress(b"\0" * (1 << 20)), zlib.compress(chunk), gzip.compress(chunk[:-2])):
        with pytest.raises(Exception):
            gz.decode(bad)
    blosc = lean_array(_plain_meta({"name": "blosc"}), 3, "a")
    assert blosc is not None
    packed = numcodecs.Blosc().encode(chunk)
    np.testing.assert_array_equal(blosc.decode(packed).view("<u2").ravel(), np.arange(16))
    with pytest.raises(Exception):
        blosc.decode(numcodecs.Blosc().encode(b"\0" * (1 << 20)))
    raw = lean_array(_plain_meta(None), 3, "a")
    assert raw is not None
    with pytest.raises(Exception):
        raw.decode(chunk + b"\0\0")


# ------------------------------------------------------------------------------------------------
# Images with labels, consolidated metadata


def _labelled(
    http_server: Any,
    tmp_path: Path,
    name: str,
    *,
    version: str = "0.5",
    shards: tuple[int, ...] | None = None,
    two_labels: bool = False,
    compressor: Any = "default",
) -> tuple[str, Path]:
    """An OME image with ``labels/cells`` (colours and properties), served; returns its URL."""
    src = testing.write_ome_image(
        tmp_path / name,
        version=version,
        shape=(2, 3, 64, 48),
        chunks=(1, 1, 16, 16),
        shards=shards,
        levels=2,
        labels=True,
        compressor=compressor,
    )
    cells = src / "labels" / "cells"
    if compressor != "default":  # the label levels too (testing writes them with zarr's default)
        for level in ("0", "1"):
            data = zarr.open_array(cells / level, mode="r")[...]
            testing.write_array(
                cells,
                data,
                zarr_format=3 if version == "0.5" else 2,
                chunks=(1, 16, 16),
                compressor=compressor,
                fill_value=0,
                name=level,
            )
    meta = cells / ("zarr.json" if version == "0.5" else ".zattrs")
    doc = json.loads(meta.read_text())
    attrs = doc["attributes"]["ome"] if version == "0.5" else doc
    attrs["image-label"]["properties"] = [
        {"label-value": 1, "class": "nucleus", "area": 12.5},
        {"label-value": 2, "class": "cytoplasm"},
    ]
    meta.write_text(json.dumps(doc))
    if two_labels:  # a second label image, listed first: the order is the listed one
        shutil.copytree(cells, src / "labels" / "nuclei")
        gmeta = src / "labels" / ("zarr.json" if version == "0.5" else ".zattrs")
        gdoc = json.loads(gmeta.read_text())
        gattrs = gdoc["attributes"]["ome"] if version == "0.5" else gdoc
        gattrs["labels"] = ["nuclei", "cells"]
        gmeta.write_text(json.dumps(gdoc))
    return http_server.publish(src), src


def _levels_of(data: Any) -> list[Any]:
    return list(data) if isinstance(data, list) else [data]


def _assert_same_layers(lean_layers: list[Any], plain_layers: list[Any], *, lean: bool) -> None:
    """Same layers (kwargs with metadata, types, order) and the same pixels at every level."""
    assert [(k, t) for _, k, t in lean_layers] == [(k, t) for _, k, t in plain_layers]
    for (ld, _lk, _lt), (pd, _pk, _pt) in zip(lean_layers, plain_layers, strict=True):
        lv, pv = _levels_of(ld), _levels_of(pd)
        assert all(isinstance(x.reader, _LeanReader) is lean for x in lv)
        for a, b in zip(lv, pv, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("case", ["v3", "v2", "v3-sharded", "v3-two-labels", "v2-two-labels"])
def test_images_with_labels_open_lean(http_server, tmp_path: Path, case: str) -> None:
    url, _src = _labelled(
        http_server,
        tmp_path,
        f"{case}.ome.zarr",
        version="0.4" if case.startswith("v2") else "0.5",
        shards=(1, 1, 32, 32) if case == "v3-sharded" else None,
        two_labels="two" in case,
    )
    lean_layers = read_zarr(url)
    plain_layers = open_layers(url)
    names = ["nuclei", "cells"] if "two" in case else ["cells"]
    assert [k["name"] for _, k, t in lean_layers if t == "labels"] == names
    kwargs = lean_layers[-1][1]
    assert kwargs["colormap"][1] == [1.0, 64 / 255, 64 / 255, 1.0]  # image-label colours
    assert kwargs["metadata"]["label_properties"][0]["class"] == "nucleus"
    _assert_same_layers(lean_layers, plain_layers, lean=True)


@pytest.mark.parametrize("consolidated", [False, True])
def test_labels_ask_for_no_more_than_the_ordinary_path(
    http_server, tmp_path: Path, consolidated: bool
) -> None:
    """The documents of the label images are fetched ahead, each once, and they are the very
    documents the ordinary path asks for (its store reads ahead the same children)."""
    from collections import Counter

    from napari_zarr_explorer._reader import _prefetch

    def run(lean: bool) -> list[tuple[str, str | None]]:
        name = f"req-{lean}.ome.zarr"
        url, src = _labelled(http_server, tmp_path / str(lean), name)
        if consolidated:
            _consolidate(src, "0.5")
            shutil.rmtree(http_server.root / name)
            shutil.copytree(src, http_server.root / name)
        http_server.clear_log()
        if lean:
            layers = read_zarr(url)
            assert isinstance(layers[-1][0][0].reader, _LeanReader)
        else:
            assert _prefetch(url)
            layers = open_layers(url)
        for data, _k, _t in layers:
            np.asarray(_levels_of(data)[-1])
            np.asarray(_levels_of(data)[0])
        _settle(layers)  # the ordinary store's reads ahead run in the background
        return [(q.path.split(".ome.zarr/", 1)[-1], q.range) for q in http_server.requests]

    lean, plain = run(True), run(False)
    counts = Counter(lean)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    docs = {p for p, _ in lean if p.rpartition("/")[2] in ("zarr.json", ".zarray", ".zattrs")}
    plain_docs = {p for p, _ in plain if p.rpartition("/")[2] in ("zarr.json",)}
    if consolidated:  # the root only: every other node is in its consolidated metadata
        assert docs == {"zarr.json"}
        assert len(lean) < len(plain)
    else:
        assert docs == plain_docs
        assert len(lean) <= len(plain)


def _settle(layers: list[Any], bound: float = 120.0) -> None:
    """Wait until the background work of *layers* is over: zarr-python being opened for the
    lean readers, the reads ahead of their store and the requests of its HTTP client (answers
    fetched ahead included). *bound* only stops a test that would otherwise hang."""
    for data, _kwargs, _kind in layers:
        for level in _levels_of(data):
            reader = level.reader
            if isinstance(reader, _LeanReader):
                image = reader.image
                assert image.join(bound), "zarr-python's arrays were never built"
                assert image.client.wait_idle(bound), "a request never ended"
                if not image.ready:
                    continue  # no zarr-python: no store, nothing else in the background
            assert reader.array.store.wait_idle(bound), "a read ahead never ended"


def _consolidate(src: Path, version: str) -> None:
    zarr.consolidate_metadata(str(src), zarr_format=3 if version == "0.5" else 2)
    if version == "0.5":
        assert "consolidated_metadata" in json.loads((src / "zarr.json").read_text())
    else:
        assert (src / ".zmetadata").is_file()


@pytest.mark.parametrize("version", ["0.5", "0.4"])
@pytest.mark.parametrize("disagree", [False, True])
def test_consolidated_metadata_opens_lean(
    http_server, tmp_path: Path, version: str, disagree: bool
) -> None:
    """Consolidated metadata (v3 inline, v2 ``.zmetadata``): every node but the root comes from
    the consolidated copy, as on the ordinary path, even when the real documents differ."""
    name = f"cons-{version}-{disagree}.ome.zarr"
    url, src = _labelled(http_server, tmp_path, name, version=version)
    _consolidate(src, version)
    served = http_server.root / name
    shutil.rmtree(served)
    shutil.copytree(src, served)
    if disagree:
        # the real documents say otherwise: another colour, another fill value
        cells = served / "labels" / "cells" / ("zarr.json" if version == "0.5" else ".zattrs")
        doc = json.loads(cells.read_text())
        attrs = doc["attributes"]["ome"] if version == "0.5" else doc
        attrs["image-label"]["colors"][0]["rgba"] = [0, 0, 0, 255]
        cells.write_text(json.dumps(doc))
        level = served / "1" / ("zarr.json" if version == "0.5" else ".zarray")
        ldoc = json.loads(level.read_text())
        ldoc["fill_value"] = 3
        level.write_text(json.dumps(ldoc))
    http_server.clear_log()
    lean_layers = read_zarr(url)
    plain_layers = open_layers(url)
    assert lean_layers[-1][1]["colormap"][1] == [1.0, 64 / 255, 64 / 255, 1.0]  # consolidated
    _assert_same_layers(lean_layers, plain_layers, lean=True)


def test_a_label_image_the_lean_reader_cannot_read_opens_all_ordinarily(
    http_server, tmp_path: Path
) -> None:
    """One label level with a ``transpose`` codec: the whole image is opened by the ordinary
    path (its layers, warnings and pixels), not the image lean and the labels through zarr."""
    url, _src = _labelled(http_server, tmp_path, "odd-label.ome.zarr")
    level = http_server.root / "odd-label.ome.zarr" / "labels" / "cells" / "1" / "zarr.json"
    doc = json.loads(level.read_text())
    doc["codecs"].insert(0, {"name": "transpose", "configuration": {"order": [0, 1, 2]}})
    level.write_text(json.dumps(doc))
    lean_layers, plain_layers, _msgs = _open_both_ways(url)
    assert [t for _, _, t in lean_layers] == ["image", "labels"]
    _assert_same_layers(lean_layers, plain_layers, lean=False)


@pytest.mark.parametrize("problem", ["missing-label-image", "float-labels"])
def test_labels_the_ordinary_path_warns_about_open_ordinarily(
    http_server, tmp_path: Path, problem: str
) -> None:
    url, _src = _labelled(http_server, tmp_path, f"{problem}.ome.zarr")
    served = http_server.root / f"{problem}.ome.zarr"
    if problem == "missing-label-image":
        gmeta = served / "labels" / "zarr.json"
        gdoc = json.loads(gmeta.read_text())
        gdoc["attributes"]["ome"]["labels"] = ["cells", "gone"]
        gmeta.write_text(json.dumps(gdoc))
    else:
        shutil.rmtree(served / "labels" / "cells")
        shutil.copytree(served / "0", served / "labels" / "cells" / "0")
        shutil.copytree(served / "1", served / "labels" / "cells" / "1")
        src_doc = json.loads((_src / "labels" / "cells" / "zarr.json").read_text())
        src_doc["attributes"]["ome"]["multiscales"][0]["axes"] = json.loads(
            (served / "zarr.json").read_text()
        )["attributes"]["ome"]["multiscales"][0]["axes"]
        for i in ("0", "1"):
            ldoc = json.loads((served / i / "zarr.json").read_text())
            ldoc["data_type"] = "float32"
            ldoc["fill_value"] = 0.0
            (served / "labels" / "cells" / i / "zarr.json").write_text(json.dumps(ldoc))
        (served / "labels" / "cells" / "zarr.json").write_text(json.dumps(src_doc))
    lean_layers, plain_layers, msgs = _open_both_ways(url)
    assert msgs, "the ordinary path warns about this image"
    assert [(k, t) for _, k, t in lean_layers] == [(k, t) for _, k, t in plain_layers]
    assert not isinstance(_levels_of(lean_layers[0][0])[0].reader, _LeanReader)


def test_a_damaged_label_chunk_gives_the_ordinary_messages(http_server, tmp_path: Path) -> None:
    url, _src = _labelled(http_server, tmp_path, "bad-label.ome.zarr", shards=(1, 1, 32, 32))
    cells = http_server.root / "bad-label.ome.zarr" / "labels" / "cells"
    shard = cells / "0" / "c" / "1" / "1" / "0"
    _damage(shard)
    lean_layers = read_zarr(url)
    assert isinstance(lean_layers[-1][0][0].reader, _LeanReader)
    msgs = _same_outcome(_outcome(lean_layers, -1), _outcome(open_layers(url), -1))
    assert any("labels/cells/0" in m for m in msgs), msgs


_FIRST_LABELLED_IMAGE = r"""
import json, sys
import numpy as np
from napari_zarr_explorer._reader import napari_get_reader
heavy = ("zarr", "numcodecs", "fsspec", "aiohttp")
url = sys.argv[1]
layers = napari_get_reader(url)(url)
seen = {"open": sorted(m for m in heavy if m in sys.modules)}
sums = []
for data, kwargs, kind in layers:  # each layer's coarsest plane (contrast limits, labels)
    coarse = data[-1]
    sums.append(int(np.asarray(coarse[..., coarse.shape[-2] // 2, :]).sum()))
seen["first image"] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"sums": sums, "seen": seen, "kinds": [k for _, _, k in layers],
                  "lean": [type(d[0].reader).__name__ for d, _, _ in layers]}))
"""


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_zarr_is_not_imported_before_the_first_image_with_labels(
    http_server, tmp_path: Path, version: str
) -> None:
    # zstd: blosc would import numcodecs' blosc extension (and numcodecs) for the first reads
    url, src = _labelled(
        http_server, tmp_path, "lab.ome.zarr", version=version, compressor="zstd:3"
    )
    result = printed_json(run_python(_FIRST_LABELLED_IMAGE, url))
    assert result["kinds"] == ["image", "labels"]
    assert result["lean"] == ["_LeanReader", "_LeanReader"]
    assert result["seen"] == {"open": [], "first image": []}
    local = open_layers(str(src))
    assert result["sums"] == [
        int(np.asarray(d[-1][..., d[-1].shape[-2] // 2, :]).sum()) for d, _, _ in local
    ]


def _write_by(tool: str, path: Path, version: str) -> None:
    """An image as ngff-zarr (consolidated metadata, no labels) or ome-zarr-py (with labels)
    writes it."""
    data = np.random.default_rng(3).integers(0, 1000, (2, 64, 48), dtype=np.uint16)
    if tool == "ngff-zarr":
        import ngff_zarr as nz

        image = nz.to_ngff_image(data, dims=["c", "y", "x"])
        nz.to_ngff_zarr(str(path), nz.to_multiscales(image, scale_factors=[2]), version=version)
        return
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    write_image(data, root, axes="cyx", fmt=fmt)
    colors = [{"label-value": 1, "rgba": [255, 0, 0, 255]}]
    labels = (data[0] > 500).astype(np.uint8)
    write_labels(labels, root, name="cells", axes="yx", fmt=fmt, label_metadata={"colors": colors})


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("tool", ["ngff-zarr", "ome-zarr-py"])
def test_images_written_by_ngff_zarr_and_ome_zarr_py_open_lean(
    http_server, tmp_path: Path, tool: str, version: str
) -> None:
    """What these writers make opens lean, with the ordinary path's layers, asking for no
    document twice and for no more than the ordinary path asks."""
    from collections import Counter

    from napari_zarr_explorer._reader import _prefetch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' own warnings
        _write_by(tool, tmp_path / "img.ome.zarr", version)
    logs = []
    for lean in (True, False):
        name = f"{tool}-{version}-{lean}.ome.zarr"
        url = http_server.publish(tmp_path / "img.ome.zarr", name)
        http_server.clear_log()
        if lean:
            layers = read_zarr(url)
        else:
            assert _prefetch(url)
            layers = open_layers(url)
        for data, _k, _t in layers:
            np.asarray(_levels_of(data)[-1])
        _settle(layers)  # the ordinary store's reads ahead run in the background
        logs.append([(q.path.split(".ome.zarr/", 1)[-1], q.range) for q in http_server.requests])
        if lean:
            lean_layers, lean_url = layers, url
    _assert_same_layers(lean_layers, open_layers(lean_url), lean=True)
    if tool == "ome-zarr-py":
        assert [t for _, _, t in lean_layers] == ["image", "labels"]
    counts = Counter(logs[0])
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert len(logs[0]) <= len(logs[1])


# ------------------------------------------------------------------------------------------------
# When the lean path applies: the reader fetching ahead and the lean opening agree

#: (what the user opens, made from the served image's ``url`` and local ``src``; environment;
#: whether the lean path applies)
_WHEN_LEAN: dict[str, tuple[str, dict[str, str], bool]] = {
    "remote-image": ("{url}", {}, True),
    "options-from-environment": (
        "{url}",
        {"NZE_REMOTE_TIMEOUT": "7", "NZE_REMOTE_CONCURRENCY": "3", "NZE_REMOTE_RETRIES": "1"},
        True,
    ),
    "read-ahead-off": ("{url}", {"NZE_REMOTE_READ_AHEAD": "0"}, False),
    "invalid-option": ("{url}", {"NZE_REMOTE_TIMEOUT": "soon"}, False),
    "local-store": ("{src}", {}, False),
    "file-url": ("file://{src}", {}, False),
    "query-string": ("{url}?token=1", {}, False),
    "user-name": ("{user_url}", {}, False),
    "n5-container": ("{n5_url}", {}, False),
}


@pytest.mark.parametrize("case", list(_WHEN_LEAN))
def test_fetching_ahead_and_the_lean_path_apply_together(
    http_server, tmp_path: Path, monkeypatch, case: str
) -> None:
    """The reader fetches the metadata ahead exactly when the first image can then open lean,
    and the lean opening refuses what the reader does not fetch ahead for, even when another
    caller fetched it ahead: one rule decides both (a change to one side cannot silently
    switch the fast path off, nor on where the store would not use the lean client)."""
    from napari_zarr_explorer._reader import _prefetch
    from napari_zarr_explorer.layers import open_first_image
    from napari_zarr_explorer.store import _http
    from napari_zarr_explorer.store.locate import parse_location

    form, env, lean = _WHEN_LEAN[case]
    url, src = _serve(http_server, tmp_path, "when.ome.zarr")
    n5_url = http_server.publish(src, "when.n5")
    target = form.format(
        url=url, src=src, user_url=url.replace("://", "://someone@", 1), n5_url=n5_url
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    remote = target.startswith("http")
    base = parse_location(target).url if remote else ""
    try:
        started = _prefetch(target)
        layers = open_first_image(target)
        assert started is lean
        assert (layers is not None) is lean
        if layers is not None:
            assert all(isinstance(lv.reader, _LeanReader) for lv in layers[0][0])
        if remote and not lean and "?" not in target:
            # fetched ahead by someone else, with the options the store would use: still not lean
            client = _http.prefetch(base, timeout=10.0, max_connections=64, limit=2**20)
            assert client is not None
            assert open_first_image(target) is None
    finally:
        if remote:
            leftover = _http.take_prefetched(base, {})
            if leftover is not None:
                leftover.close()
