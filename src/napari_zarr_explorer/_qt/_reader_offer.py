"""Offer, once, to make Zarr Explorer napari's reader for ``*.zarr`` folders.

napari asks which reader to use when several plugins claim a dropped ``.zarr`` folder
(napari-builtins does too). The offer is a napari notification with two actions; the answer is
kept in this package's small settings file (``$NAPARI_ZARR_EXPLORER_CONFIG_DIR`` or the user
configuration folder), so a "no" is never asked again, and a "yes" writes napari's own
``plugins.extension2reader`` setting, which the user can change in napari's preferences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "PATTERN",
    "PLUGIN",
    "accept_default_reader",
    "decline_default_reader",
    "is_default_reader",
    "offer_default_reader",
    "settings_path",
]

PLUGIN = "napari-zarr-explorer"
#: napari matches folders with a trailing separator; ``*.ome.zarr/`` matches too.
PATTERN = "*.zarr/"
_OFFERED: list[bool] = []  # one offer per session even before an answer


def settings_path() -> Path:
    """Return the JSON file holding this package's own settings (next to the recent stores)."""
    from napari_zarr_explorer._qt._common import RecentStores

    return RecentStores().path.with_name("settings.json")


def _load() -> dict[str, Any]:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(**values: Any) -> None:
    data = {**_load(), **values}
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    except OSError:
        pass


def is_default_reader() -> bool:
    """Tell whether napari's settings already open ``*.zarr`` folders with this plugin."""
    from napari.settings import get_settings

    return get_settings().plugins.extension2reader.get(PATTERN) == PLUGIN


def accept_default_reader(*_: Any) -> None:
    """Make this plugin napari's reader for ``*.zarr`` folders (napari's own setting)."""
    from napari.settings import get_settings

    settings = get_settings()
    settings.plugins.extension2reader = {**settings.plugins.extension2reader, PATTERN: PLUGIN}
    _save(default_reader="yes")


def decline_default_reader(*_: Any) -> None:
    """Remember that the user does not want to be asked again."""
    _save(default_reader="no")


def offer_default_reader() -> bool:
    """Show the offer unless answered before or already the default; True when shown."""
    if _OFFERED or _load().get("default_reader") in ("yes", "no"):
        return False
    try:
        if is_default_reader():
            return False
    except Exception:  # napari settings unavailable: nothing to offer
        return False
    from napari.utils.notifications import Notification, NotificationSeverity, notification_manager

    class _Offer(Notification):  # type: ignore[misc]
        """The offer, naming the plugin as its source.

        napari shows a toast with buttons with a "Source:" line, by default the repr of its
        notification manager (the event's emitter).
        """

        @property
        def source(self) -> str:
            return "napari-zarr-explorer"

    _OFFERED.append(True)
    notification_manager.dispatch(
        _Offer(
            "Open .zarr folders with Zarr Explorer by default? napari otherwise asks which "
            "reader to use on every drop (you can change this in Preferences > Plugins).",
            severity=NotificationSeverity.INFO,
            actions=[
                ("Yes, by default", accept_default_reader),
                ("No, keep asking", decline_default_reader),
            ],
        )
    )
    return True
