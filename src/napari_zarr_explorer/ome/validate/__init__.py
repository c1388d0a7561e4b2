"""Validate OME-NGFF metadata and the Zarr hierarchy it describes.

The rules are applied to the raw JSON, never to a lenient parse of it, so that every problem is
reported at its place: each :class:`ValidationMessage` names the node, the metadata document and
a JSON pointer into that document (``/attributes/ome/multiscales/0/axes/2/type``).

What is checked:

* OME-NGFF 0.4 (top-level keys of ``.zattrs``), 0.5 (the ``ome`` object of ``zarr.json``) and, where
  the draft is settled, 0.6 (coordinate systems): images (``multiscales``, ``omero``), labels
  (``labels``, ``image-label``), plates, wells and bioformats2raw containers. The official JSON
  schemas are followed exactly; rules of the specification text that the schemas cannot express
  are added (unique names, one scale per level, axis order...).
* For a store: the hierarchy is walked through the OME metadata (image -> levels and labels,
  plate -> wells -> fields, bioformats2raw -> series) and Zarr sanity is checked: dataset paths
  stay inside the store and resolve to arrays, array ranks match the axes and transformations,
  levels shrink, label images are integers. A corrupt document or a bad array is reported and the
  walk goes on with the rest of the hierarchy.

With ``strict=True`` the "strict" schemas of the specification apply too (names, types and
metadata of images; plate names; versions in 0.4) and some recommendations become errors (units
from the specification's list, one transformation value per axis).

The rules are kept per version, as in ome-zarr-models: :mod:`.common` (the report and what the
versions share), :mod:`.v04`, :mod:`.v05`, :mod:`.v06`; :mod:`._store` walks a store.
"""

from __future__ import annotations

from napari_zarr_explorer.ome.validate._store import validate
from napari_zarr_explorer.ome.validate.common import (
    MAX_JSON_BYTES,
    MAX_OME_XML_BYTES,
    SPACE_UNITS,
    TIME_UNITS,
    ValidationMessage,
    ValidationReport,
)

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_OME_XML_BYTES",
    "SPACE_UNITS",
    "TIME_UNITS",
    "ValidationMessage",
    "ValidationReport",
    "validate",
]
