"""The napari sample-data contribution: the generated multichannel 3-D OME-Zarr 0.5 pyramid."""

from __future__ import annotations

from typing import Any

__all__ = ["make_sample_data"]


def make_sample_data() -> list[tuple[Any, dict[str, Any], str]]:
    """Return layer data of the built-in sample, generating it into the cache on first use."""
    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.testing import sample_path

    return open_layers(str(sample_path()))
