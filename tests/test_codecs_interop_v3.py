"""Zarr v3 imagecodecs codecs across implementations: imagecodecs' own Zarr 3 codecs
(``imagecodecs.zarr``, names ``imagecodecs_NAME``) read what recompress writes, and our reader
reads what they write.

Each side runs in its own process, so that neither registry sees the other's classes. Our side
(recompress, open_layers) runs in this interpreter, on either stack. imagecodecs' side runs in
an environment of its own (imagecodecs with Zarr 3 codecs, 2026.8 and later, needs Python 3.12
or newer), built once under ``.interop-cache/`` like the interoperability matrix's, so both legs
of ``./dev test``, Python 3.11 included, run every test here.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from cachelock import Background
from napari_zarr_explorer import testing
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.recompress import recompress
from peerenv import Env, NoInterpreter, env_python, interpreter

pytest.importorskip("imagecodecs")  # our side writes and reads through it

#: imagecodecs' side: its Zarr 3 codecs with the zarr-python they are written for.
PACKAGES = ("imagecodecs==2026.11.11", "zarr==3.4.2")
#: Pythons it may run on, the newest first (imagecodecs 2026.5 and later need 3.12).
PYTHONS = ("3.13", "3.12")


def _imagecodecs_env() -> Env:
    for version in PYTHONS:
        try:
            interpreter(version)
        except NoInterpreter:
            continue
        key = f"imagecodecs-{PACKAGES[0].partition('==')[2]}-py{version}"
        return Env(key, version, PACKAGES)
    raise NoInterpreter(
        f"imagecodecs' Zarr 3 codecs need Python >= 3.12 and none was found (tried "
        f"{', '.join(PYTHONS)} in pyenv and on the PATH); install one, e.g. `pyenv install 3.13`"
    )


def _build() -> None:
    env_python(_imagecodecs_env())


_PREBUILD = Background(_build)


def prebuild() -> None:
    """Start building imagecodecs' environment when the run has collected a test of this module."""
    _PREBUILD.start()


@pytest.fixture(scope="session")
def imagecodecs_python() -> Path:
    """The interpreter of imagecodecs' environment (built by :func:`prebuild`, or now).

    Without a Python 3.12+ the tests fail in CI and are skipped, saying why, elsewhere.
    """
    try:
        _PREBUILD.result()
    except NoInterpreter as exc:
        missing = str(exc)
    else:
        return env_python(_imagecodecs_env())  # built: only looked up
    if os.environ.get("CI"):
        pytest.fail(missing, pytrace=False)
    pytest.skip(missing)


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


def _run(python: Path, code: str) -> str:
    """Run *code* on imagecodecs' side: its environment, none of our sources on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _assert_imagecodecs_reads(
    python: Path, out: Path, want: np.ndarray, tol: float, tmp_path: Path
) -> None:
    """zarr-python with imagecodecs' own Zarr 3 codecs reads *out* as *want* (error <= *tol*)."""
    np.save(tmp_path / "want.npy", want)
    _run(
        python,
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
        """,
    )


@pytest.mark.parametrize(("spec", "dtype", "tol"), SPECS, ids=[s for s, _, _ in SPECS])
def test_imagecodecs_zarr3_codecs_read_what_we_write(
    imagecodecs_python: Path, tmp_path: Path, spec: str, dtype: str, tol: float
) -> None:
    rgb = spec.startswith("webp")
    data = _data(dtype, rgb)
    chunks = (32, 48, 3) if rgb else (1, 32, 48)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=chunks)
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=spec, chunks=chunks, zarr_format=3).ok
    names = [c["name"] for c in json.loads((out / "zarr.json").read_text())["codecs"]]
    assert f"imagecodecs_{spec.partition(':')[0]}" in names
    _assert_imagecodecs_reads(imagecodecs_python, out, data, tol, tmp_path)


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
    imagecodecs_python: Path, tmp_path: Path, codec: str, dtype: str, config: dict
) -> None:
    data = _data(dtype, rgb=False)
    np.save(tmp_path / "data.npy", data)
    out = tmp_path / "theirs.zarr"
    _run(
        imagecodecs_python,
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
        """,
    )
    with warnings.catch_warnings():
        # no warning: every chunk decodes, and nothing says imagecodecs' names are not read
        # by other implementations (zarr 3.1 said so of the numcodecs wrapper we build on)
        warnings.simplefilter("error")
        got = np.asarray(open_layers(out)[0][0])
    np.testing.assert_array_equal(got, data)


@pytest.mark.parametrize(
    ("spec", "dtype", "chunks"),
    [("lerc", "float32", (2, 8, 64, 64)), ("jpegxl", "uint16", (1, 8, 64, 64))],
    ids=["lerc-2x8x64x64", "jpegxl-1x8x64x64"],
)
def test_imagecodecs_zarr3_codecs_read_volume_chunks_we_write(
    imagecodecs_python: Path, tmp_path: Path, spec: str, dtype: str, chunks: tuple[int, ...]
) -> None:
    data = (np.random.default_rng(3).random((3, 16, 96, 80)) * 1000).astype(dtype)
    src = testing.write_array(tmp_path / "src.zarr", data, chunks=(1, 16, 96, 80))
    out = tmp_path / "out.zarr"
    assert recompress(src, out, compressor=spec, chunks=chunks, zarr_format=3).ok
    _assert_imagecodecs_reads(imagecodecs_python, out, data, 0.0, tmp_path)
