"""``python -m napari_zarr_explorer``: the command line."""

from napari_zarr_explorer.cli import main

raise SystemExit(main())
