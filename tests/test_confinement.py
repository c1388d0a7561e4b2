"""Local stores stay confined to their folder, and odd metadata gets a clear message.

Symbolic links leaving the store, FIFOs and other non-regular files named like Zarr keys are
treated as absent by every reader (never followed, never waited on); links that stay inside the
store work as usual.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.errors import CodecError, ExplorerError, MetadataError, PathEscapeError
from napari_zarr_explorer.store import (
    check_array_metadata,
    open_store,
    parse_location,
    read_json,
    read_node,
    safe_join,
)

VALUES = np.arange(32 * 32, dtype="uint16").reshape(32, 32) + 1
SECRET = VALUES * 7


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


def _v3(root: Path, data: Any = VALUES, **kw: Any) -> Path:
    return testing.write_array(root, data, zarr_format=3, chunks=(16, 16), fill_value=0, **kw)


def _store(path: Path) -> Any:
    return open_store(parse_location(str(path)))


def _get(store: Any, key: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype

    buf = _sync(store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else bytes(buf.to_bytes())


def _keys(agen: Any) -> list[str]:
    async def collect() -> list[str]:
        return [k async for k in agen]

    return sorted(_sync(collect()))


# ---------------------------------------------------------------- symbolic links


@pytest.fixture
def linked_c(tmp_path: Path) -> Path:
    """A v3 array whose ``c`` folder is a link to another store's chunks."""
    outside = _v3(tmp_path / "outside" / "secret.zarr", SECRET)
    src = _v3(tmp_path / "src.zarr")
    for chunk in sorted((src / "c").rglob("*"), reverse=True):
        chunk.unlink() if chunk.is_file() else chunk.rmdir()
    (src / "c").rmdir()
    (src / "c").symlink_to(outside / "c", target_is_directory=True)
    return src


def test_chunks_through_an_escaping_folder_link_are_absent(linked_c: Path) -> None:
    from napari_zarr_explorer.pyramid import open_pyramid

    (level,) = open_pyramid(str(linked_c))
    out = np.asarray(level.compute())
    assert not (out == SECRET).any()
    assert (out == 0).all()


def test_estimate_does_not_sample_chunks_outside(tmp_path: Path, linked_c: Path) -> None:
    from napari_zarr_explorer.estimate import NOTHING_TO_SAMPLE, estimate

    # The whole chunk folder leads outside: the store holds no chunk, so nothing is sampled.
    report = estimate(str(linked_c), "", ["zstd:1"], sample=4)
    (cand,) = report.to_dict()["candidates"]
    assert cand["sampled"] == 0 and cand["bytes_in"] == 0
    assert NOTHING_TO_SAMPLE in report.warnings

    # One chunk of its own, three linked to another store's chunks: all four are sampled, the
    # linked ones read as missing, and none was read from the other store.
    outside = _v3(tmp_path / "outside2" / "secret.zarr", SECRET)
    src = _v3(tmp_path / "mixed.zarr")
    for key in ("0/1", "1/0", "1/1"):
        (src / "c" / key).unlink()
        (src / "c" / key).symlink_to(outside / "c" / key)
    report = estimate(str(src), "", ["zstd:1"], sample=4)
    (cand,) = report.to_dict()["candidates"]
    assert cand["sampled"] == 4 and cand["sampled_empty"] == 3
    assert cand["bytes_in"] == 16 * 16 * VALUES.itemsize


def test_metadata_linked_to_an_outside_file_is_not_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"token": "TOPSECRET"}})
    )
    src = tmp_path / "src.zarr"
    src.mkdir()
    (src / "zarr.json").symlink_to(outside)
    store = _store(src)
    assert read_node(store, "", where=str(src)) is None
    main(["inspect", str(src)])
    out, err = capsys.readouterr()
    assert "TOPSECRET" not in out + err


def test_links_inside_the_store_are_followed(tmp_path: Path) -> None:
    from napari_zarr_explorer.pyramid import open_pyramid

    src = _v3(tmp_path / "src.zarr")
    (src / "c" / "1" / "1").unlink()
    (src / "c" / "1" / "1").symlink_to(src / "c" / "0" / "0")
    (level,) = open_pyramid(str(src))
    out = np.asarray(level.compute())
    assert (out[16:, 16:] == VALUES[:16, :16]).all()
    assert (out[:16, :16] == VALUES[:16, :16]).all()


def test_keys_leaving_the_store_are_absent(tmp_path: Path) -> None:
    src = _v3(tmp_path / "src.zarr")
    (tmp_path / "other").write_bytes(b"other")
    store = _store(src)
    for key in ("../other", str(tmp_path / "other"), "c/../../other", "zarr.json\x00"):
        assert _get(store, key) is None
        assert _sync(store.exists(key)) is False
        with pytest.raises(FileNotFoundError):
            _sync(store.getsize(key))
    assert store.get_sync("../other") is None
    assert _get(store, "c/../zarr.json") is not None


def test_listings_skip_escaping_links_and_special_files(tmp_path: Path) -> None:
    src = _v3(tmp_path / "src.zarr")
    (tmp_path / "other").write_bytes(b"other")
    (tmp_path / "otherdir").mkdir()
    (tmp_path / "otherdir" / "f").write_bytes(b"x")
    (src / "out_link").symlink_to(tmp_path / "other")
    (src / "out_dir").symlink_to(tmp_path / "otherdir", target_is_directory=True)
    (src / "in_link").symlink_to(src / "zarr.json")
    os.mkfifo(src / "pipe")
    store = _store(src)
    top = _keys(store.list_dir(""))
    assert "out_link" not in top and "out_dir" not in top and "pipe" not in top
    assert {"zarr.json", "c", "in_link"} <= set(top)
    everything = _keys(store.list())
    assert not any(k.startswith(("out_", "pipe")) for k in everything)
    assert "in_link" in everything and "c/0/0" in everything
    assert _keys(store.list_prefix("c")) == ["c/0/0", "c/0/1", "c/1/0", "c/1/1"]
    assert _keys(store.list_prefix("out_dir")) == []


def test_store_pickles_and_compares(tmp_path: Path) -> None:
    from zarr.storage import LocalStore

    src = _v3(tmp_path / "src.zarr")
    store = _store(src)
    assert isinstance(store, LocalStore)
    assert store.read_only
    again = pickle.loads(pickle.dumps(store))
    assert again == store and type(again) is type(store)
    assert _get(again, "zarr.json") == (src / "zarr.json").read_bytes()
    assert store != _store(tmp_path)


# ---------------------------------------------------------------- FIFOs


@pytest.mark.timeout(60)
def test_fifo_metadata_does_not_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from napari_zarr_explorer.estimate import estimate
    from napari_zarr_explorer.pyramid import open_pyramid

    src = tmp_path / "s.zarr"
    src.mkdir()
    os.mkfifo(src / "zarr.json")
    assert read_node(_store(src), "", where=str(src)) is None
    assert main(["inspect", str(src)]) != 0
    capsys.readouterr()
    with pytest.raises(ExplorerError):
        estimate(str(src), "", ["zstd:1"], sample=1)
    with pytest.raises(ExplorerError):
        open_pyramid(str(src))


@pytest.mark.timeout(60)
def test_fifo_chunk_reads_as_missing(tmp_path: Path) -> None:
    from napari_zarr_explorer.pyramid import open_pyramid

    src = _v3(tmp_path / "s.zarr")
    (src / "c" / "0" / "0").unlink()
    os.mkfifo(src / "c" / "0" / "0")
    store = _store(src)
    assert _get(store, "c/0/0") is None
    assert _sync(store.exists("c/0/0")) is False
    (level,) = open_pyramid(str(src))
    out = np.asarray(level.compute())
    assert (out[:16, :16] == 0).all() and (out[16:, 16:] == VALUES[16:, 16:]).all()


# ---------------------------------------------------------------- metadata read errors


def test_unreadable_metadata_is_a_metadata_error(tmp_path: Path) -> None:
    from zarr.storage import LocalStore

    src = tmp_path / "loop.zarr"
    src.mkdir()
    (src / "zarr.json").symlink_to(src / "zarr.json")  # ELOOP when opened
    plain = LocalStore(src, read_only=True)
    with pytest.raises(MetadataError, match=r"zarr\.json") as info:
        read_json(plain, "zarr.json", where=str(src))
    assert "symbolic links" in str(info.value)
    # the confined store of the package treats it as absent
    assert read_node(_store(src), "", where=str(src)) is None


# ---------------------------------------------------------------- sharding inner chunks


def _sharded_meta(inner: Any, shard: Any = (32, 32)) -> dict[str, Any]:
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [64, 64],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shard)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": inner,
                    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                    "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}],
                },
            }
        ],
    }


@pytest.mark.parametrize("inner", [[0, 8], [8], [8, 8, 8], [5, 8], [-8, 8], [8, True], "8", None])
def test_bad_sharding_inner_chunk_shape_is_refused(inner: Any) -> None:
    with pytest.raises(MetadataError, match=r"a\.zarr.*chunk_shape"):
        check_array_metadata(_sharded_meta(inner), where="a.zarr/zarr.json", zarr_format=3)


def test_good_sharding_inner_chunk_shape_passes() -> None:
    check_array_metadata(_sharded_meta([8, 16]), where="a.zarr/zarr.json", zarr_format=3)


def test_zero_inner_chunk_through_open_pyramid(tmp_path: Path) -> None:
    from napari_zarr_explorer.pyramid import open_pyramid

    src = testing.write_array(
        tmp_path / "s.zarr", VALUES, zarr_format=3, chunks=(8, 8), shards=(16, 16)
    )
    doc = json.loads((src / "zarr.json").read_text())
    doc["codecs"][0]["configuration"]["chunk_shape"] = [0, 8]
    (src / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(MetadataError, match=r"zarr\.json.*\[0, 8\]"):
        open_pyramid(str(src))


# ---------------------------------------------------------------- unknown codecs


def _v3_with_codec(name: str) -> dict[str, Any]:
    md = _sharded_meta([8, 8])
    md["codecs"] = [{"name": "bytes"}, {"name": name}]
    return md


def test_unknown_codec_without_a_known_package() -> None:
    with pytest.raises(CodecError) as info:
        check_array_metadata(_v3_with_codec("frobnicate"), where="a.zarr", zarr_format=3)
    msg = str(info.value)
    assert "'frobnicate'" in msg and "numcodecs" in msg
    assert "pip install" not in msg and "install it" not in msg
    assert "lacks" in msg


def test_unknown_v2_codec_without_a_known_package() -> None:
    md = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<u2", "compressor": None}
    md["filters"] = [{"id": "frobnicate"}]
    with pytest.raises(CodecError) as info:
        check_array_metadata(md, where="a.zarr", zarr_format=2)
    assert "pip install" not in str(info.value) and "'frobnicate'" in str(info.value)


def test_codec_of_a_missing_package_names_it() -> None:
    with pytest.raises(CodecError, match=r"pip install pysz3"):
        check_array_metadata(_v3_with_codec("numcodecs.sz3"), where="a.zarr", zarr_format=3)


def test_codec_missing_from_an_installed_package_does_not_suggest_installing_it() -> None:
    pytest.importorskip("imagecodecs")
    md = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<u2", "filters": None}
    md["compressor"] = {"id": "imagecodecs_frobnicate"}
    with pytest.raises(CodecError) as info:
        check_array_metadata(md, where="a.zarr", zarr_format=2)
    msg = str(info.value)
    assert "installed package 'imagecodecs' does not provide" in msg
    assert "--upgrade" in msg


# ---------------------------------------------------------------- long integers


def test_overlong_integer_message(tmp_path: Path) -> None:
    from zarr.storage import LocalStore

    src = tmp_path / "s.zarr"
    src.mkdir()
    (src / "zarr.json").write_text('{"zarr_format": ' + "9" * 5000 + "}")
    with pytest.raises(MetadataError) as info:
        read_json(LocalStore(src, read_only=True), "zarr.json", where=str(src))
    msg = str(info.value)
    assert "zarr.json" in msg and "more than 4300 digits" in msg
    assert "sys." not in msg


# ---------------------------------------------------------------- safe_join wording


def test_safe_join_wording() -> None:
    with pytest.raises(PathEscapeError, match="in metadata"):
        safe_join("", "../..")
    for bad in ("../..", "/etc", 3):
        with pytest.raises(PathEscapeError) as info:
            safe_join("", bad, source="given")  # type: ignore[arg-type]
        assert "in metadata" not in str(info.value) and "given" in str(info.value)
    assert safe_join("a", "b/c", source="given") == "a/b/c"
