"""Compressor strings -> CompressorSpec -> zarr v2/v3 codecs and standalone encode/decode."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import zarr
from packaging.version import Version

from napari_zarr_explorer.codec_spec import (
    COMPRESSOR_NAMES,
    CompressorSpec,
    parse_compressor,
    register_zarr_codecs,
)
from napari_zarr_explorer.errors import CodecError

DATA = (np.arange(4 * 32 * 32).reshape(4, 32, 32) % 977).astype("uint16")
FLOATS = np.random.default_rng(0).random((4, 32, 32)).astype("float32")
#: imagecodecs 2026.11 encodes webp images 16383 pixels a side (libwebp's largest; 16382
#: before), and no longer guesses that a jpeg2k (z, y, x) chunk with z of 4 or less is planar.
IMAGECODECS_2026_11 = Version(imagecodecs.__version__) >= Version("2026.11")
WEBP_SIDE = 16383 if IMAGECODECS_2026_11 else 16382


@pytest.mark.parametrize(
    ("text", "name", "level", "shuffle", "label"),
    [
        ("zstd:5", "zstd", 5, None, "zstd:5"),
        ("zstd", "zstd", 3, None, "zstd:3"),
        ("blosc-zstd:5", "blosc-zstd", 5, None, "blosc-zstd:5"),
        ("blosc-lz4", "blosc-lz4", 5, None, "blosc-lz4:5"),
        ("blosc-lz4hc:9", "blosc-lz4hc", 9, None, "blosc-lz4hc:9"),
        ("gzip:6", "gzip", 6, None, "gzip:6"),
        ("none", "none", None, None, "none"),
        (
            "BLOSC-ZSTD:level=7,shuffle=bit",
            "blosc-zstd",
            7,
            "bit",
            "blosc-zstd:level=7,shuffle=bit",
        ),
        ("blosc-lz4:1,noshuffle", "blosc-lz4", 1, "none", "blosc-lz4:level=1,shuffle=none"),
    ],
)
def test_parse(text: str, name: str, level: int | None, shuffle: str | None, label: str) -> None:
    spec = parse_compressor(text)
    assert (spec.name, spec.level, spec.shuffle, spec.label) == (name, level, shuffle, label)
    assert parse_compressor(spec.label) == spec
    assert str(spec) == label
    assert not spec.is_lossy


def test_shuffle_argument_and_defaults() -> None:
    assert parse_compressor("blosc-lz4", shuffle="bit").shuffle == "bit"
    assert parse_compressor(None) == CompressorSpec()
    spec = parse_compressor("blosc-zstd:5")
    assert spec.shuffle_for("uint16") == "byte"
    assert spec.shuffle_for("uint8") == "bit"
    assert parse_compressor("zstd:3", shuffle="none").shuffle is None
    assert parse_compressor(spec) is spec


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("brotli", "unknown compressor"),
        ("zstd:99", "out of range"),
        ("gzip:x", "not an integer"),
        ("zstd:3+gzip:2", "only one lossless"),
        ("zfp:tolerance=0.1", "tolerance"),
        ("zfp:rate=8+zstd", "cannot be combined"),
        ("none:3", "takes no options"),
        ("zstd:3,foo=1", "unknown option"),
        ("", "Empty"),
        ("bitround:99", "0 to 52"),
    ],
)
def test_parse_errors(text: str, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        parse_compressor(text)


def test_shuffle_needs_blosc() -> None:
    with pytest.raises(CodecError, match="needs a blosc"):
        parse_compressor("zstd:3", shuffle="bit")
    with pytest.raises(CodecError, match="Unknown shuffle"):
        parse_compressor("blosc-lz4", shuffle="sideways")


def _zarr_bytes(spec: CompressorSpec, data: np.ndarray, zarr_format: int) -> np.ndarray:
    register_zarr_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = zarr.storage.MemoryStore()
        if zarr_format == 3:
            filters, serializer, compressors = spec.v3_parts(data.dtype)
            arr = zarr.create_array(
                store,
                shape=data.shape,
                chunks=data.shape,
                dtype=data.dtype,
                filters=filters,
                serializer=serializer,
                compressors=compressors,
            )
            key = "c/" + "/".join("0" * data.ndim)
        else:
            arr = zarr.create_array(
                store,
                shape=data.shape,
                chunks=data.shape,
                dtype=data.dtype,
                zarr_format=2,
                filters=spec.v2_filters(data.dtype),
                compressors=spec.v2_compressor(data.dtype),
            )
            key = ".".join("0" * data.ndim)
        arr[...] = data
        raw = store._store_dict[key].to_bytes()
        # our decoder reads zarr's bytes, and zarr reads ours
        np.testing.assert_array_equal(
            spec.decode(raw, data.dtype, data.shape), np.asarray(arr[...])
        )
        store._store_dict[key] = store._store_dict[key].from_bytes(spec.encode(data))
        return np.asarray(arr[...])


@pytest.mark.parametrize(
    "text", [*(n for n in COMPRESSOR_NAMES), "blosc-zstd:level=5,shuffle=bit", "gzip:1"]
)
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_encode_matches_zarr(text: str, zarr_format: int) -> None:
    spec = parse_compressor(text)
    back = _zarr_bytes(spec, DATA, zarr_format)
    np.testing.assert_array_equal(back, DATA)
    np.testing.assert_array_equal(spec.decode(spec.encode(DATA), DATA.dtype, DATA.shape), DATA)
    assert spec.error(DATA).max_abs == 0
    assert len(spec.v3_json(DATA.dtype)) >= 1


@pytest.mark.parametrize(
    "text", ["zfp:rate=8", "zfp:precision=16", "zfp:reversible", "bitround:7", "quantize:3+gzip:4"]
)
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_lossy(text: str, zarr_format: int) -> None:
    pytest.importorskip("imagecodecs")
    spec = parse_compressor(text)
    assert parse_compressor(spec.label) == spec
    back = _zarr_bytes(spec, FLOATS, zarr_format)
    err = spec.error(FLOATS)
    assert float(np.abs(back - FLOATS).max()) == pytest.approx(err.max_abs)
    if text == "zfp:reversible":
        assert not spec.is_lossy and err.max_abs == 0
    else:
        assert spec.is_lossy and 0 < err.max_abs < 0.1 and err.psnr > 20
    assert err.to_dict()["rms"] is not None


def test_lossy_dtype_checks() -> None:
    with pytest.raises(CodecError, match="floating-point"):
        parse_compressor("bitround:7").check_dtype("uint16")
    with pytest.raises(CodecError, match="zfp encodes"):
        parse_compressor("zfp:rate=8").check_dtype("uint16")


def test_decode_without_dtype_gives_bytes() -> None:
    spec = parse_compressor("zstd:1")
    raw = spec.decode(spec.encode(DATA))
    assert raw.dtype == np.uint8 and raw.tobytes() == DATA.astype("<u2").tobytes()


# What the image codecs accept, measured by encoding: imagecodecs squeezes a chunk's size-1
# dimensions; png, jpeg and jpeg2k then need a 2-D image (webp: RGB or RGBA) within each
# format's size limits, jpegxl takes (z, y, x) volumes (with up to 4 samples last) and lerc up
# to 4 dimensions. Each case is encoded for real, so a new imagecodecs that changes a limit
# fails here.
IMAGE_SHAPES = [
    # (spec, dtype, chunk shape that encodes, chunk shape refused, words of the refusal)
    ("png", "u1", (1, 64, 64), (2, 64, 64), "png encodes 2-D images"),
    ("png", "u2", (1, 64, 64, 4), (2, 64, 64, 3), "png encodes 2-D images"),
    ("jpeg:quality=90", "u1", (64, 64, 3), (64, 64, 5), "jpeg encodes 2-D images"),
    ("jpeg2k", "u2", (1, 1, 64, 64), (2, 2, 64, 64), "jpeg2k encodes 2-D images"),
    ("webp", "u1", (1, 64, 64, 3), (1, 64, 64), "webp encodes RGB or RGBA images"),
    ("webp", "u1", (2, 64, 3), (1, 64, 3), "at least 2 x 2 pixels"),
    ("jpeg:quality=90", "u1", (2, 65535), (2, 65536), "65535 pixels"),
    ("webp", "u1", (2, WEBP_SIDE, 3), (2, WEBP_SIDE + 1, 3), f"{WEBP_SIDE} pixels"),
    ("png", "u1", (2, 1_000_000), (2, 1_000_001), "1000000 pixels"),
    ("jpegxl", "u1", (1, 8, 64, 64), (2, 8, 64, 64), "jpegxl encodes images and (z, y, x)"),
    ("jpegxl", "u2", (2, 64, 64, 4), (2, 64, 64, 5), "jpegxl encodes images and (z, y, x)"),
    ("jpegxl", "f4", (64, 4, 64, 1), (2, 2, 4, 64), "jpegxl encodes images and (z, y, x)"),
    ("lerc", "f4", (2, 8, 64, 64), (2, 2, 8, 64, 64), "lerc encodes chunks with up to 4"),
    ("lerc", "i2", (1, 3, 8, 8, 8, 1), (3, 3, 3, 8, 8), "lerc encodes chunks with up to 4"),
]


@pytest.mark.parametrize(
    ("text", "dtype", "good", "bad", "words"),
    IMAGE_SHAPES,
    ids=[f"{t}-{'x'.join(map(str, b))}" for t, _, _, b, _ in IMAGE_SHAPES],
)
def test_image_codecs_accept_the_chunk_shapes_they_encode(
    text: str, dtype: str, good: tuple[int, ...], bad: tuple[int, ...], words: str
) -> None:
    spec = parse_compressor(text)
    rng = np.random.default_rng(0)
    ok = rng.integers(0, 200, good).astype(dtype)
    spec.check_dtype(dtype, chunks=good)
    assert spec.decode(spec.encode(ok), dtype, good).shape == good
    with pytest.raises(CodecError) as info:
        spec.check_dtype(dtype, chunks=bad)
    msg = str(info.value)
    name = text.partition(":")[0]
    assert words in msg and msg.startswith(name) and str(bad) in msg, msg
    assert "zstd:5" in msg  # what to choose instead
    if name == "jpegxl" and len([c for c in bad if c > 1]) == 4:
        assert "choose lerc" in msg  # which encodes it
    with pytest.raises(Exception):  # the codec's own error, whatever its type
        spec.encode(np.zeros(bad, dtype))


# Volume chunks (z, y, x) the image codecs encode exactly: through the Zarr v3 codecs
# (imagecodecs_NAME) and the Zarr v2 numcodecs codecs, zarr-python reads back what was written.
VOLUMES = [
    ("jpegxl", "uint8", (8, 64, 64)),
    ("jpegxl", "uint16", (3, 64, 64)),
    ("jpegxl", "float32", (2, 64, 64)),
    ("jpegxl", "uint8", (4, 64, 64, 3)),
    ("lerc", "float32", (2, 8, 64, 64)),
    ("lerc", "uint16", (64, 8, 8)),
    ("lerc", "int8", (2, 3, 4, 64)),
]


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("text", "dtype", "shape"),
    VOLUMES,
    ids=[f"{t}-{d}-{'x'.join(map(str, s))}" for t, d, s in VOLUMES],
)
def test_volume_chunks_round_trip_exactly(
    text: str, dtype: str, shape: tuple[int, ...], zarr_format: int
) -> None:
    spec = parse_compressor(text)
    spec.check_dtype(dtype, chunks=shape, zarr_format=zarr_format)
    data = (np.random.default_rng(1).random(shape) * 120).astype(dtype)
    np.testing.assert_array_equal(_zarr_bytes(spec, data, zarr_format), data)
    back = spec.decode(spec.encode(data), dtype, shape)
    assert back.shape == shape
    np.testing.assert_array_equal(back, data)


# The ramp below as imagecodecs 2026.11 writes it with webp (lossless), 16383 pixels wide.
WEBP_16383_BY_2026_11 = base64.b64decode(
    "UklGRlYAAABXRUJQVlA4TEoAAAAv/n8AAM0BRNL+5BtE9D/1DiAI/+cOChH9T20w07YNf9INhJ2eKiAgKDTd81CQtgHT"
    "HQGVMZXjv/nvnf/eAeyd/96f//Af/hP+Ew=="
)


def _webp_ramp() -> np.ndarray:
    x = (np.arange(16383) % 256).astype("uint8")
    return np.stack([np.stack([x, x[::-1], x // 2], axis=-1)] * 2)


def test_webp_16383_pixels_wide_is_refused_only_where_imagecodecs_cannot_encode_it() -> None:
    spec = parse_compressor("webp")
    ramp = _webp_ramp()
    if IMAGECODECS_2026_11:
        spec.check_dtype("uint8", chunks=ramp.shape)
        np.testing.assert_array_equal(spec.decode(spec.encode(ramp), "uint8", ramp.shape), ramp)
    else:
        with pytest.raises(CodecError) as info:
            spec.check_dtype("uint8", chunks=ramp.shape)
        msg = str(info.value)
        assert "webp encodes images up to 16382 pixels a side" in msg, msg
        assert "install imagecodecs 2026.11 or later (which encodes 16383)" in msg, msg
        with pytest.raises(ValueError):  # imagecodecs refuses it too
            spec.encode(ramp)
    # wider than libwebp allows: refused by every version, without the upgrade hint
    with pytest.raises(CodecError) as info:
        spec.check_dtype("uint8", chunks=(16384, 2, 3))
    assert "16384 pixels across" in str(info.value) and "2026.11" not in str(info.value)


def test_webp_16383_pixels_wide_written_by_imagecodecs_2026_11_decodes_exactly() -> None:
    # What the check allows with imagecodecs 2026.11 is read by the versions before it.
    ramp = _webp_ramp()
    back = parse_compressor("webp").decode(WEBP_16383_BY_2026_11, "uint8", ramp.shape)
    np.testing.assert_array_equal(back, ramp)


@pytest.mark.parametrize(
    "chunks", [(1, 8, 64, 64), (4, 64, 64), (2, 1, 2, 64)], ids=["1x8x64x64", "4x64x64", "2x1x2x64"]
)
def test_jpeg2k_refuses_volume_chunks(chunks: tuple[int, ...]) -> None:
    spec = parse_compressor("jpeg2k")
    with pytest.raises(CodecError) as info:
        spec.check_dtype("uint8", chunks=chunks)
    msg = str(info.value)
    assert msg.startswith(f"jpeg2k encodes 2-D images (with up to 4 samples last): chunks {chunks}")
    assert "jpegxl or lerc" in msg and "zstd:5" in msg


# np.arange(32, dtype="uint8").reshape(2, 2, 8) as imagecodecs 2026.3 writes it with jpeg2k
# (reversible): the first dimension taken as 2 samples of a 2 x 8 image, stored planar.
JPEG2K_2X2X8_BY_2026_3 = base64.b64decode(
    "AAAADGpQICANCocKAAAAFGZ0eXBqcDIgAAAAAGpwMiAAAAAtanAyaAAAABZpaGRyAAAAAgAAAAgAAgcHAAAAAAAPY29s"
    "cgEAAAAAABEAAAClanAyY/9P/1EALAAAAAAACAAAAAIAAAAAAAAAAAAAAAgAAAACAAAAAAAAAAAAAgcBAQcBAf9SAAwA"
    "AAABAAAEBAAB/1wABEBA/2QAJQABQ3JlYXRlZCBieSBPcGVuSlBFRyB2ZXJzaW9uIDIuNS40/5AACgAAAAAAMAAB/5Pf"
    "gHAH1kUcuRbq1+4Otl2sv8+0OAiQ+IiMg9FAETld5iZn/9k="
)


def test_jpeg2k_volume_chunks_written_planar_read_back_transposed() -> None:
    # A volume chunk stored by an imagecodecs that guessed planar samples: every version
    # decodes the image it holds (y, x, samples), which is not the chunk that was written.
    data = np.arange(32, dtype="uint8").reshape(2, 2, 8)
    assert imagecodecs.jpeg2k_decode(JPEG2K_2X2X8_BY_2026_3).shape == (2, 8, 2)
    back = parse_compressor("jpeg2k").decode(JPEG2K_2X2X8_BY_2026_3, "uint8", data.shape)
    assert not np.array_equal(back, data)
    np.testing.assert_array_equal(back.reshape(2, 8, 2), data.transpose(1, 2, 0))


def _smooth_volume(shape: tuple[int, ...]) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    v = 100 + 60 * np.sin(6 * x + 2 * z) * np.cos(5 * y - z) + 30 * np.sin(11 * x * y + 3 * z)
    return v.clip(0, 255).astype("uint8")


@pytest.mark.parametrize(
    "chunks", [(4, 64, 64), (2, 1, 2, 64), (8, 128, 128)], ids=["4x64x64", "2x1x2x64", "8x128x128"]
)
def test_jpeg2k_stores_a_volume_chunk_as_one_image_with_samples(chunks: tuple[int, ...]) -> None:
    # jpeg2k has no planes: a (z, y, x) chunk is one image whose samples are one of its axes.
    spec = parse_compressor("jpeg2k")
    z, y, x = [c for c in chunks if c > 1]
    data = _smooth_volume((z, y, x)).reshape(chunks)
    encoded = spec.encode(data)
    back = spec.decode(encoded, "uint8", chunks)
    image = imagecodecs.jpeg2k_decode(encoded)
    if z <= 4 and not IMAGECODECS_2026_11:
        # a y-by-x image with z samples, stored planar: it decodes transposed
        assert image.shape == (y, x, z)
        np.testing.assert_array_equal(image, data.reshape(z, y, x).transpose(1, 2, 0))
        assert not np.array_equal(back, data)
    else:
        # a z-by-y image with x samples: exact, but larger than its planes (1.5 to 3.7 times)
        assert image.shape == (z, y, x)
        np.testing.assert_array_equal(back, data)
        planes = sum(len(spec.encode(plane)) for plane in data.reshape(z, y, x))
        assert len(encoded) > 1.4 * planes, (len(encoded), planes)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("text", "dtype", "chunks"),
    [("lerc", "float32", (2, 8, 64, 64)), ("jpegxl", "uint16", (1, 8, 64, 64))],
)
def test_recompress_to_volume_chunks_reads_back_exactly(
    tmp_path: Path, text: str, dtype: str, chunks: tuple[int, ...], zarr_format: int
) -> None:
    from napari_zarr_explorer import testing
    from napari_zarr_explorer.recompress import recompress

    rng = np.random.default_rng(3)
    data = (rng.random((3, 16, 96, 80)) * 1000).astype(dtype)
    testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 96, 80))
    report = recompress(
        tmp_path / "src.zarr",
        tmp_path / "out.zarr",
        compressor=text,
        chunks=chunks,
        zarr_format=zarr_format,
    )
    assert report.ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on numcodecs codecs in v3
        out = zarr.open_array(tmp_path / "out.zarr", mode="r")
        assert out.chunks == chunks
        back = out[...]
    assert back.dtype == data.dtype
    np.testing.assert_array_equal(back, data)


def test_recompress_names_the_array_a_codec_cannot_encode(tmp_path: Path) -> None:
    # A hierarchy has many arrays: the refusal says which one, and what to choose instead.
    from napari_zarr_explorer.recompress import recompress

    src = tmp_path / "src.zarr"
    root = zarr.open_group(src, mode="w")
    root.create_array("floats", shape=(4, 32, 32), chunks=(1, 32, 32), dtype="f4")[:] = FLOATS
    root.create_array("ints", shape=(4, 32, 32), chunks=(1, 32, 32), dtype="u2")[:] = DATA
    with pytest.raises(CodecError) as info:
        recompress(src, tmp_path / "dst.zarr", compressor="bitround:7")
    msg = str(info.value)
    assert msg.startswith(f"{src}/ints: bitround works on floating-point data only"), msg
    assert "zstd:5" in msg, msg
    assert not (tmp_path / "dst.zarr").exists()
    with pytest.raises(CodecError, match=r"^Level '2': jpeg encodes 2-D images"):
        parse_compressor("jpeg").check_dtype("u1", chunks=(2, 64, 64), where="Level '2'")


# Chunks an image codec refuses, with size-1 dimensions where a user's array has them (after
# the samples, between the planes): the suggestion in the refusal must be chunks the same
# check accepts, keep the image (y, x and the samples) whole, and encode for real.
SUGGESTED = [
    # (spec, dtype, refused chunks, the chunks suggested)
    ("jpegxl", "u1", (2, 3, 64, 64, 3, 1), (1, 3, 64, 64, 3, 1)),
    ("jpegxl", "u1", (2, 3, 64, 1, 64, 1), (1, 3, 64, 1, 64, 1)),
    ("jpegxl", "u2", (2, 2, 4, 64), (1, 2, 4, 64)),
    ("lerc", "f4", (2, 3, 8, 64, 64, 1), (1, 3, 8, 64, 64, 1)),
    ("png", "u1", (2, 64, 64, 3, 1), (1, 64, 64, 3, 1)),
    ("png", "u2", (2, 3, 64, 64, 1), (1, 1, 64, 64, 1)),
    ("jpeg:quality=90", "u1", (2, 3, 64, 64, 3, 1), (1, 1, 64, 64, 3, 1)),
    ("jpeg2k", "u1", (4, 64, 1, 64, 1), (1, 64, 1, 64, 1)),
    ("jpeg:quality=90", "u1", (2, 70000, 1), (2, 4096, 1)),
    ("webp", "u1", (2, 64, 64, 3, 1), (1, 64, 64, 3, 1)),
    ("webp", "u1", (1, 64, 64), (1, 256, 256, 3)),  # no samples: an example of what encodes
]


@pytest.mark.parametrize(
    ("text", "dtype", "bad", "like"),
    SUGGESTED,
    ids=[f"{t}-{'x'.join(map(str, b))}" for t, _, b, _ in SUGGESTED],
)
def test_the_suggested_chunks_are_accepted_by_the_check(
    text: str, dtype: str, bad: tuple[int, ...], like: tuple[int, ...]
) -> None:
    import re

    spec = parse_compressor(text)
    with pytest.raises(CodecError) as info:
        spec.check_dtype(dtype, chunks=bad)
    msg = str(info.value)
    found = re.search(r"(?:chunks like|e\.g\.) ([0-9]+(?:,[0-9]+)*)", msg)
    assert found, msg
    suggested = tuple(int(c) for c in found[1].split(","))
    assert suggested == like, msg
    spec.check_dtype(dtype, chunks=suggested)
    if max(suggested) <= 4096:  # and it encodes: what comes back is what went in
        data = np.random.default_rng(3).integers(0, 200, suggested).astype(dtype)
        back = spec.decode(spec.encode(data), dtype, suggested)
        assert back.shape == suggested
        if spec.tolerance(dtype).bounded and not text.startswith("jpeg:"):
            np.testing.assert_array_equal(back, data)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("text", ["png", "jpeg2k", "webp"])
def test_samples_followed_by_size_1_dimensions_encode_exactly(text: str, zarr_format: int) -> None:
    # imagecodecs drops the size-1 dimensions of a chunk: (1, y, x, rgb, 1) is an RGB image.
    spec = parse_compressor(text)
    shape = (1, 64, 64, 3, 1)
    spec.check_dtype("uint8", chunks=shape, zarr_format=zarr_format)
    data = np.random.default_rng(4).integers(0, 200, shape).astype("uint8")
    np.testing.assert_array_equal(_zarr_bytes(spec, data, zarr_format), data)
