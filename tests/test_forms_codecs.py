"""The Recompress form offers every writable codec, lossy ones labelled, without Qt."""

from __future__ import annotations

import pytest

from napari_zarr_explorer.codec_spec import parse_compressor
from napari_zarr_explorer.errors import ExplorerError

pytest.importorskip("ipywidgets")


@pytest.fixture
def form():
    from napari_zarr_explorer import forms
    from napari_zarr_explorer.jupyter import _ipywidgets_backend

    with _ipywidgets_backend():
        return forms.RecompressForm()


def test_every_codec_choice_builds_a_spec_and_lossy_ones_say_so(form) -> None:
    from napari_zarr_explorer.forms import CODECS

    assert form.codec.value == "" and form.compressor_text() == "zstd:3"
    assert not form.lossy_value.enabled
    for key, (label, lossy) in CODECS.items():
        form.codec.value = key
        spec = parse_compressor(form.compressor_text())
        assert spec.is_lossy == (lossy is not None), key
        assert ("LOSSY" in label) == spec.is_lossy, label
        assert form.lossy_value.enabled == (lossy is not None)
        if lossy is not None:
            assert form.lossy_name.value == lossy[1]
            assert form.lossy_value.value == lossy[2]
        # image and array codecs replace the compressor; filters keep it
        assert form.compressor.enabled == (not spec.is_serializer)
        # the form shows again what it built
        text = form.compressor_text()
        form.codec.value = ""
        form.set_compressor(text)
        assert form.compressor_text() == text


def test_lossy_setting_is_typed_and_checked(form) -> None:
    form.codec.value = "lerc:maxerror"
    form.lossy_value.value = "0.25"
    assert form.run_kwargs()["compressor"] == "lerc:maxerror=0.25"
    form.codec.value = "quantize:digits"
    form.set_compressor("quantize:digits=2+blosc-zstd:7")
    assert form.compressor_text() == "quantize:digits=2+blosc-zstd:7"
    form.lossy_value.value = "a little"
    with pytest.raises(ExplorerError, match="Digits 'a little' is not a number"):
        form.run_kwargs()
    form.set_compressor("shuffle+lzw")
    assert form.codec.value == "shuffle" and not form.level.enabled
    assert form.compressor_text() == "shuffle+lzw"
    with pytest.raises(ValueError, match="does not offer"):
        form.set_compressor("fixedscaleoffset:scale=10,astype=i2+delta+zstd")
