"""Turn what the user typed (a path or a URL) into a :class:`Location`.

Only the user chooses where data comes from: paths found inside metadata are resolved with
:func:`~napari_zarr_explorer.store.keys.safe_join`, which refuses anything that would leave the
opened store. :func:`~napari_zarr_explorer.store.open_store` opens a location.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from napari_zarr_explorer.errors import (
    ExplorerError,
    ambiguous_userinfo,
    shown_url,
    shown_userinfo,
)
from napari_zarr_explorer.store.keys import safe_join

__all__ = [
    "REMOTE_PROTOCOLS",
    "Location",
    "check_userinfo",
    "in_n5_container",
    "node_where",
    "parse_location",
    "shown_url",
]

REMOTE_PROTOCOLS = ("http", "https", "s3", "gs", "gcs")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


#: The user information (``user:password``, or a token alone) given for each origin
#: (``scheme://user:***@host:port``, ``scheme://***@host:port``) in this process, so that a URL
#: shown without its secret (as layer metadata and reports name it) opens with it again.
_USERINFO: dict[str, str] = {}
_USERINFO_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, repr=False)
class Location:
    """Where a store lives.

    Attributes
    ----------
    url
        The normalised address: an absolute local path for local stores, otherwise the URL
        without a trailing slash, with its credentials (``user:password@``, a signed query
        string): what connects. Text for people uses :attr:`shown` (and ``str()``).
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
    def shown(self) -> str:
        """The URL as it may be shown to people (messages, reports, logs, layer metadata).

        The password of ``user:password@`` and secrets in the query string (presigned
        signatures, tokens) read ``***`` (see :func:`~napari_zarr_explorer.errors.shown_url`).
        Opening the shown form again in this process connects with the password it hides.
        """
        return self.url if self.is_local else shown_url(self.url)

    @property
    def name(self) -> str:
        """Last path component, for display (``image.ome.zarr``)."""
        if self.is_local:
            return PurePosixPath(self.url.rstrip("/")).name or self.url
        parts = urlsplit(self.shown)
        # a store at a bucket's or a server's root is named by its host (no user information)
        return PurePosixPath(parts.path.rstrip("/")).name or parts.netloc.rpartition("@")[2]

    def child(self, relpath: str) -> Location:
        """Return the location of *relpath* below this one, refusing paths that escape it."""
        rel = safe_join("", relpath)
        if not rel:
            return self
        if self.is_local:
            return replace(self, url=str(Path(self.url) / rel))
        return replace(self, url=f"{self.url.rstrip('/')}/{rel}")

    def __str__(self) -> str:
        """Return the shown form (:attr:`shown`); connecting needs :attr:`url`."""
        return self.shown

    def __repr__(self) -> str:
        # storage options hold credentials: only their names are shown
        opts = f", storage_options=<{', '.join(map(str, self.storage_options))}>"
        return (
            f"Location(url={self.shown!r}, protocol={self.protocol!r}"
            f"{opts if self.storage_options else ''})"
        )


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
            hint="Give a plain URL and pass options with --storage-options (command line) or "
            "storage_options= (Python).",
        )
    if not _URL_RE.match(text):
        return Location(url=_resolved(Path(text).expanduser(), text).rstrip("/") or "/")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ExplorerError(f"{text!r}: file URLs on other hosts are not supported.")
        return Location(url=_resolved(Path(unquote(parts.path)), text))
    if scheme == "gcs":
        scheme = "gs"
    if scheme not in REMOTE_PROTOCOLS:
        raise ExplorerError(
            f"{text!r}: the URL scheme {parts.scheme!r} is not supported.",
            hint="Use a local path, file://, http(s)://, s3:// or gs://.",
        )
    check_userinfo(text)
    if scheme in ("s3", "gs") and "@" in parts.netloc:
        # fsspec would take KEY:SECRET@bucket for the bucket's name, send it, and quote it back
        from napari_zarr_explorer.store.remote import _GCS_HINT, _S3_HINT  # only when refusing

        raise ExplorerError(
            f"{shown_url(text)}: an {scheme}:// URL cannot carry credentials (the text before "
            "'@' would be taken for the bucket's name); nothing was requested.",
            hint=f"Give the URL as {scheme}://BUCKET/PATH. "
            + (_S3_HINT if scheme == "s3" else _GCS_HINT),
        )
    netloc = _with_password(scheme, parts.netloc)
    url = f"{scheme}://{netloc}{parts.path}".rstrip("/")
    if parts.query:
        url = f"{url}?{parts.query}"
    return Location(url=url, protocol=scheme, storage_options=dict(storage_options or {}))


def check_userinfo(url: str) -> None:
    """Refuse a URL whose user information a URL parser would read otherwise than it is shown.

    ``https://ann:1234/ab@host/x`` reads, by the rules of URLs, as the host ``ann`` at port
    1234 and the path ``/ab@host/x``: the password would go, in part, to another host, and
    messages would name that host with part of the password. A path holding "@" after a port
    (``https://host:8080/a@b``) cannot be told from it and is refused alike, unless the host is
    plainly one (a dotted name, ``localhost``, an IP address: ``http://localhost:8000/a@b``).

    Raises
    ------
    ExplorerError
        Naming the URL as shown (without the password) and how to write it.
    """
    if ambiguous_userinfo(url):
        raise ExplorerError(
            f"{shown_url(url)}: where the user name and password end cannot be told (a "
            "password holding '/', '?', '#' or '@', which a URL takes for a host, a port and a "
            "path, or an '@' in the path); in doubt all of it is hidden and nothing was "
            "requested.",
            hint="Percent-encode those characters in a password ('/' as %2F, '?' as %3F, "
            "'#' as %23, '@' as %40); an '@' in the path is written %40 too.",
        )


def _resolved(path: Path, text: str) -> str:
    """Return the absolute form of the local *path*, or say why it has none.

    A symbolic link loop (``RuntimeError`` before Python 3.13) and a name longer than the
    system allows are the user's path, not a failure of the explorer.
    """
    try:
        resolved = path.resolve()
        try:
            resolved.stat()
        except OSError as exc:  # absent is fine (an output to create); a loop or too long not
            if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
                raise
        return str(resolved)
    except RuntimeError:  # Python < 3.13 resolve(): a loop of symbolic links
        reason = "a loop of symbolic links"
    except OSError as exc:
        from napari_zarr_explorer.errors import os_error_text

        if exc.errno == errno.ELOOP:  # Python 3.13 resolves a loop as it is: stat() tells
            reason = "a loop of symbolic links"
        else:
            reason = (exc.strerror or os_error_text(exc)).lower()
    raise ExplorerError(f"{text}: {reason}.", hint="Check the path.")


def _with_password(scheme: str, netloc: str) -> str:
    """Remember the user information of *netloc*, or put back what a shown form (``***``) hides.

    Remembered per ``scheme://SHOWN@host:port`` (``user:***`` or, for a token in place of the
    user, ``***``), so it goes back to the same user, host and port only.
    """
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or not userinfo:
        return netloc
    shown = shown_userinfo(userinfo)
    key = f"{scheme}://{shown}@{hostport.lower()}"
    with _USERINFO_LOCK:
        if userinfo != shown:
            _USERINFO[key] = userinfo
            return netloc
        known = _USERINFO.get(key)
    return netloc if known is None else f"{known}@{hostport}"


def in_n5_container(url: str) -> bool:
    """Tell whether the remote *url* is an N5 container or a node inside one.

    A remote location is N5 when a segment of its path ends with ``.n5``: nothing is requested
    to decide (servers cannot be listed, and N5 has no Zarr documents to ask for).
    """
    return any(seg.lower().endswith(".n5") for seg in urlsplit(url).path.split("/"))


def node_where(where: str, path: str) -> str:
    """Name the node at *path* below the store *where* in messages.

    ``node_where("https://host/a.zarr", "0")`` gives ``https://host/a.zarr/0``: a URL keeps its
    ``://`` (joining and then collapsing ``//`` would not), and the root is the store itself.
    """
    sub = path.strip("/")
    if not sub:
        return where
    return f"{where.rstrip('/')}/{sub}" if where else sub
