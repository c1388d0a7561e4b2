"""The one exact-size decoder of stored chunks (``store/exact.py``), codec by codec.

Each rule has a case that breaks only it: a declared size larger or smaller than the chunk's,
bytes after the chunk's data, a chunk cut short, and a zstd frame without a content size (which
the direct readers leave to the guarded path and the batch checker decodes into the chunk's
size, as before).
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import numcodecs
import numpy as np
import pytest
import zstandard

from napari_zarr_explorer.store import exact
from napari_zarr_explorer.store.exact import (
    ExactSizeError,
    check_declared,
    check_zstd_segments,
    declared_size,
    decode_exact,
    decode_into,
)
from scripts import printed_json, run_python

N = 4096
DATA = (np.arange(N, dtype=np.uint32) % 251).astype(np.uint8).tobytes()


def _zstd(data: bytes = DATA, *, content_size: bool = True) -> bytes:
    return bytes(zstandard.ZstdCompressor(write_content_size=content_size).compress(data))


def _blosc(data: bytes = DATA) -> bytes:
    return bytes(numcodecs.Blosc(cname="lz4").encode(data))


def _with_blosc_nbytes(chunk: bytes, nbytes: int) -> bytes:
    return chunk[:4] + nbytes.to_bytes(4, "little") + chunk[8:]


def _gzip(data: bytes = DATA) -> bytes:
    return gzip.compress(data)


def _zlib(data: bytes = DATA) -> bytes:
    return zlib.compress(data)


ENCODE = {
    "raw": lambda d: bytes(d),
    "zstd": _zstd,
    "blosc": _blosc,
    "gzip": _gzip,
    "zlib": _zlib,
}


def _both(codec: str, data: bytes, nbytes: int = N) -> list[bytes]:
    """The decodes of *data* by decode_into and decode_exact (both must agree)."""
    out = np.empty(nbytes, dtype=np.uint8)
    decode_into(codec, data, out)
    return [out.tobytes(), bytes(decode_exact(codec, data, nbytes))]


@pytest.mark.parametrize("codec", sorted(exact.CODECS))
def test_a_chunk_of_exactly_its_size_decodes(codec: str) -> None:
    stored = ENCODE[codec](DATA)
    assert _both(codec, stored) == [DATA, DATA]
    check_declared(codec, stored, N)
    expected = {"raw": N, "zstd": N, "blosc": N, "gzip": None, "zlib": None}[codec]
    assert declared_size(codec, stored) == expected


@pytest.mark.parametrize("codec", sorted(exact.CODECS))
@pytest.mark.parametrize("size", [N - 1, N + 1], ids=["smaller", "larger"])
def test_a_chunk_of_another_size_is_refused(codec: str, size: int) -> None:
    # a chunk holding (and declaring) another size than the one the reader expects
    stored = ENCODE[codec](DATA[:size] if size < N else DATA + b"\x07")
    with pytest.raises(ExactSizeError):
        decode_into(codec, stored, np.empty(N, dtype=np.uint8))
    with pytest.raises(ExactSizeError):
        decode_exact(codec, stored, N)


@pytest.mark.parametrize("declared", [N // 2, 2 * N], ids=["smaller", "larger"])
def test_a_blosc_header_declaring_another_size_is_refused_before_decoding(declared: int) -> None:
    stored = _with_blosc_nbytes(_blosc(), declared)
    assert declared_size("blosc", stored) == declared
    for call in (
        lambda: check_declared("blosc", stored, N),
        lambda: decode_into("blosc", stored, np.empty(N, dtype=np.uint8)),
        lambda: decode_exact("blosc", stored, N),
    ):
        with pytest.raises(ExactSizeError, match="blosc chunk of another size"):
            call()


@pytest.mark.parametrize("declared", [N // 2, 2 * N], ids=["smaller", "larger"])
def test_a_zstd_frame_declaring_another_size_is_refused(declared: int) -> None:
    stored = _zstd(bytes(declared))
    with pytest.raises(ExactSizeError, match="declaring the chunk's size"):
        decode_into("zstd", stored, np.empty(N, dtype=np.uint8))
    with pytest.raises(ExactSizeError, match="declaring the chunk's size"):
        decode_exact("zstd", stored, N)
    segments = np.array([[0, len(stored)]], dtype=np.uint64)
    with pytest.raises(ExactSizeError, match="declaring another size"):
        check_zstd_segments(stored, segments, N)


def test_a_zstd_header_with_the_reserved_bit_declares_nothing() -> None:
    stored = bytearray(_zstd())
    stored[4] |= 0x08
    assert declared_size("zstd", bytes(stored)) is None
    with pytest.raises(ExactSizeError):
        decode_into("zstd", bytes(stored), np.empty(N, dtype=np.uint8))


@pytest.mark.parametrize("codec", ["raw", "blosc", "zlib"])
def test_bytes_after_the_chunk_are_refused(codec: str) -> None:
    stored = ENCODE[codec](DATA) + b"\x00"
    with pytest.raises(ExactSizeError):
        decode_into(codec, stored, np.empty(N, dtype=np.uint8))
    with pytest.raises(ExactSizeError):
        decode_exact(codec, stored, N)


def test_bytes_after_a_zlib_stream_are_refused_even_another_stream() -> None:
    stored = _zlib(DATA[:100]) + _zlib(DATA[100:])
    with pytest.raises(ExactSizeError, match="data after the zlib stream"):
        decode_exact("zlib", stored, N)


def test_gzip_members_must_make_exactly_the_chunk() -> None:
    # several members are one gzip stream: together they must hold exactly the chunk's size
    assert bytes(decode_exact("gzip", _gzip(DATA[:100]) + _gzip(DATA[100:]), N)) == DATA
    with pytest.raises(ExactSizeError, match="another size"):
        decode_exact("gzip", _gzip(DATA) + _gzip(b"\x01"), N)
    with pytest.raises(ExactSizeError, match="another size"):
        decode_exact("gzip", _gzip(DATA[:100]) + _gzip(DATA[100:-1]), N)


@pytest.mark.parametrize(
    ("tail", "into_refuses"),
    [
        (b"garbage!", True),
        (_zstd(b"x" * 10), True),
        (_zstd(b""), False),
        (b"\x50\x2a\x4d\x18\x02\x00\x00\x00ab", False),
    ],
    ids=["garbage", "frame", "empty-frame", "skippable-frame"],
)
def test_bytes_after_a_zstd_frame(tail: bytes, into_refuses: bool) -> None:
    stored = _zstd() + tail
    # the exact decoder and the batch checker refuse whatever follows the frame
    with pytest.raises(ExactSizeError, match="data after the zstd frame"):
        decode_exact("zstd", stored, N)
    with pytest.raises(ExactSizeError, match="does not end where its chunk ends"):
        check_zstd_segments(stored, np.array([[0, len(stored)]], dtype=np.uint64), N)
    # decode_into decodes every frame into the exact-size buffer, as zarr-python's zstd does:
    # more content, or bytes that are not a frame, fail; frames of nothing do not
    out = np.empty(N, dtype=np.uint8)
    if into_refuses:
        with pytest.raises((RuntimeError, ValueError)):
            decode_into("zstd", stored, out)
    else:
        decode_into("zstd", stored, out)
        assert out.tobytes() == DATA


@pytest.mark.parametrize("codec", sorted(exact.CODECS))
def test_a_chunk_cut_short_is_refused(codec: str) -> None:
    stored = ENCODE[codec](DATA)[:-3]
    with pytest.raises(Exception) as into:
        decode_into(codec, stored, np.empty(N, dtype=np.uint8))
    with pytest.raises(ExactSizeError):
        decode_exact(codec, stored, N)
    if codec != "zstd":  # the zstd header still declares the size: zstd itself refuses it
        assert into.type is ExactSizeError
    if codec == "zstd":
        with pytest.raises(ExactSizeError):
            check_zstd_segments(stored, np.array([[0, len(stored)]], dtype=np.uint64), N)


def test_gzip_members_after_the_size_are_not_decoded() -> None:
    # a first member one byte too long, then 64 MiB of zeros: refused without decoding them
    stored = _gzip(DATA + b"\x01") + _gzip(bytes(64 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ExactSizeError):
            decode_exact("gzip", stored, N)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_zstd_frame_cut_at_a_block_boundary_is_refused() -> None:
    data = np.random.default_rng(0).bytes(3 << 17)  # three raw blocks
    frame = _zstd(data)
    first = zstandard.frame_header_size(frame)
    block = int.from_bytes(frame[first : first + 3], "little")
    assert (block >> 1) & 3 == 0 and not block & 1  # a raw block, not the last one
    cut = frame[: first + 3 + (block >> 3)]
    walked = exact.zstd_frame(cut)
    assert walked is not None and walked.end == len(cut) and not walked.complete
    with pytest.raises(ExactSizeError):
        check_zstd_segments(cut, np.array([[0, len(cut)]], dtype=np.uint64), len(data))
    with pytest.raises(ExactSizeError):
        decode_exact("zstd", cut, len(data))


def test_a_frame_of_several_blocks_declaring_another_size_is_refused() -> None:
    data = np.random.default_rng(1).bytes(3 << 17)
    frame = _zstd(data)
    rows = np.array([[0, len(frame)]], dtype=np.uint64)
    check_zstd_segments(frame, rows, len(data))
    with pytest.raises(ExactSizeError, match="declaring another size"):
        check_zstd_segments(frame, rows, len(data) - 1)


def test_a_segment_that_is_not_a_zstd_frame_is_refused() -> None:
    frame = bytearray(_zstd())
    frame[0] ^= 0xFF  # another magic number, the rest a well-formed frame
    with pytest.raises(ExactSizeError):
        check_zstd_segments(bytes(frame), np.array([[0, len(frame)]], dtype=np.uint64), N)


def test_a_block_of_the_reserved_type_is_refused() -> None:
    frame = bytearray(_zstd())
    first = zstandard.frame_header_size(bytes(frame))
    block = int.from_bytes(frame[first : first + 3], "little")
    assert block & 1  # one block
    frame[first : first + 3] = (block | 0b110).to_bytes(3, "little")  # type 3, same size
    with pytest.raises(ExactSizeError):
        check_zstd_segments(bytes(frame), np.array([[0, len(frame)]], dtype=np.uint64), N)


def test_a_blosc_chunk_without_a_header_is_refused() -> None:
    assert declared_size("blosc", _blosc()[:15]) is None
    with pytest.raises(ExactSizeError, match="without a header"):
        check_declared("blosc", _blosc()[:15], N)


def test_a_zstd_frame_without_a_content_size() -> None:
    # the direct readers leave it to the guarded path; the batch checker decodes it into the
    # chunk's size (what the guarded path does with it)
    stored = _zstd(content_size=False)
    assert declared_size("zstd", stored) is None
    with pytest.raises(ExactSizeError, match="declaring the chunk's size"):
        decode_into("zstd", stored, np.empty(N, dtype=np.uint8))
    with pytest.raises(ExactSizeError, match="declaring the chunk's size"):
        decode_exact("zstd", stored, N)
    check_zstd_segments(stored, np.array([[0, len(stored)]], dtype=np.uint64), N)
    frame = exact.zstd_frame(stored)
    assert frame is not None and frame.complete and frame.content_size is None
    assert frame.end == len(stored) and frame.decoded >= N


def test_segments_are_checked_each() -> None:
    good = _zstd()
    data = good + good + b"\x00" + good
    rows = np.array([[0, len(good)], [len(good), len(good)]], dtype=np.uint64)
    check_zstd_segments(data, rows, N)
    bad = np.array([[0, len(good)], [len(good), len(good) + 1]], dtype=np.uint64)
    with pytest.raises(ExactSizeError):
        check_zstd_segments(data, bad, N)
    not_zstd = np.array([[len(good) * 2, 1]], dtype=np.uint64)
    with pytest.raises(ExactSizeError):
        check_zstd_segments(data, not_zstd, N)


def test_an_unknown_codec_is_not_decoded_here() -> None:
    with pytest.raises(ValueError, match="no exact-size decoder"):
        declared_size("lz4", b"1234")
    with pytest.raises(ValueError, match="no exact-size decoder"):
        decode_into("bz2", b"1234", np.empty(4, dtype=np.uint8))


def test_the_module_imports_neither_zarr_nor_numcodecs() -> None:
    script = (
        "import json, sys\n"
        "from napari_zarr_explorer.store import exact\n"
        "print(json.dumps([m for m in ('numcodecs', 'zarr', 'zstandard') if m in sys.modules]))\n"
    )
    assert printed_json(run_python(script)) == []
