"""Options of remote stores: from the environment (``NZE_REMOTE_*``) and ``explorer_*`` options.

Kept apart from :mod:`.remote` (which imports zarr) so that the first requests of a store can
start before zarr is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.store.locate import Location, in_n5_container

__all__ = ["ENV_PREFIX", "RemoteOptions", "lean_path_options"]

ENV_PREFIX = "NZE_REMOTE_"
"""Prefix of the environment variables read by :meth:`RemoteOptions.from_env`."""

_OPTION_PREFIX = "explorer_"


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """How remote stores behave.

    Each field can be set with an environment variable ``NZE_REMOTE_<FIELD>`` (upper case) or a
    storage option ``explorer_<field>``; storage options win over environment variables.

    Attributes
    ----------
    concurrency
        Maximum number of requests in flight at once, per store.
    cache_mb
        Size of the in-memory cache of recently read values, in MiB (0 disables it).
    timeout
        Seconds one request may take (connecting, waiting and reading) before it is abandoned.
    retries
        How many times a request that failed transiently (HTTP 5xx, 408, 429, a timeout, a
        dropped connection) is tried again. A refused connection is tried again at most once,
        whatever this says: nothing listens at that host and port, which waiting rarely changes.
    backoff
        Seconds to wait before the first retry; doubled for each further retry (with jitter,
        at most 10 s).
    read_ahead
        When a group's metadata arrives, also request (concurrently, in the background) the
        metadata of the children it names: multiscales levels, labels, plate wells, well images.
    """

    concurrency: int = 64
    cache_mb: float = 256.0
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.2
    read_ahead: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ExplorerError(f"Remote concurrency must be at least 1, got {self.concurrency}.")
        if self.cache_mb < 0 or self.timeout <= 0 or self.retries < 0 or self.backoff < 0:
            raise ExplorerError(
                f"Invalid remote options {self}: cache_mb, retries and backoff must not be "
                "negative and timeout must be positive."
            )

    @property
    def cache_bytes(self) -> int:
        """Cache size in bytes."""
        return int(self.cache_mb * 2**20)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RemoteOptions:
        """Read the options from ``NZE_REMOTE_*`` environment variables (defaults otherwise)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw not in (None, ""):
                values[f.name] = _convert(f.name, raw, f"environment variable {ENV_PREFIX}")
        return cls(**values)

    @classmethod
    def split(
        cls, storage_options: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> tuple[RemoteOptions, dict[str, Any]]:
        """Separate our ``explorer_*`` options from the file-system options.

        Returns
        -------
        tuple
            The options (environment, overridden by ``explorer_*`` storage options) and the
            remaining storage options for the file system.
        """
        opts = cls.from_env(environ)
        rest: dict[str, Any] = {}
        ours: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, value in (storage_options or {}).items():
            if key.startswith(_OPTION_PREFIX):
                name = key[len(_OPTION_PREFIX) :]
                if name not in names:
                    raise ExplorerError(
                        f"Unknown storage option {key!r}.",
                        hint="Known: " + ", ".join(_OPTION_PREFIX + n for n in sorted(names)) + ".",
                    )
                ours[name] = _convert(name, value, "storage option explorer_")
            else:
                rest[key] = value
        return replace(opts, **ours), rest


def _convert(name: str, raw: Any, where: str) -> Any:
    if name == "read_ahead":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ExplorerError(f"{where}{name}={raw!r} is not a boolean (use 1 or 0).")
    try:
        if name in ("concurrency", "retries"):
            return int(raw)
        return float(raw)
    except (TypeError, ValueError):
        raise ExplorerError(
            f"{where}{name.upper() if 'environ' in where else name}={raw!r} is not a number."
        ) from None


def lean_path_options(
    location: Location, environ: Mapping[str, str] | None = None
) -> RemoteOptions | None:
    """Return the store's options if the lean HTTP path applies to *location*, else None.

    The lean path is the reader's fast path for ``http(s)://`` images: ``_http.prefetch`` asks
    for the first metadata documents while zarr-python is imported, and
    ``layers.open_first_image`` shows the first image from them without zarr-python. Both ask
    this function, so that they always agree: the metadata is fetched ahead exactly when the
    first image can then be opened from it. It applies when the store opened for *location*
    would read through the lean ``_http.HTTPClient`` with no header: an ``http(s)://`` URL
    without a query string (refused by the store) or a user name (read through fsspec),
    outside an N5 container (no Zarr documents to ask for), with no storage option but
    ``explorer_*`` ones, valid, and read-ahead on.

    Parameters
    ----------
    location
        Where the store is (its ``storage_options`` included).
    environ
        Environment variables to read the ``NZE_REMOTE_*`` options from (``os.environ``).

    Returns
    -------
    RemoteOptions or None
        The options the store will have (its client's timeout and concurrency), or None.
    """
    url = location.url
    if location.protocol not in ("http", "https") or "?" in url:
        return None  # before importing the HTTP client: local stores never pay for it
    from napari_zarr_explorer.store._http import client_options

    if urlsplit(url).username is not None or in_n5_container(url):
        return None
    try:
        opts, fs_options = RemoteOptions.split(location.storage_options, environ)
    except ExplorerError:
        return None  # the store reports them
    if not opts.read_ahead or client_options(fs_options) != {}:
        return None
    return opts
