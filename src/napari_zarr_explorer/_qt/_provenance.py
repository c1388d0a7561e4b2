"""Where a napari layer's data comes from: read from (and written to) ``layer.metadata``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["OVERLAY_KEY", "PROVENANCE_KEY", "Provenance", "is_overlay", "provenance_of"]

PROVENANCE_KEY = "napari_zarr_explorer"
OVERLAY_KEY = "napari_zarr_explorer_overlay"


@dataclass(frozen=True, slots=True)
class Provenance:
    """The store, node and arrays a layer shows.

    Attributes
    ----------
    url
        The store's URL or local path.
    path
        Store-relative path of the node the layer was opened from (an image group, an array).
    levels
        Store-relative path of the array of each pyramid level (one entry when not multiscale).
    channel_axis
        Axis of the stored arrays that napari split into one layer per channel, if any.
    channel
        Index along ``channel_axis`` that this layer shows.
    """

    url: str
    path: str
    levels: tuple[str, ...]
    channel_axis: int | None = None
    channel: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form stored in ``layer.metadata``."""
        return {
            "url": self.url,
            "path": self.path,
            "levels": list(self.levels),
            "channel_axis": self.channel_axis,
            "channel": self.channel,
        }


def _join(base: str, rel: str) -> str:
    parts = [p for p in f"{base}/{rel}".split("/") if p]
    return "/".join(parts)


def _from_mapping(m: Mapping[str, Any]) -> Provenance | None:
    url = m.get("url") or m.get("source_url")
    if not isinstance(url, str) or not url:
        return None
    path = m.get("path", m.get("node_path", ""))
    path = path if isinstance(path, str) else ""
    raw_levels: Any = m.get("levels", m.get("level_paths"))
    levels: tuple[str, ...]
    if isinstance(raw_levels, Sequence) and not isinstance(raw_levels, str) and raw_levels:
        items = [(lv.get("path") if isinstance(lv, Mapping) else lv) for lv in raw_levels]
        levels = tuple(s for s in items if isinstance(s, str))
    else:
        levels = (path,)
    channel_axis = m.get("channel_axis")
    axes = m.get("axes")
    if channel_axis is None and isinstance(axes, Sequence) and not isinstance(axes, str):
        for i, axis in enumerate(axes):
            if isinstance(axis, Mapping) and (
                axis.get("type") == "channel"
                or str(axis.get("name", "")).lower() in ("c", "channel")
            ):
                channel_axis = i
                break
    channel = m.get("channel", m.get("channel_index"))
    return Provenance(
        url=url,
        path=path,
        levels=levels,
        channel_axis=int(channel_axis) if isinstance(channel_axis, int) else None,
        channel=int(channel) if isinstance(channel, int) else None,
    )


def provenance_of(layer: Any) -> Provenance | None:
    """Return where *layer* comes from, or None for layers not opened from a Zarr store."""
    metadata = getattr(layer, "metadata", None)
    if not isinstance(metadata, Mapping) or metadata.get(OVERLAY_KEY):
        return None
    value = metadata.get(PROVENANCE_KEY)
    if isinstance(value, Mapping):
        found = _from_mapping(value)
        if found is not None:
            return found
    # the reader's own keys: source_url, node_path, level_paths, axes (and channel when split)
    return _from_mapping(metadata)


def is_overlay(layer: Any) -> bool:
    """Tell whether *layer* is one the docks draw themselves (chunk maps and grids)."""
    metadata = getattr(layer, "metadata", None)
    return isinstance(metadata, Mapping) and bool(metadata.get(OVERLAY_KEY))
