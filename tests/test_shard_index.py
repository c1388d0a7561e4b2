"""The one shard index reader (store.shardindex): layout detection and every check it makes."""

from __future__ import annotations

import crc32c
import numpy as np
import pytest

from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.store.shardindex import (
    MISSING,
    IndexLayout,
    decode_index,
    entry_masks,
    index_layout,
    parse_shard_index,
    parse_whole_shard,
)

M = MISSING
DATA = b"abcdefgh"  # two inner chunks: "abc" and "defgh"


def _index(entries: list[tuple[int, int]], *, checksum: bool = True, order: str = "<") -> bytes:
    body = np.array(entries, dtype=f"{order}u8").reshape(-1, 2).tobytes()
    return body + (crc32c.crc32c(body).to_bytes(4, "little") if checksum else b"")


def _shard(entries: list[tuple[int, int]], *, at_end: bool = True, checksum: bool = True) -> bytes:
    """DATA with an index of *entries*; offsets are relative to DATA's start."""
    if at_end:
        return DATA + _index(entries, checksum=checksum)
    shift = 16 * len(entries) + (4 if checksum else 0)
    moved = [(o + shift, n) if o != M else (o, n) for o, n in entries]
    return _index(moved, checksum=checksum) + DATA


GOOD = [(0, 3), (M, M), (3, 5)]


@pytest.mark.parametrize("at_end", [True, False])
@pytest.mark.parametrize("checksum", [True, False])
def test_a_sound_shard_parses_with_its_missing_entries(at_end: bool, checksum: bool) -> None:
    layout = IndexLayout(n_chunks=3, checksum=checksum, at_end=at_end)
    shard = _shard(GOOD, at_end=at_end, checksum=checksum)
    index = parse_whole_shard(shard, layout, where="k")
    missing, bad = entry_masks(index, layout, len(shard))
    assert missing.tolist() == [False, True, False] and not bad.any()
    for (o, n), want in zip(index[~missing].tolist(), [b"abc", b"defgh"], strict=True):
        assert shard[o : o + n] == want


def test_checksum_mismatch_is_refused_and_ignored_without_crc() -> None:
    shard = bytearray(_shard(GOOD))
    shard[len(DATA) + 1] ^= 1  # inside the index body; the entry stays plausible
    with pytest.raises(MetadataError, match=r"k: .*crc32c checksum"):
        parse_whole_shard(bytes(shard), IndexLayout(3, checksum=True, at_end=True), where="k")
    stored_crc = bytearray(_shard(GOOD))
    stored_crc[-1] ^= 1  # the checksum itself
    with pytest.raises(MetadataError, match="checksum"):
        parse_whole_shard(bytes(stored_crc), IndexLayout(3, checksum=True, at_end=True), where="k")


def test_index_is_taken_from_the_start_or_the_end() -> None:
    at_start = _shard(GOOD, at_end=False)
    # read as if at the end: the last 52 bytes are not an index (checksum fails)
    with pytest.raises(MetadataError, match="checksum"):
        parse_whole_shard(at_start, IndexLayout(3, checksum=True, at_end=True), where="k")
    index = parse_whole_shard(at_start, IndexLayout(3, checksum=True, at_end=False), where="k")
    assert index[0].tolist() == [52, 3]


def test_chunks_may_not_overlap_an_index_at_the_start() -> None:
    layout = IndexLayout(3, checksum=True, at_end=False)
    shard = _index([(0, 3), (M, M), (52, 5)]) + DATA  # the first chunk lies in the index
    with pytest.raises(MetadataError, match="outside"):
        parse_whole_shard(shard, layout, where="k")


def test_chunks_may_not_overlap_an_index_at_the_end() -> None:
    layout = IndexLayout(3, checksum=True, at_end=True)
    shard = DATA + _index([(0, 3), (M, M), (3, 6)])  # one byte into the index
    with pytest.raises(MetadataError, match="outside"):
        parse_whole_shard(shard, layout, where="k")


@pytest.mark.parametrize("entry", [(M, 5), (3, M)])
def test_half_missing_entry_is_refused(entry: tuple[int, int]) -> None:
    layout = IndexLayout(3, checksum=True, at_end=True)
    shard = _shard([(0, 3), entry, (3, 5)])
    with pytest.raises(MetadataError, match="half-missing"):
        parse_whole_shard(shard, layout, where="k")
    index = decode_index(layout.cut(shard), layout, where="k")
    missing, bad = entry_masks(index, layout, None)  # size unknown: still bad
    assert not missing.any() and bad.tolist() == [False, True, False]


@pytest.mark.parametrize(
    "entry",
    [(0, 9), (8, 1), (9, 0), (2**63, 2**63), (M - 1, 2), (1, M - 1)],
    ids=["size", "offset+size", "offset", "wraps", "wraps near max", "huge size"],
)
def test_offsets_past_the_end_are_refused(entry: tuple[int, int]) -> None:
    layout = IndexLayout(3, checksum=True, at_end=True)
    shard = _shard([(0, 3), (M, M), entry])
    with pytest.raises(MetadataError, match=r"k: .*outside the shard"):
        parse_whole_shard(shard, layout, where="k")
    index = decode_index(layout.cut(shard), layout, where="k")
    bad = entry_masks(index, layout, len(shard))[1]
    assert bad.tolist() == [False, False, True]


def test_a_chunk_ending_exactly_at_the_data_end_is_accepted() -> None:
    layout = IndexLayout(2, checksum=False, at_end=True)
    shard = DATA + _index([(0, 8), (8, 0)], checksum=False)
    assert parse_whole_shard(shard, layout, where="k").tolist() == [[0, 8], [8, 0]]


def test_too_short_shard_and_wrong_index_length_are_refused() -> None:
    layout = IndexLayout(3, checksum=True, at_end=True)
    shard = _shard(GOOD)
    with pytest.raises(MetadataError, match=r"k: .*too short.*cannot hold its index"):
        parse_whole_shard(shard[:51], layout, where="k")
    with pytest.raises(MetadataError, match=r"has 51 bytes, expected 52"):
        parse_shard_index(shard[-51:], layout, shard_nbytes=len(shard), where="k")
    with pytest.raises(MetadataError, match="too short"):  # the listed size decides too
        parse_shard_index(shard[-52:], layout, shard_nbytes=51, where="k")


def test_zero_entries() -> None:
    layout = IndexLayout(0, checksum=True, at_end=True)
    shard = DATA + _index([])
    assert layout.nbytes == 4
    assert parse_whole_shard(shard, layout, where="k").shape == (0, 2)
    with pytest.raises(MetadataError, match="checksum"):
        parse_whole_shard(DATA + b"\x00\x00\x00\x01", layout, where="k")


def test_errors_without_a_key_start_plainly() -> None:
    with pytest.raises(MetadataError, match=r"^the shard is 3 bytes"):
        parse_whole_shard(b"abc", IndexLayout(1, checksum=False, at_end=True), where="")


def test_big_endian_index() -> None:
    layout = index_layout(
        {"index_codecs": [{"name": "bytes", "configuration": {"endian": "big"}}]}, 3
    )
    assert layout == IndexLayout(3, checksum=False, at_end=True, byteorder=">")
    shard = DATA + _index(GOOD, checksum=False, order=">")
    assert parse_whole_shard(shard, layout, where="k").tolist() == [[0, 3], [M, M], [3, 5]]


@pytest.mark.parametrize(
    ("conf", "want"),
    [
        ({}, (True, True)),  # the specification's defaults: bytes + crc32c at the end
        ({"index_codecs": ["bytes"], "index_location": "start"}, (False, False)),
        ({"index_codecs": [{"name": "bytes"}, {"name": "crc32c"}]}, (True, True)),
        (
            {
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                "index_location": "end",
            },
            (False, True),
        ),
        ({"index_codecs": [{"name": "bytes"}, {"name": "gzip"}]}, None),
        ({"index_codecs": [{"name": "crc32c"}, {"name": "bytes"}]}, None),
        ({"index_codecs": ["bytes", "crc32c", "crc32c"]}, None),
        ({"index_codecs": []}, None),
        ({"index_codecs": "bytes"}, None),
        ({"index_codecs": [{"name": "bytes", "configuration": {"endian": "middle"}}]}, None),
        ({"index_location": "middle"}, None),
        ({"index_codecs": [3]}, None),
    ],
)
def test_layout_detection(conf: dict[str, object], want: tuple[bool, bool] | None) -> None:
    layout = index_layout(conf, 4)
    if want is None:
        assert layout is None
    else:
        assert layout is not None
        assert (layout.checksum, layout.at_end) == want
        assert layout.nbytes == 64 + (4 if layout.checksum else 0)


def test_layout_from_zarr_codec_objects() -> None:
    from zarr.codecs import BytesCodec, Crc32cCodec

    layout = index_layout(
        {"index_codecs": [BytesCodec(), Crc32cCodec()], "index_location": "start"}, 2
    )
    assert layout == IndexLayout(2, checksum=True, at_end=False)


def test_entry_masks_of_a_shard_shorter_than_its_index() -> None:
    layout = IndexLayout(3, checksum=True, at_end=True)
    index = decode_index(_index(GOOD), layout, where="k")
    missing, bad = entry_masks(index, layout, 40)  # a listed size below the index's 52 bytes
    assert missing.tolist() == [False, True, False]
    assert bad.tolist() == [True, False, True]
