"""The magicgui forms, on magicgui's ipywidgets backend (no Qt): values, user edits, parsing."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")


@pytest.fixture
def forms():
    from napari_zarr_explorer import forms
    from napari_zarr_explorer.jupyter import _ipywidgets_backend

    class Built:
        def __init__(self) -> None:
            with _ipywidgets_backend():
                self.recompress = forms.RecompressForm()
                self.chunks = forms.ChunkMapForm()
                self.open = forms.OpenForm()

    return Built()


def test_suggestions_never_overwrite_what_the_user_typed(forms) -> None:
    form = forms.recompress
    form.suggest(output="/data/a-recompressed.zarr", chunks="1,256,256", shards="1,2048,2048")
    assert form.output.value == "/data/a-recompressed.zarr" and not form.edited
    form.chunks.native.value = "1,64,64"  # typed in the browser
    form.suggest(output="/data/b-recompressed.zarr", chunks="1,128,128", shards="1,512,512")
    assert form.chunks.value == "1,64,64"
    assert form.output.value == "/data/b-recompressed.zarr"
    assert form.shards.value == "1,512,512"
    assert form.edited == {"chunks"}
    form.forget("chunks")
    form.suggest(chunks="1,128,128")
    assert form.chunks.value == "1,128,128"


def test_recompress_choices(forms) -> None:
    from napari_zarr_explorer.errors import ExplorerError

    form = forms.recompress
    form.set_compressor("blosc-lz4:7")
    form.shuffle.value = "bit"
    form.chunks.value = "1x64x64"
    form.shards.value = "none"
    kwargs = form.run_kwargs()
    assert kwargs["compressor"] == "blosc-lz4:7" and kwargs["shuffle"] == "bit"
    assert kwargs["chunks"] == (1, 64, 64) and kwargs["shards"] == "none"
    form.compressor.value = "gzip"  # no shuffle for gzip, its own level range
    assert form.compressor_text() == "gzip:6" and form.shuffle_value() is None
    assert not form.shuffle.enabled
    form.zarr_format.value = 2
    assert not form.shards.enabled and form.run_kwargs()["shards"] == "none"
    candidates = form.candidates()
    assert candidates[0]["compressor"] == "gzip:6" and len(candidates) >= 4
    form.chunks.value = "1,many"
    with pytest.raises(ExplorerError, match="not a list of integers"):
        form.run_kwargs()


def test_chunk_map_levels_and_open_box(forms) -> None:
    form = forms.chunks
    form.set_levels(["img/0", "img/1"])
    assert form.level.value == 0 and len(form.level.choices) == 2
    assert form.mode.value == "state" and form.chunk_lines.value and not form.verify.value
    assert not form.edited
    forms.open.location.value = "s3://bucket/image.zarr"
    assert forms.open.location.value == "s3://bucket/image.zarr"
