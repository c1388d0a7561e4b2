"""Turn what the user typed (a path or a URL) into a read-only Zarr store.

Only the user chooses where data comes from: paths found inside metadata are resolved with
:func:`safe_join`, which refuses anything that would leave the opened store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from napari_zarr_explorer.errors import ExplorerError, NotFoundError, PathEscapeError

__all__ = [
    "REMOTE_PROTOCOLS",
    "Location",
    "is_url",
    "parse_location",
    "safe_join",
]

REMOTE_PROTOCOLS = ("http", "https", "s3", "gs", "gcs")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """Return True when *text* looks like ``scheme://...`` (any scheme, including ``file``)."""
    return bool(_URL_RE.match(text)) or "::" in text


@dataclass(frozen=True, slots=True)
class Location:
    """Where a store lives.

    Attributes
    ----------
    url
        The normalised address: an absolute local path for local stores, otherwise the URL
        without a trailing slash.
    protocol
        ``"file"``, ``"http"``, ``"https"``, ``"s3"`` or ``"gs"``.
    storage_options
        Options for the remote file system (credentials, endpoint, ...), given by the user only.
    """

    url: str
    protocol: str = "file"
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_local(self) -> bool:
        """True for stores on a local file system."""
        return self.protocol == "file"

    @property
    def path(self) -> Path:
        """The local path of a local store."""
        if not self.is_local:
            raise ValueError(f"{self.url} is not a local store")
        return Path(self.url)

    @property
    def name(self) -> str:
        """Last path component, for display (``image.ome.zarr``)."""
        return PurePosixPath(self.url.rstrip("/")).name or self.url

    def child(self, relpath: str) -> Location:
        """Return the location of *relpath* below this one, refusing paths that escape it."""
        rel = safe_join("", relpath)
        if not rel:
            return self
        if self.is_local:
            return replace(self, url=str(Path(self.url) / rel))
        return replace(self, url=f"{self.url.rstrip('/')}/{rel}")

    def open_store(self) -> Any:
        """Open this location as a read-only ``zarr.abc.store.Store``.

        A local store is a ``zarr.storage.LocalStore`` confined to its folder: keys reached
        through symbolic links that leave it, and anything but regular files (FIFOs, devices,
        sockets), are absent.
        """
        if self.is_local:
            from napari_zarr_explorer._localstore import ConfinedLocalStore

            if not self.path.exists():
                raise NotFoundError(
                    f"{self.url}: no such file or directory.",
                    hint="Check the path; a Zarr store is a directory.",
                )
            if not self.path.is_dir():
                raise ExplorerError(
                    f"{self.url} is a file, not a Zarr store directory.",
                    hint="Open the folder that contains .zarray/.zgroup/zarr.json instead.",
                )
            return ConfinedLocalStore(self.path)
        from napari_zarr_explorer import remote

        return remote.open_remote_store(self)

    def __str__(self) -> str:
        return self.url


def parse_location(
    url_or_path: str | os.PathLike[str] | Location,
    storage_options: dict[str, Any] | None = None,
) -> Location:
    """Normalise a path or URL given by the user into a :class:`Location`.

    Parameters
    ----------
    url_or_path
        A local path, a ``file://`` URL, or an ``http(s)://``, ``s3://`` or ``gs://`` URL.
    storage_options
        Options passed to the remote file system (ignored for local paths).

    Returns
    -------
    Location
    """
    if isinstance(url_or_path, Location):
        if storage_options:
            return replace(url_or_path, storage_options=dict(storage_options))
        return url_or_path
    text = os.fspath(url_or_path).strip()
    if not text:
        raise ExplorerError("No path or URL given.", hint="Give a path to a .zarr folder or a URL.")
    if "::" in text:
        raise ExplorerError(
            f"{text!r}: chained URLs ('::') are not supported.",
            hint="Give a plain URL and pass options with storage_options.",
        )
    if not _URL_RE.match(text):
        return Location(url=str(Path(text).expanduser().resolve()).rstrip("/") or "/")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ExplorerError(f"{text!r}: file URLs on other hosts are not supported.")
        return Location(url=str(Path(unquote(parts.path)).resolve()))
    if scheme == "gcs":
        scheme = "gs"
    if scheme not in REMOTE_PROTOCOLS:
        raise ExplorerError(
            f"{text!r}: the URL scheme {parts.scheme!r} is not supported.",
            hint="Use a local path, file://, http(s)://, s3:// or gs://.",
        )
    url = f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")
    if parts.query:
        url = f"{url}?{parts.query}"
    return Location(url=url, protocol=scheme, storage_options=dict(storage_options or {}))


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
