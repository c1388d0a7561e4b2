"""Store keys: normalisation and confinement of paths found in metadata or given by the user.

Every key derived from metadata goes through :func:`safe_join` before any store is asked for it.
"""

from __future__ import annotations

import re

from napari_zarr_explorer.errors import PathEscapeError

__all__ = ["is_url", "safe_join"]

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Return True when *text* looks like ``scheme://...`` (any scheme, including ``file``)."""
    return bool(_URL_RE.match(text)) or "::" in text


def safe_join(base: str, relpath: str, *, source: str = "metadata") -> str:
    """Join a store-relative *relpath* onto *base*, refusing escapes.

    Parameters
    ----------
    base
        A store-relative prefix (``""`` for the root, ``"labels"``...).
    relpath
        A path from metadata (e.g. a multiscales dataset path) or given by the user.
    source
        Where *relpath* comes from, for messages: ``"metadata"`` (the default: "Path 'x' in
        metadata ...") or any other word used as is, e.g. ``"given"`` for a path the user typed
        ("Path 'x' given ...").

    Returns
    -------
    str
        The joined store-relative key, with no leading or trailing slash.

    Raises
    ------
    PathEscapeError
        If *relpath* is not a string, is absolute, is a URL, contains a backslash, a NUL, or a
        ``..`` / ``.`` component, or the result would leave the store.
    """
    origin = "in metadata" if source == "metadata" else source
    if not isinstance(relpath, str):
        raise PathEscapeError(f"Path {relpath!r} {origin} is not a string.")
    if is_url(relpath) or relpath.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", relpath):
        raise PathEscapeError(
            f"Path {relpath!r} {origin} is absolute or a URL; only paths inside the store "
            "are followed."
        )
    if "\\" in relpath or "\x00" in relpath:
        raise PathEscapeError(f"Path {relpath!r} {origin} contains a backslash or NUL.")
    parts = [p for p in relpath.split("/") if p != ""]
    if any(p in ("..", ".") for p in parts):
        raise PathEscapeError(
            f"Path {relpath!r} {origin} contains '..' or '.'; only paths inside the store "
            "are followed."
        )
    base_parts = [p for p in base.split("/") if p]
    return "/".join(base_parts + parts)
