r"""Store keys: normalisation and confinement of paths found in metadata or given by the user.

Every path derived from metadata goes through :func:`safe_join` before any store is asked for
it, and remote stores check every key again with :func:`check_key` before a request is made.
A key is judged as a server would see it: percent-escapes are decoded first, so ``%2e%2e``
counts as ``..``. Escapes of ``.``, ``/``, ``\``, ``%`` and control characters are refused
outright, as are backslashes and control characters themselves.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from napari_zarr_explorer.errors import PathEscapeError

__all__ = ["check_key", "control_name", "control_name_problem", "is_url", "safe_join"]

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# percent-escapes of ".", "/", "\\", "%" and control characters: never needed in a Zarr key
_BAD_ESCAPE = re.compile(r"%(?:2e|2f|5c|25|[01][0-9a-f]|7f)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _problem(text: str) -> str | None:
    """Say what is wrong with *text* as a store-relative path (None: nothing)."""
    if _BAD_ESCAPE.search(text):
        return "contains a percent-encoded '.', '/', '\\', '%' or control character"
    decoded = unquote(text)
    if "\\" in decoded:
        return "contains a backslash"
    if _CONTROL.search(decoded):
        return "contains a NUL or another control character"
    if any(p in ("..", ".") for p in decoded.split("/")):
        return "contains '..' or '.'"
    return None


def control_name(name: str) -> tuple[str, str] | None:
    r"""Describe the control characters in the node name *name*, or None when it has none.

    Returns
    -------
    tuple of str or None
        The characters as Python writes them (``"'\t'"``, several joined by commas) and a
        name to rename the node to (each control character replaced by ``_``).
    """
    found = sorted(set(_CONTROL.findall(name)))
    if not found:
        return None
    return ", ".join(repr(c) for c in found), _CONTROL.sub("_", name)


def control_name_problem(name: str) -> tuple[str, str] | None:
    r"""Word what is wrong with the node name *name* and how to fix it, or None when nothing is.

    The one wording of the inspect warning and of the recompress refusal.

    Returns
    -------
    tuple of str or None
        What the name has (``"a control character ('\t')"``, or ``"control characters
        ('\t', '\n')"``) and what to do (``"Rename it (e.g. to 'tab_here')"``).
    """
    found = control_name(name)
    if found is None:
        return None
    chars, renamed = found
    what = f"control characters ({chars})" if "," in chars else f"a control character ({chars})"
    return what, f"Rename it (e.g. to {renamed!r})"


def check_key(key: str, *, where: str = "") -> str:
    """Return *key* if a store may be asked for it, else raise :class:`PathEscapeError`.

    Parameters
    ----------
    key
        A store key (``"0/zarr.json"``, ``"c/0/1"``).
    where
        The store, for messages.

    Raises
    ------
    PathEscapeError
        When the key, read as a server decodes it, has a ``..`` or ``.`` component, a
        backslash, a control character, or a percent-escape of one of these (or of ``/``).
    """
    problem = _problem(key) if isinstance(key, str) else "is not a string"
    if problem is None and key.startswith("/"):
        problem = "is absolute"
    if problem is not None:
        at = f" of {where}" if where else ""
        raise PathEscapeError(
            f"Key {key!r}{at} {problem}; only keys inside the store are read.",
            hint="The metadata names a path outside the store; nothing was requested.",
        )
    return key


def is_url(text: str) -> bool:
    """Return True when *text* looks like ``scheme://...`` (any scheme, including ``file``)."""
    return bool(_URL_RE.match(text)) or "::" in text


def safe_join(base: str, relpath: str, *, source: str = "metadata") -> str:
    r"""Join a store-relative *relpath* onto *base*, refusing escapes.

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
        If *relpath* is not a string, is absolute, is a URL, or (after percent-decoding, as a
        server reads it) contains a backslash, a control character or a ``..`` / ``.``
        component; or if it contains a percent-escape of ``.``, ``/``, ``\``, ``%`` or a
        control character.
    """
    origin = "in metadata" if source == "metadata" else source
    if not isinstance(relpath, str):
        raise PathEscapeError(f"Path {relpath!r} {origin} is not a string.")
    if is_url(relpath) or relpath.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", relpath):
        raise PathEscapeError(
            f"Path {relpath!r} {origin} is absolute or a URL; only paths inside the store "
            "are followed."
        )
    problem = _problem(relpath)
    if problem is not None:
        raise PathEscapeError(
            f"Path {relpath!r} {origin} {problem}; only paths inside the store are followed."
        )
    parts = [p for p in relpath.split("/") if p != ""]
    base_parts = [p for p in base.split("/") if p]
    return "/".join(base_parts + parts)
