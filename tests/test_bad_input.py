"""Bad input: a clear error, nothing lost, nothing executed. Every store is built here."""

from __future__ import annotations

import functools
import json
import pickle
import shutil
import warnings
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr

from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer.errors import (
    CodecError,
    ExplorerWarning,
    LimitError,
    MetadataError,
    PathEscapeError,
    UnsafeDataError,
)
from napari_zarr_explorer.layers import open_layers

VALUES = np.arange(40 * 40, dtype="uint16").reshape(40, 40) + 1


def only(layers):
    assert len(layers) == 1
    return layers[0]


# ---------------------------------------------------------------- corrupt JSON metadata


@pytest.mark.parametrize("name", [".zarray", ".zgroup", ".zattrs", "zarr.json"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_metadata_names_file_and_problem(tmp_path: Path, name: str, damage: str) -> None:
    if name == ".zarray":
        path = testing.write_array(tmp_path / "s.zarr", VALUES, zarr_format=2)
    elif name == "zarr.json":
        path = testing.write_array(tmp_path / "s.zarr", VALUES, zarr_format=3)
    else:
        path = testing.write_ome_image(
            tmp_path / "s.zarr", version="0.4", shape=(8, 8), axes="yx", levels=1
        )
    target = path / name
    text = target.read_text()
    target.write_text(text[: len(text) // 2] if damage == "truncate" else "{not json at all")
    with pytest.raises(MetadataError) as info:
        open_layers(path)
    msg = str(info.value)
    assert str(target) in msg
    assert "invalid JSON" in msg and "line" in msg and "column" in msg


def test_corrupt_child_metadata_in_ome_image(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "s.zarr", version="0.5", shape=(16, 16), axes="yx", levels=2
    )
    (path / "1" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array", ')
    with pytest.raises(MetadataError, match=r"1/zarr\.json: invalid JSON"):
        open_layers(path)


# ---------------------------------------------------------------- unknown codecs


@pytest.mark.parametrize(
    ("codec", "package"), [("imagecodecs_jpegxl_fake", "imagecodecs"), ("mystery", "")]
)
def test_unknown_codec_names_codec_and_package(tmp_path: Path, codec: str, package) -> None:
    path = testing.write_array(tmp_path / "s.zarr", VALUES, zarr_format=2, chunks=(10, 10))
    md = json.loads((path / ".zarray").read_text())
    md["compressor"] = {"id": codec}
    (path / ".zarray").write_text(json.dumps(md))
    with pytest.raises(CodecError) as info:
        open_layers(path)
    message = str(info.value)
    assert repr(codec) in message
    if package == "":  # no package is known to provide it: no advice to install anything
        assert "pip install" not in message
        assert "lacks" in message
    else:
        assert f"pip install {package}" in message


def _zfpy_available() -> bool:
    try:
        numcodecs.get_codec({"id": "zfpy", "mode": 4})
    except Exception:  # not registered, or the zfpy package is missing or broken
        return False
    return True


def test_zfpy_store_opens_with_its_values_or_names_the_package(tmp_path: Path) -> None:
    """A real zfpy-compressed store: its exact values when zfpy works, else a clear CodecError."""
    data = (np.arange(40 * 40, dtype="float64").reshape(40, 40) / 7).astype("float32")
    path = testing.write_array(tmp_path / "s.zarr", data, zarr_format=2, chunks=(10, 10))
    md = json.loads((path / ".zarray").read_text())
    md["compressor"] = {"id": "zfpy", "mode": 4, "tolerance": -1, "rate": -1, "precision": -1}
    md["filters"] = None
    (path / ".zarray").write_text(json.dumps(md))
    if not _zfpy_available():
        with pytest.raises(CodecError) as info:
            open_layers(path)
        assert "'zfpy'" in str(info.value) and "pip install zfpy" in str(info.value)
        return
    codec = numcodecs.get_codec(md["compressor"])  # reversible mode: lossless
    for key in [p.name for p in path.iterdir() if not p.name.startswith(".")]:
        i, j = (int(k) for k in key.split("."))
        block = np.ascontiguousarray(data[i * 10 : (i + 1) * 10, j * 10 : (j + 1) * 10])
        (path / key).write_bytes(codec.encode(block))
    (data_out, _, _) = only(open_layers(path))
    np.testing.assert_array_equal(np.asarray(data_out), data)


def test_unknown_v3_codec(tmp_path: Path) -> None:
    path = testing.write_array(tmp_path / "s.zarr", VALUES, zarr_format=3, chunks=(10, 10))
    md = json.loads((path / "zarr.json").read_text())
    md["codecs"].append({"name": "numcodecs.imagecodecs_brunsli_fake"})
    (path / "zarr.json").write_text(json.dumps(md))
    with pytest.raises(CodecError, match=r"imagecodecs_brunsli_fake.*pip install imagecodecs"):
        open_layers(path)


# ---------------------------------------------------------------- broken chunks


def _first_chunk(path: Path, key: str) -> Path:
    return path / key


@pytest.mark.parametrize(
    ("fmt", "kwargs", "key"),
    [
        (2, {"compressor": numcodecs.Blosc("lz4")}, "1.2"),
        (2, {"compressor": numcodecs.Zstd()}, "1.2"),
        (3, {"compressor": "zstd"}, "c/1/2"),
        (3, {"compressor": "gzip"}, "c/1/2"),
    ],
    ids=["v2-blosc", "v2-zstd", "v3-zstd", "v3-gzip"],
)
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_bad_chunk_shows_fill_and_warns_once(
    tmp_path: Path, fmt: int, kwargs: dict, key: str, damage: str
) -> None:
    path = testing.write_array(
        tmp_path / "s.zarr", VALUES, zarr_format=fmt, chunks=(10, 10), fill_value=0, **kwargs
    )
    chunk = path / key
    raw = chunk.read_bytes()
    chunk.write_bytes(raw[: len(raw) // 3] if damage == "truncate" else b"\x00garbage" * 3)
    data, _, _ = only(open_layers(path))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        first = np.asarray(data)
        again = np.asarray(data[5:35, 5:35])  # a redraw over the bad chunk
        np.asarray(data)
    msgs = [str(w.message) for w in rec if issubclass(w.category, ExplorerWarning)]
    assert len(msgs) == 1, msgs
    assert f"chunk {key} " in msgs[0] and "fill value 0" in msgs[0]
    expected = VALUES.copy()
    expected[10:20, 20:30] = 0
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(again, expected[5:35, 5:35])


def test_bad_inner_chunk_of_shard(tmp_path: Path) -> None:
    path = testing.write_array(
        tmp_path / "s.zarr",
        VALUES,
        zarr_format=3,
        chunks=(10, 10),
        shards=(20, 20),
        compressor="zstd",
    )
    shard = path / "c" / "0" / "1"
    raw = bytearray(shard.read_bytes())
    raw[5:25] = b"\xff" * 20  # damage the first inner chunk's bytes, keep the index
    shard.write_bytes(bytes(raw))
    data, _, _ = only(open_layers(path))
    with pytest.warns(ExplorerWarning, match=r"chunk c/0/1 \(inner chunk"):
        out = np.asarray(data)
    bad = out[0:20, 20:40] != VALUES[0:20, 20:40]
    assert bad.any() and (out[0:20, 20:40][bad] == 0).all()
    np.testing.assert_array_equal(out[20:], VALUES[20:])
    np.testing.assert_array_equal(out[:, :20], VALUES[:, :20])


# ---------------------------------------------------------------- pickle and objects


class _Trap:
    """Unpickling this would create a file: proof that code from data ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (self.sentinel.touch, ())


def _trap_bytes(sentinel: Path) -> bytes:
    return pickle.dumps(_Trap(sentinel))


@pytest.mark.parametrize(
    "where",
    ["v2-compressor", "v2-filter", "v2-object-dtype", "v3-codec", "v3-sharded"],
)
def test_pickle_refused_nothing_runs(tmp_path: Path, where: str) -> None:
    sentinel = tmp_path / "EXECUTED"
    store = tmp_path / "s.zarr"
    fmt = 3 if where.startswith("v3") else 2
    testing.write_array(store, VALUES, zarr_format=fmt, chunks=(40, 40), compressor=None)
    mdfile = store / (".zarray" if fmt == 2 else "zarr.json")
    md = json.loads(mdfile.read_text())
    if where == "v2-compressor":
        md["compressor"] = {"id": "pickle", "protocol": 4}
    elif where == "v2-filter":
        md["filters"] = [{"id": "pickle", "protocol": 4}]
    elif where == "v2-object-dtype":
        md["dtype"] = "|O"
        md["filters"] = [{"id": "pickle"}]
    elif where == "v3-codec":
        md["codecs"] = [{"name": "bytes"}, {"name": "numcodecs.pickle"}]
    else:
        md["codecs"] = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [20, 20],
                    "codecs": [{"name": "bytes"}, {"name": "numcodecs.pickle"}],
                },
            }
        ]
    mdfile.write_text(json.dumps(md))
    for chunk in [p for p in store.rglob("*") if p.is_file() and p.name[0] in "0c"]:
        chunk.write_bytes(_trap_bytes(sentinel))
    if fmt == 3:
        (store / "c" / "0").mkdir(parents=True, exist_ok=True)
        (store / "c" / "0" / "0").write_bytes(_trap_bytes(sentinel))
    with pytest.raises(UnsafeDataError, match="refused") as info:
        open_layers(store)
    assert "pickle" in str(info.value) or "objects" in str(info.value)
    assert not sentinel.exists()


# ---------------------------------------------------------------- paths leaving the store


@pytest.mark.parametrize(
    "bad",
    [
        "../outside",
        "/etc",
        "file:///etc",
        "http://example.org/x",
        "0/../../outside",
        "C:/x",
        "a\\..\\b",
    ],
)
def test_dataset_paths_outside_the_store_are_refused(tmp_path: Path, bad: str) -> None:
    testing.write_array(tmp_path / "outside", VALUES)  # a real array that must not be read
    path = testing.write_ome_image(
        tmp_path / "img.zarr", version="0.4", shape=(16, 16), axes="yx", levels=1
    )
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"][0]["path"] = bad
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(PathEscapeError, match="refused"):
        open_layers(path)


def test_one_escaping_level_is_dropped_with_warning(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "img.zarr", version="0.5", shape=(32, 32), axes="yx", levels=2
    )
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"][1]["path"] = "../../secret"
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.warns(ExplorerWarning, match=r"level '\.\./\.\./secret' refused"):
        data, kwargs, _ = only(open_layers(path))
    assert kwargs["metadata"]["level_paths"] == ["0"]
    assert data.shape == (32, 32)


def test_labels_paths_outside_are_refused(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "img.zarr", version="0.4", shape=(16, 16), axes="yx", levels=1, labels=True
    )
    (path / "labels" / ".zattrs").write_text(json.dumps({"labels": ["../../x", "/abs"]}))
    with pytest.warns(ExplorerWarning, match="skipped"):
        layers = open_layers(path)
    assert [t for _, _, t in layers] == ["image"]


# ---------------------------------------------------------------- absurd sizes


def test_absurd_shape_is_cheap_and_tiles_read(tmp_path: Path) -> None:
    zarr.create_array(
        str(tmp_path / "a.zarr"),
        shape=(10**9, 10**9),
        chunks=(512, 512),
        dtype="uint16",
        zarr_format=2,
    )
    data, _, _ = only(open_layers(tmp_path / "a.zarr"))
    assert data.size == 10**18
    assert data.chunks == (512, 512)  # napari reads whole stored chunks, nothing more
    assert not np.asarray(data[10**8 : 10**8 + 300, 5:700]).any()
    with pytest.raises(LimitError, match="NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES"):
        np.asarray(data[0:100_000, 0:100_000])


def test_huge_chunk_raises_limit_error_before_decoding(tmp_path: Path) -> None:
    # a chunk declared 4 GiB; its stored bytes are tiny
    path = tmp_path / "bomb.zarr"
    path.mkdir()
    (path / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [65536, 65536],
                "chunks": [65536, 65536],
                "dtype": "|u1",
                "compressor": {"id": "zstd", "level": 1},
                "filters": None,
                "fill_value": 0,
                "order": "C",
            }
        )
    )
    (path / "0.0").write_bytes(numcodecs.Zstd(1).encode(b"\x00" * 1024))
    data, _, _ = only(open_layers(path))
    with pytest.raises(LimitError) as info:
        np.asarray(data[0:10, 0:10])
    msg = str(info.value)
    assert "4.0 GiB" in msg and "1.0 GiB" in msg and "NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES" in msg


def test_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    testing.write_array(tmp_path / "a.zarr", VALUES, chunks=(20, 20))
    data, _, _ = only(open_layers(tmp_path / "a.zarr"))
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES", "1000")
    with pytest.raises(LimitError, match="1000 B"):
        np.asarray(data[15:25, 15:25])  # 2 x 2 chunks of 800 bytes
    np.asarray(data[:5, :5])  # one chunk is within the limit
    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_MAX_CHUNK_BYTES", "1M")
    np.testing.assert_array_equal(np.asarray(data), VALUES)
    assert pyramid.max_chunk_bytes() == 1 << 20


# ---------------------------------------------------------------- bad OME metadata


def test_missing_level_opens_the_others(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(2, 32, 32), axes="cyx", levels=3
    )
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"].insert(
        1, {"path": "nope", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}
    )
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.warns(ExplorerWarning, match=r"level 'nope' does not exist"):
        data, kwargs, _ = only(open_layers(path))
    assert kwargs["metadata"]["level_paths"] == ["0", "1", "2"]
    assert len(data) == 3


def test_missing_level_zero_keeps_its_own_scale(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(32, 32), axes="yx", levels=2
    )
    import shutil

    shutil.rmtree(path / "0")
    with pytest.warns(ExplorerWarning, match="level '0' does not exist"):
        data, kwargs, _ = only(open_layers(path))
    assert data.shape == (16, 16)
    assert kwargs["scale"] == (1.0, 1.0)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda ms: ms.update(axes="yx"), "'axes' must be a list"),
        (lambda ms: ms.update(name=["x"]), "'name' must be a string"),
        (
            lambda ms: ms["datasets"][0].update(coordinateTransformations={"scale": 1}),
            "must be a list",
        ),
        (
            lambda ms: ms["datasets"][0]["coordinateTransformations"][0].update(scale="big"),
            "finite numbers",
        ),
        (lambda ms: ms["axes"][0].update(unit=5), "unit must be a string"),
    ],
    ids=["axes", "name", "transforms", "scale", "unit"],
)
def test_wrong_json_types_open_with_warning(tmp_path: Path, mutate, needle: str) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(32, 32), axes="yx", levels=2
    )
    attrs = json.loads((path / ".zattrs").read_text())
    mutate(attrs["multiscales"][0])
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.warns(ExplorerWarning, match="not valid but was used") as rec:
        data, kwargs, _ = only(open_layers(path))
    assert any(needle in str(w.message) for w in rec)
    assert kwargs["multiscale"] is True and data[0].shape == (32, 32)


@pytest.mark.parametrize(
    "multiscales",
    ["garbage", [], [{"datasets": "0"}], [{"datasets": [{"path": "x"}, {"path": "y"}]}], [42]],
    ids=["string", "empty", "datasets-str", "all-missing", "number"],
)
def test_unusable_ome_falls_back_to_plain_arrays(tmp_path: Path, multiscales) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(32, 32), axes="yx", levels=2
    )
    (path / ".zattrs").write_text(json.dumps({"multiscales": multiscales}))
    with pytest.warns(ExplorerWarning, match="opened plainly"):
        _data, kwargs, _ = only(open_layers(path))
    assert kwargs["metadata"]["level_paths"] == ["0", "1"]  # still a pyramid


def test_omero_channel_count_mismatch(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(3, 16, 16), axes="cyx", levels=1
    )
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["omero"]["channels"] = attrs["omero"]["channels"][:1]
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.warns(ExplorerWarning, match="omero lists 1 channels for 3"):
        _, kwargs, _ = only(open_layers(path))
    assert len(kwargs["name"]) == 3 and len(kwargs["colormap"]) == 3


def test_axes_count_mismatch_inferred(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(2, 16, 16), axes="cyx", levels=1
    )
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["multiscales"][0]["axes"] = attrs["multiscales"][0]["axes"][1:]
    (path / ".zattrs").write_text(json.dumps(attrs))
    with pytest.warns(ExplorerWarning, match="2 axes are declared for 3-dimensional data"):
        data, kwargs, _ = only(open_layers(path))
    assert kwargs["axis_labels"] == ("z", "y", "x") and data.shape == (2, 16, 16)


def test_plate_with_broken_well(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "p.zarr", version="0.4", rows=1, cols=2, fields=1)
    level = path / "A" / "2" / "0" / "0"
    # wells are read with the first well's layout and checked when that finds nothing: with its
    # chunks gone too, the broken metadata is read, and the well is shown empty with a warning
    for child in level.iterdir():
        if child.name != ".zarray":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    (level / ".zarray").write_text("{broken")
    data, _, _ = only(open_layers(path))
    with pytest.warns(ExplorerWarning, match=r"well 'A/2' is shown empty"):
        out = np.asarray(data[0])
    assert out[:, :, :64].any() and not out[:, :, 64:].any()


# ---------------------------------------------------------------- decompression bombs


def _zstd_rle_bomb(nbytes: int, *, declare_size: bool) -> bytes:
    """A valid zstd frame of RLE blocks that decompresses to *nbytes* from a few KiB."""
    import struct

    block = 1 << 17
    n = -(-nbytes // block)
    if declare_size:
        header = struct.pack("<I", 0xFD2FB528) + bytes([0xE0]) + struct.pack("<Q", n * block)
    else:
        header = struct.pack("<I", 0xFD2FB528) + bytes([0x00, 7 << 3])
    body = b"".join(
        ((block << 3) | (1 << 1) | (i == n - 1)).to_bytes(3, "little") + b"\x07" for i in range(n)
    )
    return header + body


@functools.cache
def _bombs() -> dict[str, tuple[int, dict, str, bytes]]:
    import zlib

    zeros = b"\x00" * (8 << 20)  # far beyond the 200-byte chunks (and the 1 MiB slack)
    return {
        "v2-zstd-declared": (
            2,
            {"compressor": numcodecs.Zstd()},
            "0.0",
            _zstd_rle_bomb(64 << 20, declare_size=True),
        ),
        "v2-zstd-streamed": (
            2,
            {"compressor": numcodecs.Zstd()},
            "0.0",
            _zstd_rle_bomb(64 << 20, declare_size=False),
        ),
        "v2-blosc": (
            2,
            {"compressor": numcodecs.Blosc("lz4")},
            "0.0",
            numcodecs.Blosc("lz4").encode(zeros),
        ),
        "v2-gzip": (2, {"compressor": numcodecs.GZip(1)}, "0.0", numcodecs.GZip(9).encode(zeros)),
        "v2-zlib": (2, {"compressor": numcodecs.Zlib(1)}, "0.0", zlib.compress(zeros, 9)),
        "v2-bz2": (2, {"compressor": numcodecs.BZ2(1)}, "0.0", numcodecs.BZ2(9).encode(zeros)),
        "v2-lz4": (2, {"compressor": numcodecs.LZ4()}, "0.0", numcodecs.LZ4().encode(zeros)),
        "v3-zstd": (
            3,
            {"compressor": "zstd"},
            "c/0/0",
            _zstd_rle_bomb(64 << 20, declare_size=True),
        ),
        "v3-gzip": (3, {"compressor": "gzip"}, "c/0/0", numcodecs.GZip(9).encode(zeros)),
        "v3-sharded-zstd": (
            3,
            {"compressor": "zstd", "shards": (20, 20)},
            None,
            _zstd_rle_bomb(64 << 20, declare_size=False),
        ),
    }


BOMBS = list(_bombs())


@pytest.mark.parametrize("case", BOMBS)
def test_decompression_bombs_are_refused(tmp_path: Path, case: str) -> None:
    fmt, kwargs, key, bomb = _bombs()[case]
    path = testing.write_array(
        tmp_path / "s.zarr", VALUES, zarr_format=fmt, chunks=(10, 10), fill_value=0, **kwargs
    )
    if key is None:  # a sharded array: put the bomb inside the first shard, as inner chunk 0
        import struct

        from crc32c import crc32c

        shard = path / "c" / "0" / "0"
        raw = shard.read_bytes()
        index = raw[-(4 * 16 + 4) : -4]  # 2 x 2 inner chunks, (offset, nbytes) each, + crc32c
        entries = list(struct.unpack("<8Q", index))
        body = bytearray(bomb)
        new_entries = [0, len(bomb)]
        for i in range(1, 4):
            off, nb = entries[2 * i], entries[2 * i + 1]
            new_entries += [len(body), nb]
            body += raw[off : off + nb]
        idx = struct.pack("<8Q", *new_entries)
        shard.write_bytes(bytes(body) + idx + struct.pack("<I", crc32c(idx)))
        key = "c/0/0 (inner chunk (0, 0))"
    else:
        (path / key).write_bytes(bomb)
    data, _, _ = only(open_layers(path))
    with pytest.warns(ExplorerWarning, match="was not decompressed") as rec:
        out = np.asarray(data)
    assert any(f"chunk {key}" in str(w.message) for w in rec)
    expected = VALUES.copy()
    expected[0:10, 0:10] = 0
    np.testing.assert_array_equal(out, expected)
