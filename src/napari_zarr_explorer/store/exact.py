"""Exact-size decoding of stored chunks: the one place the size rules of direct decoders live.

Every reader that decodes stored (inner) chunks itself, without zarr-python's pipeline (the bulk
reader, the bulk chunk checker of ``chunks --verify``, recompression's verification, the lean
reader of remote first images), takes its size checks from here:

- the size a chunk *declares* (the blosc header's ``nbytes``; the content size in the first
  zstd frame's header) must equal the chunk's decoded size *before* anything is decoded, and a
  raw chunk must have exactly that size;
- the chunk is decoded into a buffer of exactly that size, allocated by the caller (or here),
  never by the chunk: nothing decodes past it;
- nothing may follow the chunk's data: a blosc header must count every stored byte
  (``cbytes``), a zstd frame must end where the chunk ends (:func:`zstd_frame_end`; the numcodecs
  decoder also decodes every further frame into the same exact-size buffer, so further content
  or bytes that are not a frame fail), a zlib stream must be the last thing stored and gzip
  members must decode to exactly the chunk's size together.

A chunk breaking a rule raises :class:`ExactSizeError` (callers map it to their own behaviour:
read the chunk through the guarded zarr-python path, or report it); a chunk that keeps the rules
but is damaged inside raises its decoder's own error. The guarded decoder of
:mod:`napari_zarr_explorer.store.decode`, which every other read falls back to, reads the sizes
of headers with the parsers here too (:func:`blosc_header`, :func:`zstd_frame`).

This module imports neither zarr-python nor numcodecs when it is imported (the lean reader must
stay cheap to import): numcodecs' blosc and zstd extensions are imported at the first decode
that needs them, ``zstandard`` by :func:`decode_exact` only.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CODECS",
    "ZSTD_MAGIC",
    "BloscHeader",
    "ExactSizeError",
    "ZstdFrame",
    "blosc_header",
    "check_declared",
    "check_zstd_segments",
    "declared_size",
    "decode_exact",
    "decode_into",
    "zstd_frame",
    "zstd_frame_end",
]

#: The codecs decoded here (``raw``: the chunk's bytes as stored).
CODECS = frozenset({"raw", "zstd", "blosc", "gzip", "zlib"})

#: The magic number at the start of a zstd frame (little-endian).
ZSTD_MAGIC = 0xFD2FB528
_BLOCK_MAX = 1 << 17  # zstd's largest block


class ExactSizeError(ValueError):
    """A stored chunk does not declare, or does not decode to, exactly the chunk's size.

    Raised before the chunk is decoded when its header declares another size (or none), and
    while decoding when a stream without a header (gzip, zlib) would pass the size, stops short
    of it, or is followed by more data.
    """


def _view(data: Any) -> memoryview:
    mv = memoryview(data)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


# --------------------------------------------------------------------------------------------
# headers
# --------------------------------------------------------------------------------------------


class BloscHeader(NamedTuple):
    """The sizes a blosc chunk's 16-byte header declares."""

    nbytes: int  # decoded bytes
    blocksize: int
    cbytes: int  # stored bytes, header included


def blosc_header(data: Any) -> BloscHeader | None:
    """Return the sizes in the header of the blosc chunk *data*, None when too short for one."""
    mv = _view(data)
    if len(mv) < 16:
        return None
    # version, versionlz, flags, typesize, then nbytes, blocksize, cbytes (little-endian)
    return BloscHeader(
        int.from_bytes(mv[4:8], "little"),
        int.from_bytes(mv[8:12], "little"),
        int.from_bytes(mv[12:16], "little"),
    )


class ZstdFrame(NamedTuple):
    """What the headers of one zstd frame (and of its blocks) tell without decoding it."""

    content_size: int | None  # declared in the frame header; None: not declared
    decoded: int  # most bytes the blocks walked may decode to (exact when content_size is set)
    end: int  # offset just after the frame (after the part walked when incomplete)
    complete: bool  # False: the data ends inside the frame, or a block type is reserved


def _zstd_header(mv: memoryview, pos: int) -> tuple[int | None, int | None, bool, int] | None:
    """``(content size, window, checksum, offset of the first block)`` of the frame at *pos*.

    None when the data there is not a zstd frame header (another magic number) or ends inside
    it.
    """
    n = len(mv)
    if pos + 5 > n or int.from_bytes(mv[pos : pos + 4], "little") != ZSTD_MAGIC:
        return None
    fhd = mv[pos + 4]
    fcs_flag, single, checksum, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
    pos += 5
    window: int | None = None
    if not single:
        if pos >= n:
            return None
        wd = mv[pos]
        pos += 1
        base = 1 << (10 + (wd >> 3))
        window = base + (base // 8) * (wd & 7)
    pos += (0, 1, 2, 4)[did_flag]
    fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    fcs: int | None = None
    if fcs_size:
        if pos + fcs_size > n:
            return None
        fcs = int.from_bytes(mv[pos : pos + fcs_size], "little") + (256 if fcs_size == 2 else 0)
        pos += fcs_size
        if single:
            window = fcs
    return fcs, window, bool(checksum), pos


def _content_size(mv: memoryview) -> int | None:
    """Return the content size the first zstd frame of *mv* declares.

    None when the frame declares none, or *mv* does not start with a zstd frame header.
    """
    if len(mv) > 4 and mv[4] & 0x08:  # the reserved bit: not a header zstd reads
        return None
    found = _zstd_header(mv, 0)
    return None if found is None else found[0]


def zstd_frame(data: Any, pos: int = 0) -> ZstdFrame | None:
    """Walk the frame at offset *pos* of *data* by its block headers, decoding nothing.

    Returns
    -------
    ZstdFrame or None
        None when there is no zstd frame (nor skippable frame) at *pos*, or its header is cut
        short. A skippable frame has a content size of 0.
    """
    mv = _view(data)
    n = len(mv)
    if pos + 4 <= n and 0x184D2A50 <= int.from_bytes(mv[pos : pos + 4], "little") <= 0x184D2A5F:
        if pos + 8 > n:
            return None
        end = pos + 8 + int.from_bytes(mv[pos + 4 : pos + 8], "little")
        return ZstdFrame(0, 0, end, end <= n)
    found = _zstd_header(mv, pos)
    if found is None:
        return None
    fcs, window, checksum, pos = found
    block_max = min(window or _BLOCK_MAX, _BLOCK_MAX)
    decoded = 0
    while True:
        if pos + 3 > n:
            return ZstdFrame(fcs, decoded, pos, False)
        bh = int.from_bytes(mv[pos : pos + 3], "little")
        pos += 3
        btype, bsize = (bh >> 1) & 3, bh >> 3
        if btype == 0:  # raw
            decoded += bsize
            pos += bsize
        elif btype == 1:  # one byte repeated
            decoded += bsize
            pos += 1
        elif btype == 2:  # compressed: at most one block
            decoded += block_max
            pos += bsize
        else:  # reserved
            return ZstdFrame(fcs, decoded, pos, False)
        if bh & 1:  # the last block
            break
    pos += 4 if checksum else 0
    return ZstdFrame(fcs, decoded, pos, pos <= n)


def zstd_frame_end(data: Any) -> int | None:
    """Return the offset where the first zstd frame of *data* ends, None when it is incomplete."""
    frame = zstd_frame(data)
    return frame.end if frame is not None and frame.complete else None


def declared_size(codec: str, data: Any) -> int | None:
    """Return the decoded size the stored chunk *data* declares for *codec*.

    ``raw``: its length; ``blosc``: the header's ``nbytes``; ``zstd``: the first frame's content
    size. None when there is no such size (too short for a header, a zstd frame without a
    content size, ``gzip`` and ``zlib``, which declare none).
    """
    if codec == "raw":
        return len(_view(data))
    if codec == "zstd":
        return _content_size(_view(data))
    if codec == "blosc":
        header = blosc_header(data)
        return None if header is None else header.nbytes
    if codec in ("gzip", "zlib"):
        return None
    raise ValueError(f"no exact-size decoder for the codec {codec!r}")


def check_declared(codec: str, data: Any, nbytes: int) -> None:
    """Refuse *data* unless it declares exactly *nbytes* and nothing is stored past it.

    ``gzip`` and ``zlib`` declare no size: they are checked while decoding. The end of a zstd
    frame is not looked for here (see :func:`zstd_frame_end`).

    Raises
    ------
    ExactSizeError
        The chunk declares another size or none, or (blosc) more bytes are stored than its
        header counts.
    """
    _check(codec, _view(data), nbytes)


def _check(codec: str, mv: memoryview, nbytes: int) -> None:
    if codec == "zstd":
        if _content_size(mv) != nbytes:
            raise ExactSizeError("not a zstd frame declaring the chunk's size")
    elif codec == "raw":
        if len(mv) != nbytes:
            raise ExactSizeError("an uncompressed chunk of another size")
    elif codec == "blosc":
        header = blosc_header(mv)
        if header is None:
            raise ExactSizeError("a blosc chunk without a header")
        if header.nbytes != nbytes or header.cbytes != len(mv):
            raise ExactSizeError("a blosc chunk of another size")
    elif codec not in ("gzip", "zlib"):
        raise ValueError(f"no exact-size decoder for the codec {codec!r}")


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


def _inflate(mv: memoryview, nbytes: int, *, gzip: bool) -> bytes:
    """Decode gzip members (or one zlib stream) to exactly *nbytes*, never beyond."""
    wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
    raw = bytes(mv)
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        # at most one byte past the size (a limit of 0 would mean none: it is never asked)
        out += d.decompress(raw, nbytes + 1 - len(out))
        if len(out) > nbytes or not d.eof:
            raise ExactSizeError("a deflate stream of another size")
        raw = d.unused_data
        if not raw:
            break
        if not gzip:
            raise ExactSizeError("data after the zlib stream")
    if len(out) != nbytes:
        raise ExactSizeError("a deflate stream of another size")
    return bytes(out)


_MODULES: dict[str, Any] = {}


def _numcodecs(name: str) -> Any:
    """Return numcodecs' extension *name* (``zstd``, ``blosc``), imported at its first use."""
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(f"numcodecs.{name}")
    return module


def decode_into(codec: str, data: Any, out: Any) -> None:
    """Decode the stored chunk *data* into *out*, a writable buffer of exactly its size.

    ``zstd`` and ``blosc`` are decoded by numcodecs' extensions (imported here, at the first
    call), which write into *out* and release the GIL.

    Raises
    ------
    ExactSizeError
        A size rule is broken (see the module); nothing was decoded, or (gzip, zlib) nothing
        past the size.
    Exception
        The decoder's own error for a chunk that keeps the rules but is damaged inside.
    """
    dst = _view(out)
    nbytes = len(dst)
    mv = _view(data)
    _check(codec, mv, nbytes)
    if codec == "zstd":
        # every frame is decoded into *out*: after the one declaring *nbytes*, any content or
        # bytes that are not a frame fail (only empty and skippable frames may follow)
        _numcodecs("zstd").decompress(mv, out)
    elif codec == "blosc":
        _numcodecs("blosc").decompress(mv, out)
    elif codec == "raw":
        dst[:] = mv
    else:
        dst[:] = _inflate(mv, nbytes, gzip=codec == "gzip")


def decode_exact(codec: str, data: Any, nbytes: int) -> Any:
    """Decode the stored chunk *data* to exactly *nbytes*; return a buffer of the bytes.

    Unlike :func:`decode_into`, ``zstd`` is decoded by ``zstandard`` (no numcodecs import) and
    refuses anything after the frame, empty or skippable frames too; ``raw`` returns a view of
    *data*.

    Raises
    ------
    ExactSizeError
        A size rule is broken (see the module).
    ImportError
        ``zstd`` without the ``zstandard`` package.
    Exception
        The decoder's own error for a chunk that keeps the rules but is damaged inside.
    """
    mv = _view(data)
    if codec in ("gzip", "zlib"):
        return _inflate(mv, nbytes, gzip=codec == "gzip")
    _check(codec, mv, nbytes)
    if codec == "raw":
        return mv
    if codec == "zstd":
        import zstandard

        if zstd_frame_end(mv) != len(mv):
            raise ExactSizeError("data after the zstd frame, or a frame cut short")
        # the frame declares *nbytes* (zstd checks that it holds them), and it alone is decoded
        got: bytes = zstandard.ZstdDecompressor().decompress(mv, max_output_size=nbytes)
        return got
    out = np.empty(nbytes, dtype=np.uint8)
    decode_into(codec, mv, out)
    return out


def check_zstd_segments(data: Any, segments: Any, nbytes: int) -> None:
    """Refuse the zstd frames at ``(offset, size)`` rows *segments* of *data* breaking a rule.

    For batch decoders (``zstandard``'s ``multi_decompress_to_buffer``), which decode each
    frame into a buffer of the given size but ignore whatever follows the frame: each frame
    must declare *nbytes* or no content size (it is then decoded into *nbytes*, as the guarded
    path would), and end where its segment ends. Frames of one block (small chunks) are checked
    for all rows at once with numpy, the others by :func:`zstd_frame`; both give the same
    verdict.

    Raises
    ------
    ExactSizeError
        Without saying which segment.
    """
    mv = _view(data)
    rows = np.asarray(segments, dtype=np.uint64).reshape(-1, 2)
    if rows.shape[0] == 0:
        return
    buf = np.frombuffer(mv, dtype=np.uint8)
    top = max(len(buf) - 1, 0)
    offs, sizes = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)

    def le(pos: Any, width: int) -> Any:  # little-endian values of *width* bytes at *pos*
        value = np.zeros(len(pos), dtype=np.uint64)
        for k in range(width):
            value |= buf[np.minimum(pos + k, top)].astype(np.uint64) << np.uint64(8 * k)
        return value

    # candidates: inside the data, long enough for the smallest frame, zstd's magic number
    simple = (offs + sizes <= len(buf)) & (sizes >= 6) & (le(offs, 4) == ZSTD_MAGIC)
    simple &= offs >= 0
    fhd = buf[np.minimum(offs + 4, top)]
    # the frames of one writer share one frame header descriptor: the positions of the content
    # size and of the first block follow from it, read for all frames sharing it at once
    for value in np.unique(fhd[simple]).tolist():
        group = np.flatnonzero(simple & (fhd == value))
        fcs_flag, single, checksum, did = value >> 6, (value >> 5) & 1, (value >> 2) & 1, value & 3
        fcs_at = 5 + (0 if single else 1) + (0, 1, 2, 4)[did]
        fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
        first = fcs_at + fcs_size  # the first block's header
        at, size = offs[group], sizes[group]
        block = le(at + first, 3).astype(np.int64)
        btype, bsize = (block >> 1) & 3, block >> 3
        end = first + 3 + np.where(btype == 1, 1, bsize) + 4 * checksum
        # one block, the last, of a known type: the frame's end and content size are known
        # here (an end past the segment's is refused), anything else is walked below
        one = (block & 1 == 1) & (btype != 3)
        if bool((one & (end != size)).any()):
            raise ExactSizeError("a zstd frame that does not end where its chunk ends")
        if fcs_size:
            fcs = le(at + fcs_at, fcs_size) + np.uint64(256 if fcs_size == 2 else 0)
            if bool((one & (fcs != np.uint64(nbytes))).any()):
                raise ExactSizeError("a zstd frame declaring another size")
        simple[group[~one]] = False
    for off, size in rows[~simple].tolist():
        frame = zstd_frame(mv[off : off + size])
        if frame is None or not frame.complete or frame.end != size:
            raise ExactSizeError("a zstd frame that does not end where its chunk ends")
        if frame.content_size not in (None, nbytes):
            raise ExactSizeError("a zstd frame declaring another size")
