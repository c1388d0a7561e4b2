"""OME-NGFF (OME-Zarr) metadata: lenient parsing (:mod:`.model`); validation is in `.validate`."""

from __future__ import annotations

from napari_zarr_explorer.ome.model import (
    Acquisition,
    Axis,
    Dataset,
    ImageLabel,
    LabelColor,
    Multiscale,
    OmeMetadata,
    Omero,
    OmeroChannel,
    Plate,
    PlateWell,
    Well,
    WellImage,
    infer_axes,
    parse_ome,
)

__all__ = [
    "Acquisition",
    "Axis",
    "Dataset",
    "ImageLabel",
    "LabelColor",
    "Multiscale",
    "OmeMetadata",
    "Omero",
    "OmeroChannel",
    "Plate",
    "PlateWell",
    "Well",
    "WellImage",
    "infer_axes",
    "parse_ome",
]
