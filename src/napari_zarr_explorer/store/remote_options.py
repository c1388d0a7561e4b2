"""Options of remote stores: from the environment (``NZE_REMOTE_*``) and ``explorer_*`` options.

Kept apart from :mod:`.remote` (which imports zarr) so that the first requests of a store can
start before zarr is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from napari_zarr_explorer.errors import ExplorerError

__all__ = ["ENV_PREFIX", "RemoteOptions"]

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
        How many times a request that failed transiently is tried again.
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
