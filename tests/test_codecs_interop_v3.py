"""Zarr v3 imagecodecs codecs across implementations: imagecodecs' own Zarr 3 codecs
(``imagecodecs.zarr``, names ``imagecodecs_NAME``) read what recompress writes, and our reader
reads what they write.

Each side runs in its own process, so that neither registry sees the other's classes. Needs an
imagecodecs with Zarr 3 codecs (2026.8 and later); older ones skip with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.recompress import recompress

pytest.importorskip("imagecodecs")
try:
    import imagecodecs.zarr  # noqa: F401
except ImportError:
    pytest.skip(
        "this imagecodecs has no Zarr 3 codecs (imagecodecs.zarr, 2026.8 and later)",
        allow_module_level=True,
    )

# spec, dtype, largest error allowed (0: exact)
SPECS = [
    ("png", "uint16", 0.0),
    ("jpeg2k", "uint16", 0.0),
    ("jpegxl", "uint8", 0.0),
    ("lerc", "float32", 0.0),
    ("lerc:maxerror=0.01", "float32", 0.01),
    ("zfp:reversible", "float32", 0.0),
    ("webp", "uint8", 0.0),
    ("lzw", "uint16", 0.0),
    ("jpeg:95", "uint8", 40.0),
]


def _data(dtype: str, rgb: bool) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:96]
    hi = 1.0 if dtype == "float32" else 200.0
    base = (np.sin(yy / 7.0) + np.cos(xx / 5.0) + 2) / 4 * hi
    planes = np.stack([np.roll(base, 5 * i, axis=1) for i in range(3)])
    return (np.moveaxis(planes, 0, -1) if rgb else planes).astype(dtype)


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _assert_imagecodecs_reads(out: Path, want: np.ndarray, tol: float, tmp_path: Path) -> None:
    """zarr-python with imagecodecs' own Zarr 3 codecs reads *out* as *want* (error <= *tol*)."""
    np.save(tmp_path / "want.npy", want)
    _run(
        f"""
        import warnings
        warnings.simplefilter("ignore")
        import numpy as np, zarr
        import imagecodecs.zarr
        imagecodecs.zarr.register_codecs(verbose=False)
        got = zarr.open_array({str(out)!r}, mode="r")[...]
        want = np.load({str(tmp_path / "want.npy")!r})
        assert got.dtype == want.dtype and got.shape == want.shape
        if {tol!r} == 0:
            assert np.array_equal(got, want)
        else:
            err = np.abs(got.astype(float) - want.astype(float)).max()
            assert err <= {tol!r} * (1 + 1e-6), err
        """
    )


@pytest.mark.parametrize(("spec", "dtype", "tol"), SPECS, ids=[s for s, _, _ in SPECS])
def test_imagecodecs_zarr3_codecs_read_what_we_write(
    tmp_path: Path, spec: str, dtype: str, tol: float
) -> None:
    rgb = spec.startswith("webp")
    data = _data(dtype, rgb)
    chunks = (32, 48, 3) if rgb else (1, 32, 48)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=chunks)
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=spec, chunks=chunks, zarr_format=3).ok
    names = [c["name"] for c in json.loads((out / "zarr.json").read_text())["codecs"]]
    assert f"imagecodecs_{spec.partition(':')[0]}" in names
    _assert_imagecodecs_reads(out, data, tol, tmp_path)


@pytest.mark.parametrize(
    ("codec", "dtype", "config"),
    [
        ("Png", "uint16", {}),
        ("Jpeg2k", "uint16", {"level": 0, "reversible": True}),
        ("Jpegxl", "uint8", {"lossless": True}),
        ("Lerc", "float32", {"level": 0.0}),
        ("Zfp", "float32", {"mode": "REVERSIBLE"}),
    ],
)
def test_we_read_what_imagecodecs_zarr3_codecs_write(
    tmp_path: Path, codec: str, dtype: str, config: dict
) -> None:
    data = _data(dtype, rgb=False)
    np.save(tmp_path / "data.npy", data)
    out = tmp_path / "theirs.zarr"
    _run(
        f"""
        import warnings
        warnings.simplefilter("ignore")
        import numpy as np, zarr
        import imagecodecs.zarr as icz
        icz.register_codecs(verbose=False)
        data = np.load({str(tmp_path / "data.npy")!r})
        arr = zarr.create_array({str(out)!r}, shape=data.shape, chunks=(1, 32, 48),
                                dtype=data.dtype, serializer=icz.{codec}(**{config!r}),
                                compressors=None, fill_value=0)
        arr[...] = data
        """
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no chunk may fail to decode
        got = np.asarray(open_layers(out)[0][0])
    np.testing.assert_array_equal(got, data)


@pytest.mark.parametrize(
    ("spec", "dtype", "chunks"),
    [("lerc", "float32", (2, 8, 64, 64)), ("jpegxl", "uint16", (1, 8, 64, 64))],
    ids=["lerc-2x8x64x64", "jpegxl-1x8x64x64"],
)
def test_imagecodecs_zarr3_codecs_read_volume_chunks_we_write(
    tmp_path: Path, spec: str, dtype: str, chunks: tuple[int, ...]
) -> None:
    data = (np.random.default_rng(3).random((3, 16, 96, 80)) * 1000).astype(dtype)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 96, 80))
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=spec, chunks=chunks, zarr_format=3).ok
    _assert_imagecodecs_reads(out, data, 0.0, tmp_path)
