"""Dock widgets for napari (Qt). Imported only by napari or the ``demo`` command."""
