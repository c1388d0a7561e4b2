"""Icons in the napari theme's colours (napari's own SVG icons, recoloured)."""

from __future__ import annotations

from functools import lru_cache

from qtpy.QtGui import QIcon, QImage, QPixmap
from qtpy.QtWidgets import QApplication, QStyle

__all__ = ["icon"]

# node kind -> (napari icon name, or a Qt standard pixmap name)
_KIND_ICONS = {
    "image": "new_image",
    "field": "new_image",
    "series": "new_image",
    "label": "new_labels",
    "labels": "new_labels",
    "plate": "canvas-grid-view",
    "well": "square",
    "array": "rectangle",
    "level": "rectangle",
    "error": "error",
    "warning": "warning",
    "info": "info",
    "open": "new_image",
    "browse": "SP_DirOpenIcon",
    "group": "SP_DirIcon",
    "bioformats2raw": "SP_DirIcon",
    "refresh": "SP_BrowserReload",
    "stop": "SP_BrowserStop",
}


@lru_cache(maxsize=128)
def _napari_icon(name: str, color: str) -> QIcon | None:
    try:
        from napari.resources import get_icon_path
        from napari.resources._icons import get_colorized_svg

        svg = get_colorized_svg(get_icon_path(name), color)
    except Exception:  # an icon napari does not have (any more): the caller falls back
        return None
    image = QImage.fromData(svg.encode("utf-8"), "SVG")
    if image.isNull():
        return None
    return QIcon(QPixmap.fromImage(image))


def icon(kind: str, color: str = "#d1d2d4") -> QIcon:
    """Return the icon for a node *kind* (or an action), drawn in *color*."""
    name = _KIND_ICONS.get(kind, kind)
    if name.startswith("SP_"):
        app = QApplication.instance()
        style = app.style() if isinstance(app, QApplication) else None
        if style is not None:
            return style.standardIcon(getattr(QStyle.StandardPixmap, name))
        return QIcon()
    found = _napari_icon(name, color)
    return found if found is not None else QIcon()
