"""Open, inspect and re-encode Zarr and OME-Zarr data.

Importing this package is cheap and never imports Qt or napari: the public functions are loaded
on first use.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "inspect": "napari_zarr_explorer.report",
    "StoreReport": "napari_zarr_explorer.report",
    "ArrayReport": "napari_zarr_explorer.report",
    "GroupReport": "napari_zarr_explorer.report",
    "chunk_map": "napari_zarr_explorer.chunks",
    "ChunkMap": "napari_zarr_explorer.chunks",
    "validate": "napari_zarr_explorer.ome.validate",
    "ValidationReport": "napari_zarr_explorer.ome.validate",
    "estimate": "napari_zarr_explorer.estimate",
    "EstimateReport": "napari_zarr_explorer.estimate",
    "recompress": "napari_zarr_explorer.recompress",
    "RecompressReport": "napari_zarr_explorer.recompress",
    "open_layers": "napari_zarr_explorer.layers",
    "open_pyramid": "napari_zarr_explorer.pyramid",
    "save": "napari_zarr_explorer.writer",
    "open_datatree": "napari_zarr_explorer.datatree",
    "to_napari_kwargs": "napari_zarr_explorer.datatree",
    "explore": "napari_zarr_explorer.jupyter",
}

__all__ = [
    "ArrayReport",
    "ChunkMap",
    "EstimateReport",
    "GroupReport",
    "RecompressReport",
    "StoreReport",
    "ValidationReport",
    "__version__",
    "chunk_map",
    "estimate",
    "explore",
    "inspect",
    "open_datatree",
    "open_layers",
    "open_pyramid",
    "recompress",
    "save",
    "to_napari_kwargs",
    "validate",
]

if TYPE_CHECKING:  # pragma: no cover
    from napari_zarr_explorer.chunks import ChunkMap, chunk_map
    from napari_zarr_explorer.datatree import open_datatree, to_napari_kwargs
    from napari_zarr_explorer.estimate import EstimateReport, estimate
    from napari_zarr_explorer.jupyter import explore
    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.ome.validate import ValidationReport, validate
    from napari_zarr_explorer.pyramid import open_pyramid
    from napari_zarr_explorer.recompress import RecompressReport, recompress
    from napari_zarr_explorer.report import ArrayReport, GroupReport, StoreReport, inspect
    from napari_zarr_explorer.writer import save


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_zarr_explorer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


class _Package(types.ModuleType):
    """The package module: public functions win over submodules of the same name.

    ``estimate`` and ``recompress`` are public functions and also modules of this package. Once
    any code imports such a module, the import system sets the package attribute to the module;
    reading the attribute still gives the function.
    """

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            return getattr(value, name)
        return value


sys.modules[__name__].__class__ = _Package
