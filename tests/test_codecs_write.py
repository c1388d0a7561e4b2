"""Writing every imaging codec through recompress: read back exactly (or within the declared
error of a lossy codec), verified the way the report says, and described by ``inspect``.

Lossless codecs are written freely; lossy ones only when their lossy parameter is named.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

import napari_zarr_explorer as nze
from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.codec_spec import parse_compressor, register_zarr_codecs
from napari_zarr_explorer.errors import CodecError
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.recompress import recompress

imagecodecs_numcodecs = pytest.importorskip("imagecodecs.numcodecs")
RNG = np.random.default_rng(11)


def _image(shape: tuple[int, ...], dtype: str, hi: float) -> np.ndarray:
    """Smooth structure plus noise: what imaging codecs are made for, never constant."""
    yy, xx = np.mgrid[0 : shape[-2], 0 : shape[-1]]
    base = (np.sin(yy / 7.0) + np.cos(xx / 5.0) + 2) / 4 * hi
    planes = [np.roll(base, 3 * i, axis=1) for i in range(int(np.prod(shape[:-2])))]
    out = np.stack(planes).reshape(shape) + RNG.normal(0, hi / 100, size=shape)
    return np.clip(out, 0 if dtype[0] in "ub" else -hi, hi).astype(dtype)


@dataclass(frozen=True)
class W:
    """A codec spec, the data it writes, and the codec ids ``inspect`` must show."""

    spec: str
    dtype: str
    names: tuple[str, ...]
    hi: float = 200.0
    rgb: bool = False
    #: None: exact. A number: the declared absolute error (or relative for bitround).
    tol: float | None = None
    relative: bool = False
    #: True for lossy codecs that declare no error bound (only the stored bytes are verified).
    unbounded: bool = False


CASES = [
    # lossless: numcodecs filters and imagecodecs byte codecs in front of a compressor
    W("shuffle+zstd:5", "uint16", ("shuffle", "zstd"), hi=60000),
    W("bitshuffle+zstd:3", "uint16", ("imagecodecs_bitshuffle", "zstd"), hi=60000),
    W("blosc-zstd:level=5,shuffle=bit", "uint16", ("blosc",), hi=60000),
    W("delta+zstd:3", "int16", ("delta", "zstd"), hi=3000),
    W("delta+shuffle+lzw", "int32", ("delta", "shuffle", "imagecodecs_lzw"), hi=1e6),
    W("lzw", "uint16", ("imagecodecs_lzw",), hi=60000),
    W("zfpy", "float64", ("zfpy",), hi=1000.0),
    W("zfp:reversible", "float32", ("imagecodecs_zfp",), hi=1.0),
    # lossless image codecs (their default)
    W("png", "uint16", ("imagecodecs_png",), hi=60000),
    W("jpeg2k", "uint16", ("imagecodecs_jpeg2k",), hi=60000),
    W("jpegxl", "uint8", ("imagecodecs_jpegxl",)),
    W("lerc", "float32", ("imagecodecs_lerc",), hi=1.0),
    W("webp", "uint8", ("imagecodecs_webp",), rgb=True),
    # lossy, with a declared error: verified within it
    W("zfpy:tolerance=0.01", "float64", ("zfpy",), hi=1000.0, tol=0.01),
    W("lerc:maxerror=0.01", "float32", ("imagecodecs_lerc",), hi=1.0, tol=0.01),
    W("quantize:3+gzip:4", "float64", ("quantize", "gzip"), hi=10.0, tol=1e-3),
    W("bitround:10", "float32", ("bitround", "zstd"), hi=1.0, tol=2.0**-10, relative=True),
    W(
        "fixedscaleoffset:scale=100,astype=i4+delta+zstd",
        "float64",
        ("fixedscaleoffset", "delta", "zstd"),
        hi=1000.0,
        tol=0.005,
    ),
    # lossy without a declared bound: the stored bytes are verified, the error measured
    W("jpeg:95", "uint8", ("imagecodecs_jpeg",), unbounded=True),
    W("jpeg2k:psnr=60", "uint8", ("imagecodecs_jpeg2k",), unbounded=True),
    W("jpegxl:distance=1", "uint8", ("imagecodecs_jpegxl",), unbounded=True),
    W("webp:quality=90", "uint8", ("imagecodecs_webp",), rgb=True, unbounded=True),
    W("zfp:rate=16", "float32", ("imagecodecs_zfp",), hi=1.0, unbounded=True),
    W("zfpy:precision=20", "float64", ("zfpy",), hi=1000.0, unbounded=True),
]


def _id(case: W) -> str:
    return f"{case.spec}-{case.dtype}"


def _source(tmp_path: Path, case: W) -> tuple[Path, np.ndarray, tuple[int, ...]]:
    if case.rgb:
        data = np.moveaxis(_image((3, 64, 96), case.dtype, case.hi), 0, -1).copy()
        chunks: tuple[int, ...] = (32, 48, 3)
    else:
        data = _image((3, 64, 96), case.dtype, case.hi)
        chunks = (1, 32, 48)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=chunks)
    return src, data, chunks


def _close(got: np.ndarray, data: np.ndarray, case: W) -> None:
    if case.unbounded:
        assert np.abs(got.astype(float) - data.astype(float)).max() < case.hi / 5
    elif case.tol is None:
        np.testing.assert_array_equal(got, data)
    elif case.relative:
        np.testing.assert_allclose(got, data, rtol=case.tol, atol=0)
    else:
        np.testing.assert_allclose(got, data, atol=case.tol * (1 + 1e-6), rtol=0)


# imagecodecs' bitshuffle is written to Zarr v2 only (test_bitshuffle_filter_is_refused_for_zarr_v3)
WRITES = [
    pytest.param(case, fmt, id=f"{_id(case)}-v{fmt}")
    for case in CASES
    for fmt in (2, 3)
    if not (fmt == 3 and case.spec.startswith("bitshuffle"))
]


@pytest.mark.parametrize(("case", "zarr_format"), WRITES)
def test_recompress_writes_and_reads_back(
    tmp_path: Path, case: W, zarr_format: int, capsys: pytest.CaptureFixture[str]
) -> None:
    src, data, chunks = _source(tmp_path, case)
    out = tmp_path / "out.zarr"
    report = recompress(src, out, compressor=case.spec, chunks=chunks, zarr_format=zarr_format)
    assert report.ok and report.verified, report.mismatches
    spec = parse_compressor(case.spec)
    assert spec.is_lossy == (case.tol is not None or case.unbounded)
    # what the report promises, in words, JSON and text: never "exact" for a lossy codec
    text = str(report)
    if case.tol is None and not case.unbounded:
        assert report.verification == "exact"
        assert "OK, verified\n" in text + "\n" or text.splitlines()[0].endswith("OK, verified")
    elif case.unbounded:
        assert report.verification.startswith("stored bytes only")
        assert "declares no error bound" in text.splitlines()[0]
        assert report.max_error is not None and report.max_error > 0
    else:
        assert report.verification.startswith("within tolerance ")
        assert "verified within tolerance" in text.splitlines()[0]
        assert report.to_dict()["verification"] == report.verification
        assert report.max_error is not None
        bound = case.tol * (np.abs(data).max() if case.relative else 1)
        assert report.max_error <= bound * (1 + 1e-6)
    # zarr itself reads what we wrote (after registering the imagecodecs codecs we write)
    imagecodecs_numcodecs.register_codecs(verbose=False)
    register_zarr_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: numcodecs codecs are outside the v3 spec
        back = np.asarray(zarr.open_array(out, mode="r")[...])
    assert back.dtype == data.dtype
    _close(back, data, case)
    # and so does our reader, through its guarded decoding
    np.testing.assert_array_equal(np.asarray(open_layers(out)[0][0]), back)
    # the codec panel's data and inspect describe the chain we asked for, in order
    (arr,) = nze.inspect(out).arrays
    explicit = [c for c in arr.codecs if not c.implied and c.name not in ("bytes",)]
    names = tuple(c.name.removeprefix("numcodecs.") for c in explicit)
    if case.spec.startswith("blosc"):
        (blosc,) = explicit
        assert blosc.configuration["shuffle"] in (2, "bitshuffle")
    else:
        assert names == case.names, names
    roles = [c.role for c in arr.codecs]
    assert roles.count("array->bytes") == 1
    assert roles == sorted(roles, key=["array->array", "array->bytes", "bytes->bytes"].index)
    # inspect on the command line, as JSON and as text, shows the same chain
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (described,) = [a for a in _arrays(doc)]
    shown = [c["name"].removeprefix("numcodecs.") for c in described["codecs"]]
    assert [n for n in shown if n != "bytes"] == [
        c.name.removeprefix("numcodecs.") for c in explicit
    ]
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for c in explicit:
        assert c.short.split("(")[0] in text


# Zarr v2 metadata holds the options that were set, not every option the installed imagecodecs
# knows: imagecodecs 2026.11 lists options (webp "delay", jpeg2k "extrasample", png "primaries"...)
# that the codecs of imagecodecs 2026.3 refuse, so its arrays would not open there.
V2_CONFIGS = [
    ("png", "uint16", {"id": "imagecodecs_png"}, None),
    ("jpeg2k", "uint16", {"id": "imagecodecs_jpeg2k", "reversible": True, "level": 0}, None),
    (
        "jpeg2k:psnr=60",
        "uint8",
        {"id": "imagecodecs_jpeg2k", "reversible": False, "level": 60},
        None,
    ),
    ("jpegxl", "uint8", {"id": "imagecodecs_jpegxl", "lossless": True}, None),
    ("jpeg:95", "uint8", {"id": "imagecodecs_jpeg", "level": 95}, None),
    ("webp", "uint8", {"id": "imagecodecs_webp", "lossless": True}, None),
    ("lerc", "float32", {"id": "imagecodecs_lerc", "level": 0.0}, None),
    ("lzw", "uint16", {"id": "imagecodecs_lzw"}, None),
    (
        "bitshuffle+zstd:3",
        "uint16",
        {"id": "zstd", "level": 3},
        [{"id": "imagecodecs_bitshuffle", "itemsize": 2}],
    ),
]


@pytest.mark.parametrize(("text", "dtype", "compressor", "filters"), V2_CONFIGS)
def test_zarr_v2_metadata_holds_only_the_options_set(
    tmp_path: Path, text: str, dtype: str, compressor: dict, filters: list | None
) -> None:
    case = W(
        text,
        dtype,
        (),
        hi=60000 if dtype == "uint16" else 1.0 if dtype[0] == "f" else 200,
        rgb=text.startswith("webp"),
    )
    src, data, chunks = _source(tmp_path, case)
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=text, chunks=chunks, zarr_format=2).ok
    meta = json.loads((out / ".zarray").read_text())
    assert meta["compressor"] == compressor
    assert meta["filters"] == filters
    # and it reads back: zarr builds the codecs from these options alone
    register_zarr_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = np.asarray(zarr.open_array(out, mode="r")[...])
    if not parse_compressor(text).is_lossy:
        np.testing.assert_array_equal(back, data)


def _arrays(doc: dict) -> list[dict]:
    """The array entries of ``inspect --json``."""
    return [n for n in doc["nodes"] if n["kind"] == "array"]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_cli_writes_a_lossy_codec_only_when_named_and_inspect_shows_it(
    tmp_path: Path, zarr_format: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _image((2, 64, 96), "float32", 1.0)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    out = tmp_path / "out.zarr"
    code = main(
        [
            "recompress",
            str(src),
            str(out),
            "--compressor",
            "lerc:maxerror=0.001",
            "--chunks",
            "1,32,48",
            "--zarr-format",
            str(zarr_format),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["ok"] and doc["verification"] == "within tolerance 0.001 absolute"
    assert doc["compressor"] == "lerc:maxerror=0.001"
    assert main(["inspect", str(out), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    text = json.dumps(inspected)
    assert "imagecodecs_lerc" in text and '"level": 0.001' in text
    assert main(["inspect", str(out)]) == 0
    assert "imagecodecs_lerc(level=0.001" in capsys.readouterr().out
    # the same codec without its error parameter is lossless
    out2 = tmp_path / "lossless.zarr"
    assert main(["recompress", str(src), str(out2), "--compressor", "lerc", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verification"] == "exact"
    np.testing.assert_array_equal(np.asarray(open_layers(out2)[0][0]), data)


def test_lossy_is_never_a_default() -> None:
    assert not parse_compressor(None).is_lossy
    for name in ("png", "jpeg2k", "jpegxl", "lerc", "webp", "zfpy", "lzw", "delta+zstd"):
        assert not parse_compressor(name).is_lossy, name
    for name in ("jpeg", "zfp:rate=8", "bitround:7", "quantize:2", "fixedscaleoffset:scale=10"):
        assert parse_compressor(name).is_lossy, name


def test_verification_fails_beyond_the_declared_error(tmp_path: Path) -> None:
    # int8 cannot hold value * 100 for values up to 10: the stored integers wrap around, and
    # verification must say so instead of reporting a lossy success
    data = _image((1, 32, 32), "float64", 10.0)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 32))
    report = recompress(
        src,
        tmp_path / "out.zarr",
        compressor="fixedscaleoffset:scale=100,astype=i1+zstd",
        chunks=(1, 32, 32),
    )
    assert not report.ok
    assert any("declared error (0.005 absolute)" in m for m in report.mismatches)
    assert "FAILED VERIFICATION" in str(report)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("shuffle:2+zstd", "takes no options"),
        ("shuffle+bitshuffle+zstd", "either shuffle or bitshuffle"),
        ("png+shuffle", "byte shuffle cannot follow"),
        ("lzw:3", "takes no options"),
        ("zfpy:tolerance=0", "above 0"),
        ("zfpy:tolerance=0.1,rate=8", "exactly one"),
        ("fixedscaleoffset:offset=3", "scale=S"),
        ("fixedscaleoffset:scale=10,astype=c8", "not offered"),
        ("webp:quality=400", "from 0 to 100"),
        ("zfp:tolerance=0.1", "zfpy:tolerance"),
    ],
)
def test_spec_errors_say_what_to_write(text: str, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        parse_compressor(text)


def test_dtype_checks_name_the_codec() -> None:
    with pytest.raises(CodecError, match="delta is offered for integer data only"):
        parse_compressor("delta+zstd").check_dtype("float32")
    with pytest.raises(CodecError, match="webp encodes u1"):
        parse_compressor("webp").check_dtype("uint16")
    with pytest.raises(CodecError, match="floating-point"):
        parse_compressor("fixedscaleoffset:scale=10").check_dtype("int16")
    # fixedscaleoffset to integers then delta is the classic float pipeline
    parse_compressor("fixedscaleoffset:scale=10,astype=i2+delta+zstd").check_dtype("float32")


@pytest.mark.parametrize(
    "text",
    [
        "delta+shuffle+zstd:5",
        "bitshuffle+blosc-lz4:5",
        "fixedscaleoffset:astype=i2,offset=1.5,scale=10+delta+gzip:6",
        "zfpy:tolerance=0.001",
        "webp:quality=75",
        "lzw",
    ],
)
def test_labels_round_trip(text: str) -> None:
    spec = parse_compressor(text)
    assert spec.label == text
    assert parse_compressor(spec.label) == spec


def test_bitshuffle_filter_is_refused_for_zarr_v3(tmp_path: Path) -> None:
    data = _image((1, 32, 32), "uint16", 60000)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 32))
    with pytest.raises(CodecError, match="shuffle=bit"):
        recompress(src, tmp_path / "out.zarr", compressor="bitshuffle+zstd", zarr_format=3)
    assert not (tmp_path / "out.zarr").exists()


def test_image_codecs_check_the_chunk_shape_before_writing(tmp_path: Path) -> None:
    data = _image((2, 32, 32), "uint8", 200)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 32))
    with pytest.raises(CodecError, match="RGB or RGBA"):
        recompress(src, tmp_path / "a.zarr", compressor="webp", chunks=(1, 32, 32))
    with pytest.raises(CodecError, match="2-D images"):
        recompress(src, tmp_path / "b.zarr", compressor="png", chunks=(2, 32, 32))
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


def test_bytes_codec_class_is_built_on_zarrs_wrapper() -> None:
    # zarr.codecs.numcodecs._NumcodecsBytesBytesCodec (private): fails loudly if zarr moves it
    from zarr.abc.codec import BytesBytesCodec

    from napari_zarr_explorer import _compat

    cls = _compat.numcodecs_bytes_bytes_codec_class("Probe", "compat_probe_bytes")
    assert issubclass(cls, BytesBytesCodec)
    assert cls.codec_name == "numcodecs.compat_probe_bytes"


def test_v3_lzw_bomb_is_refused(tmp_path: Path) -> None:
    from napari_zarr_explorer.errors import ExplorerWarning

    data = _image((2, 32, 48), "uint16", 60000)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 24))
    out = tmp_path / "lzw.zarr"
    assert recompress(src, out, compressor="lzw", chunks=(1, 16, 24)).ok
    imagecodecs_numcodecs.register_codecs(verbose=False)
    bomb = imagecodecs_numcodecs.Lzw().encode(bytes(50_000_000))
    (out / "c" / "1" / "0" / "0").write_bytes(bomb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = np.asarray(open_layers(out)[0][0])
    assert (values[1, :16, :24] == 0).all()
    np.testing.assert_array_equal(values[0], data[0])
    messages = [str(w.message) for w in caught if w.category is ExplorerWarning]
    assert any("c/1/0/0" in m for m in messages), messages


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_delta_then_blosc_keeps_blosc_shuffling(tmp_path: Path, zarr_format: int) -> None:
    data = _image((2, 32, 48), "uint16", 60000)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    out = tmp_path / "out.zarr"
    spec = parse_compressor("delta+blosc-zstd:5")
    assert spec.shuffle_for("uint16") == "byte"
    assert parse_compressor("shuffle+blosc-zstd:5").shuffle_for("uint16") == "none"
    assert recompress(src, out, compressor=spec, chunks=(1, 32, 48), zarr_format=zarr_format).ok
    register_zarr_codecs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(zarr.open_array(out, mode="r")[...], data)


def test_the_v2_codec_of_an_image_codec_pickles() -> None:
    """Arrays handed to dask.distributed or to processes carry their codec pickled."""
    import pickle

    from napari_zarr_explorer.codec_spec import parse_compressor

    codec = parse_compressor("png").v2_compressor()
    again = pickle.loads(pickle.dumps(codec))
    assert again.get_config() == codec.get_config()
    assert again.get_config()["id"].endswith("png")


@pytest.mark.parametrize("spec", ["png", "jpeg2k", "lzw", "zfp:reversible"])
def test_zarr_v3_imagecodecs_arrays_open_without_a_warning(tmp_path: Path, spec: str) -> None:
    """``imagecodecs_NAME`` is imagecodecs' own Zarr 3 name, which other implementations read:
    opening and inspecting such an array warns about nothing (zarr 3.1 warned that numcodecs
    codecs may not be supported by other implementations, of the wrapper our codecs build on)."""
    dtype = "float32" if spec.startswith("zfp") else "uint16"
    data = _image((2, 64, 96), dtype, 1.0 if dtype == "float32" else 60000)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 32, 48))
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=spec, chunks=(1, 32, 48), zarr_format=3).ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = np.asarray(open_layers(out)[0][0])
        (arr,) = nze.inspect(out).arrays
    np.testing.assert_array_equal(got, data)
    assert f"imagecodecs_{spec.partition(':')[0]}" in [c.name for c in arr.codecs]
