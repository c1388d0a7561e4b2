"""Every imaging codec: stores written by the library that provides the codec, read back exactly
(or within the codec's documented error), described correctly, and decoded under the size guard.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr

import napari_zarr_explorer as nze
from napari_zarr_explorer.errors import CodecError, ExplorerWarning
from napari_zarr_explorer.layers import open_layers

# the function: napari_zarr_explorer.recompress is also a sub-package
from napari_zarr_explorer.recompress import recompress
from napari_zarr_explorer.store import ChunkSizeError, open_array, parse_location
from napari_zarr_explorer.store.imaging import CODECS, bounded_decode

imagecodecs_numcodecs = pytest.importorskip("imagecodecs.numcodecs")
imagecodecs_numcodecs.register_codecs(verbose=False)
RNG = np.random.default_rng(7)


def _smooth(shape: tuple[int, ...], dtype: str, hi: float = 250.0) -> np.ndarray:
    """An image with structure (codecs like it) and noise (so nothing is trivially constant)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = (np.sin(yy / 7.0) + np.cos(xx / 5.0) + 2) / 4 * hi
    base = base + RNG.normal(0, hi / 50, size=base.shape)
    if len(shape) == 3:
        base = np.stack([np.roll(base, i, axis=1) for i in range(shape[2])], axis=-1)
    return np.clip(base, 0, hi).astype(dtype)


@dataclass
class Case:
    """A codec and the data it is tested on; ``tol`` None means exact."""

    codec_id: str
    data: np.ndarray
    chunks: tuple[int, ...]
    compressor: Any = None
    filters: list[Any] = field(default_factory=list)
    tol: float | None = None  # largest absolute error allowed (lossy codecs)
    zarr_format: int = 2
    v3_codecs: list[Any] | None = None


def _ic(name: str, **cfg: Any) -> Any:
    return numcodecs.get_codec({"id": f"imagecodecs_{name}", **cfg})


def _cases() -> list[Case]:
    u8 = _smooth((64, 96), "uint8")
    u16 = _smooth((64, 96), "uint16", hi=60000)
    rgb = _smooth((64, 96, 3), "uint8")
    f32 = _smooth((64, 96), "float32", hi=1.0)
    f64 = _smooth((64, 96), "float64", hi=1000.0)
    i16 = _smooth((64, 96), "int16", hi=3000)
    from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec
    from zarr.codecs import numcodecs as zn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that numcodecs codecs are not in the v3 spec
        v3_shuffle = [BytesCodec(), zn.Shuffle(elementsize=2), ZstdCodec()]
        v3_delta = [zn.Delta(dtype="<i2"), BytesCodec(), ZstdCodec()]
        v3_bitround = [zn.BitRound(keepbits=10), BytesCodec(), ZstdCodec()]
        v3_fso = [
            zn.FixedScaleOffset(offset=0, scale=100, dtype="<f8", astype="<f8"),
            BytesCodec(),
            ZstdCodec(),
        ]
        v3_quantize = [zn.Quantize(digits=3, dtype="<f8"), BytesCodec(), ZstdCodec()]
        v3_bitshuffle = [BytesCodec(), BloscCodec(cname="zstd", shuffle="bitshuffle")]
    cases = [
        Case("shuffle", u16, (32, 32), numcodecs.Zstd(), [numcodecs.Shuffle(elementsize=2)]),
        Case("shuffle", u16, (32, 32), zarr_format=3, v3_codecs=v3_shuffle),
        Case("bitshuffle", u16, (32, 32), numcodecs.Blosc(shuffle=numcodecs.Blosc.BITSHUFFLE)),
        Case("bitshuffle", u16, (32, 32), zarr_format=3, v3_codecs=v3_bitshuffle),
        Case(
            "imagecodecs_bitshuffle",
            u16,
            (32, 32),
            numcodecs.Zstd(),
            [_ic("bitshuffle", itemsize=2)],
        ),
        Case("delta", i16, (32, 32), numcodecs.Zstd(), [numcodecs.Delta(dtype="<i2")]),
        Case("delta", i16, (32, 32), zarr_format=3, v3_codecs=v3_delta),
        Case(
            "fixedscaleoffset",
            f64,
            (32, 32),
            numcodecs.Zstd(),
            [numcodecs.FixedScaleOffset(offset=0, scale=100, dtype="<f8", astype="<i4")],
            tol=0.5 / 100,
        ),
        Case("fixedscaleoffset", f64, (32, 32), zarr_format=3, v3_codecs=v3_fso, tol=0.5 / 100),
        Case(
            "quantize",
            f64,
            (32, 32),
            numcodecs.Zstd(),
            [numcodecs.Quantize(digits=3, dtype="<f8")],
            tol=1e-3,
        ),
        Case("quantize", f64, (32, 32), zarr_format=3, v3_codecs=v3_quantize, tol=1e-3),
        Case(
            "bitround",
            f32,
            (32, 32),
            numcodecs.Zstd(),
            [numcodecs.BitRound(keepbits=10)],
            tol=2.0**-10,  # relative to values <= 1
        ),
        Case("bitround", f32, (32, 32), zarr_format=3, v3_codecs=v3_bitround, tol=2.0**-10),
        Case("imagecodecs_jpeg", u8, (32, 48), _ic("jpeg", level=95), tol=40),
        Case("imagecodecs_jpeg", rgb, (32, 48, 3), _ic("jpeg", level=95), tol=60),
        Case("imagecodecs_jpeg2k", u8, (32, 48), _ic("jpeg2k", level=0, reversible=True)),
        Case("imagecodecs_jpeg2k", u16, (32, 48), _ic("jpeg2k", level=0, reversible=True)),
        Case("imagecodecs_jpegxl", u8, (32, 48), _ic("jpegxl", lossless=True)),
        Case("imagecodecs_jpegxl", u16, (32, 48), _ic("jpegxl", lossless=True)),
        Case("imagecodecs_png", u8, (32, 48), _ic("png")),
        Case("imagecodecs_png", u16, (32, 48), _ic("png")),
        Case("imagecodecs_webp", rgb, (32, 48, 3), _ic("webp", lossless=True)),
        # "reversible": the mode name both imagecodecs 2026.3 and 2026.10 encode with ("R" and
        # "REVERSIBLE" each work with only one of them)
        Case("imagecodecs_zfp", f32, (32, 48), _ic("zfp", mode="reversible")),
        Case("imagecodecs_lerc", f32, (32, 48), _ic("lerc", level=0.0)),
        Case("imagecodecs_lerc", u16, (32, 48), _ic("lerc", level=0.0)),
        Case("imagecodecs_lzw", u16, (32, 48), _ic("lzw")),
    ]
    try:
        import zfpy  # noqa: F401
        from numcodecs.zfpy import ZFPY
    except Exception:  # not installed: covered by test_missing_codecs_name_their_package
        pass
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v3_zfpy = [zn.ZFPY(mode=4, tolerance=-1, rate=-1, precision=-1)]
        cases += [
            Case("zfpy", f64, (32, 48), ZFPY()),  # reversible: no tolerance, rate or precision
            Case("zfpy", f64, (32, 48), ZFPY(tolerance=1e-2), tol=1e-2),
            Case("zfpy", f64, (32, 48), zarr_format=3, v3_codecs=v3_zfpy),
        ]
    return cases


CASES = _cases()


def _id(case: Case) -> str:
    lossy = "" if case.tol is None else "-lossy"
    rgb = "-rgb" if case.data.ndim == 3 else ""
    return f"{case.codec_id}-{case.data.dtype}{rgb}-v{case.zarr_format}{lossy}"


def _write(path: Path, case: Case) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's notes on codecs outside the v3 spec
        if case.zarr_format == 3:
            assert case.v3_codecs is not None
            arr = zarr.create_array(
                store=str(path),
                shape=case.data.shape,
                chunks=case.chunks,
                dtype=case.data.dtype,
                zarr_format=3,
                fill_value=0,
                serializer="auto",
                filters=None,
                compressors=None,
            )
            md = arr.metadata.to_dict()
            md["codecs"] = [c.to_dict() for c in case.v3_codecs]
            import json

            (path / "zarr.json").write_text(json.dumps(md))
            arr = zarr.open_array(str(path), mode="r+")
        else:
            arr = zarr.create_array(
                store=str(path),
                shape=case.data.shape,
                chunks=case.chunks,
                dtype=case.data.dtype,
                zarr_format=2,
                compressors=case.compressor,
                filters=case.filters or None,
                fill_value=0,
            )
        arr[...] = case.data
    return path


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_read_back(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path / "a.zarr", case)
    got = np.asarray(open_array(parse_location(path), "")[...])
    assert got.dtype == case.data.dtype
    if case.tol is None:
        np.testing.assert_array_equal(got, case.data)
    else:
        np.testing.assert_allclose(got, case.data, atol=case.tol, rtol=0)
        if case.codec_id.endswith("jpeg"):  # lossy, but close: PSNR of a good JPEG
            mse = np.mean((got.astype(float) - case.data.astype(float)) ** 2)
            assert 10 * np.log10(255**2 / mse) > 35
    # the reader's lazy path decodes through the same guarded pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplorerWarning)  # no chunk may fail
        layers = open_layers(path)
    data = np.asarray(layers[0][0])
    assert data.shape[:2] == case.data.shape[:2]


def test_zfp_store_with_an_abbreviated_mode_reads(tmp_path: Path) -> None:
    # imagecodecs before 2026.10 took (and stored) abbreviated zfp modes such as "R"; newer
    # releases encode only with full names, but a stored "R" must still read: the mode is not
    # needed to decode a stream with a header.
    case = Case("imagecodecs_zfp", _smooth((32, 48), "float32"), (16, 24), _ic("zfp", mode=5))
    path = _write(tmp_path / "a.zarr", case)
    import json

    meta = json.loads((path / ".zarray").read_text())
    meta["compressor"]["mode"] = "R"
    (path / ".zarray").write_text(json.dumps(meta))
    np.testing.assert_array_equal(np.asarray(open_array(parse_location(path), "")[...]), case.data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplorerWarning)
        ((data, _, _),) = open_layers(path)
        np.testing.assert_array_equal(np.asarray(data), case.data)
    (arr,) = nze.inspect(path).arrays
    assert [c.name.removeprefix("numcodecs.") for c in arr.codecs] == ["imagecodecs_zfp"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_described_in_inspect(tmp_path: Path, case: Case) -> None:
    path = _write(tmp_path / "a.zarr", case)
    (arr,) = nze.inspect(path).arrays
    names = [c.name.removeprefix("numcodecs.") for c in arr.codecs]
    key = case.codec_id
    if key == "bitshuffle":  # blosc with its bit-shuffle setting
        (blosc,) = [c for c in arr.codecs if c.name.endswith("blosc")]
        assert blosc.configuration["shuffle"] in (2, "bitshuffle")
        return
    assert key in names, names
    (codec,) = [c for c in arr.codecs if c.name.removeprefix("numcodecs.") == key]
    assert codec.role == CODECS[key].role
    roles = [c.role for c in arr.codecs]
    assert roles.count("array->bytes") == 1  # one serializer, as in a v3 chain
    assert roles == sorted(roles, key=["array->array", "array->bytes", "bytes->bytes"].index)


# ---------------------------------------------------------------- the size guard


def _replace_chunk(path: Path, key: str, data: bytes) -> None:
    (path / key).write_bytes(data)


@pytest.mark.parametrize(
    ("codec", "dtype"),
    [
        ("png", "uint8"),
        ("jpeg2k", "uint8"),
        ("jpegxl", "uint8"),
        ("jpeg", "uint8"),
        ("lerc", "float32"),
        ("zfp", "float32"),
    ],
)
def test_image_declaring_more_pixels_than_its_chunk_is_refused(
    tmp_path: Path, codec: str, dtype: str
) -> None:
    cfg: dict[str, Any] = {
        "png": {},
        "jpeg2k": {"level": 0, "reversible": True},
        "jpegxl": {"lossless": True},
        "jpeg": {"level": 90},
        "lerc": {"level": 0.0},
        "zfp": {"mode": "reversible"},
    }[codec]
    case = Case(f"imagecodecs_{codec}", _smooth((32, 48), dtype), (16, 24), _ic(codec, **cfg))
    path = _write(tmp_path / "a.zarr", case)
    big = _smooth((3000, 3000), dtype)
    _replace_chunk(path, "1.1", _ic(codec, **cfg).encode(big))
    with pytest.raises(ChunkSizeError, match="more than the"):
        bounded_decode(_ic(codec, **cfg), (path / "1.1").read_bytes(), 16 * 24 * big.itemsize)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ((data, _, _),) = open_layers(path)
        values = np.asarray(data)
    assert (values[16:, 24:] == 0).all()  # shown as the fill value
    assert values[:16, :24].any()
    assert any("1.1" in str(w.message) for w in caught if w.category is ExplorerWarning)


def test_lzw_bomb_is_refused(tmp_path: Path) -> None:
    case = Case("imagecodecs_lzw", _smooth((32, 48), "uint16"), (16, 24), _ic("lzw"))
    path = _write(tmp_path / "a.zarr", case)
    _replace_chunk(path, "0.0", _ic("lzw").encode(bytes(50_000_000)))
    with pytest.raises(ChunkSizeError):
        bounded_decode(_ic("lzw"), (path / "0.0").read_bytes(), 16 * 24 * 2)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ((data, _, _),) = open_layers(path)
        assert (np.asarray(data)[:16, :24] == 0).all()


def test_zfpy_header_declaring_a_huge_array_is_refused(tmp_path: Path) -> None:
    zfpy_mod = pytest.importorskip("numcodecs.zfpy")
    case = Case("zfpy", _smooth((32, 48), "float64"), (16, 24), zfpy_mod.ZFPY())
    path = _write(tmp_path / "a.zarr", case)
    hostile = zfpy_mod.ZFPY().encode(np.zeros((4000, 4000)))
    _replace_chunk(path, "0.1", hostile)
    with pytest.raises(ChunkSizeError, match="128000000 bytes"):
        bounded_decode(zfpy_mod.ZFPY(), hostile, 16 * 24 * 8)
    with pytest.raises(ChunkSizeError):  # no zfp header at all: refused rather than guessed
        bounded_decode(zfpy_mod.ZFPY(), b"\0" * 64, 16 * 24 * 8)


# ---------------------------------------------------------------- unavailable codecs


@pytest.mark.parametrize(
    ("codec_id", "package"),
    [("sz3", "pysz3"), ("imagecodecs_nosuchcodec", "imagecodecs"), ("pcodec", "pcodec")],
)
def test_missing_codecs_name_their_package(tmp_path: Path, codec_id: str, package: str) -> None:
    import json

    path = tmp_path / "a.zarr"
    path.mkdir()
    (path / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [4, 4],
                "chunks": [4, 4],
                "dtype": "<u2",
                "compressor": {"id": codec_id},
                "filters": None,
                "fill_value": 0,
                "order": "C",
            }
        )
    )
    try:
        numcodecs.get_codec({"id": codec_id})
    except Exception:
        pass
    else:
        pytest.skip(f"{codec_id} is installed here")
    with pytest.raises(CodecError, match=package) as info:
        open_array(parse_location(path), "")
    assert codec_id in str(info.value)


# ---------------------------------------------------------------- writing (recompress)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("spec", "dtype", "tol"),
    [
        ("png", "uint16", 0),
        ("png", "uint8", 0),
        ("jpeg2k", "uint16", 0),
        ("jpegxl", "uint8", 0),
        ("lerc", "float32", 0),
        ("lerc:maxerror=0.01", "float32", 0.01),
        ("jpeg:95", "uint8", 40),
        ("jpegxl:distance=1", "uint8", 40),
    ],
)
def test_recompress_writes_image_codecs(
    tmp_path: Path, spec: str, dtype: str, tol: float, zarr_format: int
) -> None:
    from napari_zarr_explorer import testing
    from napari_zarr_explorer.codec_spec import parse_compressor

    hi = 1.0 if dtype == "float32" else 200.0
    data = np.stack([_smooth((64, 96), dtype, hi=hi) for _ in range(3)])
    testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    report = recompress(
        tmp_path / "src.zarr",
        tmp_path / "out.zarr",
        compressor=spec,
        chunks=(1, 32, 48),
        zarr_format=zarr_format,
    )
    assert report.ok
    assert parse_compressor(spec).is_lossy == (tol > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note on numcodecs codecs in v3
        back = zarr.open_array(tmp_path / "out.zarr", mode="r")[...]  # zarr itself reads it
    if tol:
        np.testing.assert_allclose(back, data, atol=tol, rtol=0)
    else:
        np.testing.assert_array_equal(back, data)
    np.testing.assert_array_equal(np.asarray(open_layers(tmp_path / "out.zarr")[0][0]), back)
    (arr,) = nze.inspect(tmp_path / "out.zarr").arrays
    codec_name = spec.split(":")[0]
    (serializer,) = [c for c in arr.codecs if c.role == "array->bytes"]
    assert serializer.name.removeprefix("numcodecs.") == f"imagecodecs_{codec_name}"


def test_image_codec_choices_are_checked() -> None:
    from napari_zarr_explorer.codec_spec import parse_compressor

    with pytest.raises(CodecError, match="png takes no options"):
        parse_compressor("png:9")
    with pytest.raises(CodecError, match="cannot be combined with zstd"):
        parse_compressor("png+zstd:3")
    with pytest.raises(CodecError, match="quality must be from 1 to 100"):
        parse_compressor("jpeg:quality=400")
    with pytest.raises(CodecError, match="encodes u1 data only"):
        parse_compressor("jpeg:90").check_dtype("uint16")
    assert parse_compressor("jpeg2k:reversible").label == "jpeg2k"
    assert parse_compressor("lerc:maxerror=0.5").label == "lerc:maxerror=0.5"
    assert not parse_compressor("jpegxl").is_lossy


def test_v3_image_codec_chunk_declaring_more_pixels_is_refused(tmp_path: Path) -> None:
    from napari_zarr_explorer import testing

    data = np.stack([_smooth((32, 48), "uint8") for _ in range(2)])
    testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 24))
    recompress(tmp_path / "src.zarr", tmp_path / "png.zarr", compressor="png", chunks=(1, 16, 24))
    key = tmp_path / "png.zarr" / "c" / "1" / "1" / "1"
    assert key.exists()
    key.write_bytes(_ic("png").encode(_smooth((3000, 3000), "uint8")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ((layer, _, _),) = open_layers(tmp_path / "png.zarr")
        values = np.asarray(layer)
    assert (values[1, 16:, 24:] == 0).all()
    np.testing.assert_array_equal(values[0], data[0])
    messages = [str(w.message) for w in caught if w.category is ExplorerWarning]
    assert any("c/1/1/1" in m and "more than the" in m for m in messages), messages
