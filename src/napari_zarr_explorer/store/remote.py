"""Read-only Zarr stores for data on web servers and in object stores.

:func:`open_remote_store` turns an ``http(s)://``, ``s3://`` or ``gs://`` :class:`Location` into
a :class:`RemoteStore`: zarr's ``FsspecStore`` (over aiohttp, s3fs or gcsfs) wrapped with

- a timeout on every request and retries with exponential backoff for transient failures
  (HTTP 5xx/408/429, timeouts, connection resets); a refused connection (a wrong host or port,
  a server that is down) is tried once more only;
- clear errors for permanent ones (:class:`~napari_zarr_explorer.errors.AccessDeniedError`,
  :class:`~napari_zarr_explorer.errors.RemoteError` naming the host and key); a missing key is
  not an error: the store answers ``None`` and zarr uses the fill value (``getsize`` raises
  ``FileNotFoundError``, as zarr's stores do). Missing is what the server says with 404
  (S3's ``NoSuchKey``); a refusal (401, 403) is never taken for it;
- a limit on concurrent requests and an in-memory LRU cache of recently read values keyed by
  ``(key, byte range)``, so panning back over an image does not fetch it again, plus merging of
  identical requests that are in flight at the same time;
- anonymous access to public buckets without any set-up, and the standard credential chains
  (environment variables, profiles, application default credentials) for private ones;
- few metadata requests: once the Zarr format of the store is known, documents the other format
  would have are not asked for, and when a group's metadata arrives the metadata of the children
  it names (multiscales levels, labels, wells) is requested concurrently in the background;
- a chunk that cannot be fetched raises :class:`ChunkFetchError`, which readers show as the fill
  value with a warning; a host that fails repeatedly is left alone for a while.

:func:`fetch_many` reads several keys concurrently from synchronous code, and
:func:`read_region` reads the inner chunks of sharded arrays concurrently.

Options come from the user only (``storage_options``, environment variables), never from data,
and only paths inside the store are followed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import random
import threading
import time
import types
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.storage import WrapperStore

from napari_zarr_explorer._compat import coalesced_get_ranges, zarr_io_loop_and_thread
from napari_zarr_explorer.errors import (
    CONNECTION_HINT,
    REFUSED_HINT,
    AccessDeniedError,
    ExplorerError,
    NotFoundError,
    RemoteError,
    connection_refused,
    os_error_text,
    redact_urls,
    shown_url,
)
from napari_zarr_explorer.store._http import (
    HTTPClient,
    HTTPStatusError,
    RedirectRefusedError,
    client_options,
    take_prefetched,
)
from napari_zarr_explorer.store.keys import check_key
from napari_zarr_explorer.store.limits import max_metadata_bytes, metadata_too_large
from napari_zarr_explorer.store.readahead import children_metadata_keys
from napari_zarr_explorer.store.remote_options import _OPTION_PREFIX, ENV_PREFIX, RemoteOptions

if TYPE_CHECKING:
    from zarr.core.buffer import Buffer, BufferPrototype

    from napari_zarr_explorer.store.locate import Location

__all__ = [
    "ENV_PREFIX",
    "ChunkFetchError",
    "RedirectRefusedError",
    "RemoteOptions",
    "RemoteStats",
    "RemoteStore",
    "fetch_many",
    "open_remote_store",
    "read_region",
]

logger = logging.getLogger(__name__)


def _redact_record(record: logging.LogRecord) -> bool:
    """Keep secrets of URLs out of this module's log records (and their tracebacks)."""
    if record.args:
        record.msg = record.getMessage()
        record.args = None
    record.msg = redact_urls(str(record.msg))
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_urls(logging.Formatter().formatException(record.exc_info))
    return True


logger.addFilter(_redact_record)

_T = TypeVar("_T")

#: Names of metadata documents; every other key is data (a chunk or a shard).
METADATA_NAMES = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})
#: Seconds a failed read is remembered by its store, so that a retry right away fails at once
#: (its message says it was remembered). Each store remembers its own failures: a store opened
#: again for the same URL asks the server at once.
FAILURE_TTL = 10.0
#: A remembered failure younger than this many seconds is said as it was: it is the failure of
#: the read going on (a reader whose read of several chunks failed reads them again one by one).
#: An older one says it was remembered, and when the server is asked again.
_FRESH_FAILURE = 1.0
#: Jitter of retry delays: its own generator, so a session's seeded ``random`` stays as seeded.
_JITTER = random.Random()
#: After this many requests in a row failed (after their retries), the host is not asked
#: again for _BREAKER_SECONDS: reads fail at once (chunks show as fill) instead of each waiting.
_BREAKER_FAILURES = 3
_BREAKER_SECONDS = 30.0
#: Most retries of a refused connection, whatever ``retries`` says: nothing listens at that
#: host and port (a wrong URL, a server that is down), which waiting rarely changes; one more
#: try covers a server that is restarting.
_REFUSED_RETRIES = 1
_V2_NAMES = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata"})
_READ_AHEAD_MAX_DOC = 4 * 2**20


class _HostLeftAlone(RemoteError):
    """The host failed too many requests in a row: this one was not sent (see ``_call``)."""


def _remembered(known: ExplorerError, age: float) -> ExplorerError:
    """Return *known*, a failure remembered for *age* seconds, saying it was remembered.

    The server may have recovered since: the message says when it failed and when it is
    asked again, so that a user trying again at once knows it was not asked this time. A
    failure younger than ``_FRESH_FAILURE`` is the read's own: said as it was.
    """
    message = known.message
    if age >= _FRESH_FAILURE:
        ago = "less than 1 s" if age < 1 else f"{age:.0f} s"
        left = max(math.ceil(FAILURE_TTL - age), 1)
        message += f" (Remembered from a failure {ago} ago; asked again in {left} s.)"
    error = type(known)(message, hint=known.hint)
    error.__cause__ = known.__cause__  # a chunk's error keeps the original one as its cause
    return error


class ChunkFetchError(ExplorerError, OSError):
    """A chunk (or shard) could not be fetched, even after retries.

    Not a :class:`~napari_zarr_explorer.errors.RemoteError` on purpose: readers treat it like a
    corrupt chunk (shown as the fill value, with a warning naming the key) rather than stopping.
    The original error is its ``__cause__``.
    """


# --------------------------------------------------------------------------------------------
# options


@dataclass(slots=True)
class RemoteStats:
    """Counters of one :class:`RemoteStore` (for diagnostics, tests and benchmarks)."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    merged: int = 0
    bytes_read: int = 0


# --------------------------------------------------------------------------------------------
# the store


_MISSING = object()


def _range_key(byte_range: ByteRequest | None) -> tuple[Any, ...] | None:
    if byte_range is None:
        return None
    if isinstance(byte_range, RangeByteRequest):
        return ("range", byte_range.start, byte_range.end)
    if isinstance(byte_range, OffsetByteRequest):
        return ("offset", byte_range.offset)
    if isinstance(byte_range, SuffixByteRequest):
        return ("suffix", byte_range.suffix)
    raise TypeError(f"Unexpected byte range {byte_range!r}")


def _trim(data: bytes, byte_range: ByteRequest | None) -> bytes:
    """Cut *data* down to *byte_range* when a server ignored the Range header (sent it all)."""
    if isinstance(byte_range, RangeByteRequest):
        want = byte_range.end - byte_range.start
        if len(data) > want:
            return data[byte_range.start : byte_range.end]
    elif isinstance(byte_range, SuffixByteRequest) and len(data) > byte_range.suffix:
        return data[len(data) - byte_range.suffix :]
    return data


def _cut(data: bytes, byte_range: ByteRequest) -> bytes:
    """Return the bytes of *byte_range* within the whole object *data*."""
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[max(len(data) - byte_range.suffix, 0) :]
    raise TypeError(f"Unexpected byte range {byte_range!r}")


class _LRU:
    """A thread-safe LRU of bytes (or None for missing keys) bounded by total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._data: OrderedDict[tuple[Any, ...], bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(value: bytes | None) -> int:
        return 64 + (len(value) if value is not None else 0)

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            try:
                value = self._data[key]
            except KeyError:
                return _MISSING
            self._data.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: bytes | None) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, _MISSING)
            if old is not _MISSING:
                self.nbytes -= self._size(old)  # type: ignore[arg-type]
            self._data[key] = value
            self.nbytes += size
            while self.nbytes > self.max_bytes and self._data:
                _, evicted = self._data.popitem(last=False)
                self.nbytes -= self._size(evicted)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.nbytes = 0

    def __len__(self) -> int:
        return len(self._data)


async def _bounded_fetch(store: Store, key: str, limit: int, where: str) -> bytes | None:
    """Read *key* whole from the wrapped *store*, never more than *limit* + 1 bytes."""
    from zarr.abc.store import RangeByteRequest
    from zarr.core.buffer import default_buffer_prototype

    if isinstance(store, HTTPStore):
        return await store.get_bounded(key, limit)
    fs: Any = getattr(store, "fs", None)
    if type(fs).__name__ == "HTTPFileSystem":
        url = f"{str(getattr(store, 'path', '')).rstrip('/')}/{key}"
        session = await fs.set_session()
        async with session.get(fs.encode_url(url), **fs.kwargs) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            length = response.content_length
            if length is not None and length > limit:
                raise metadata_too_large(where, length, limit)
            data = bytearray()
            async for piece in response.content.iter_chunked(1 << 16):
                data += piece
                if len(data) > limit:
                    raise metadata_too_large(where, None, limit)
            return bytes(data)
    if fs is not None:  # object stores honour ranges: ask for one byte more than allowed
        try:
            buf = await store.get(key, default_buffer_prototype(), RangeByteRequest(0, limit + 1))
        except (FileNotFoundError, KeyError):
            return None
    else:
        buf = await store.get(key, default_buffer_prototype())
    if buf is None:
        return None
    out = buf.to_bytes()
    if len(out) > limit:
        raise metadata_too_large(where, None if fs is not None else len(out), limit)
    return out


class RemoteStore(WrapperStore[Store]):
    """A read-only remote store with timeouts, retries, a concurrency limit and a cache.

    Parameters
    ----------
    store
        The store doing the requests (zarr's ``FsspecStore``, or any zarr store).
    url
        The store's URL; error messages, logs and ``str()`` name it without its secrets
        (:attr:`shown`).
    options
        Timeouts, retries, concurrency and cache size.
    alternate
        A factory for the same store with the other kind of access (anonymous instead of signed
        requests, or the reverse); tried once when the server refuses access.
    credentials_hint
        What to tell the user when access is denied.

    listable
        Whether the store can list its keys (None: ask the wrapped store). Web servers cannot.

    Notes
    -----
    ``get`` answers ``None`` for keys that do not exist (zarr then uses the fill value),
    ``exists`` False and ``getsize`` raises
    :class:`~napari_zarr_explorer.errors.NotFoundError` (a ``FileNotFoundError``). A key
    does not exist when the server says so (HTTP 404 or 410, S3's ``NoSuchKey``); a refusal
    (HTTP 401 or 403) raises :class:`~napari_zarr_explorer.errors.AccessDeniedError`, even
    where it may stand for a missing key (S3 answers 403 for those when listing is not
    allowed). A metadata document that still fails after the retries raises
    :class:`~napari_zarr_explorer.errors.RemoteError` (or its subclass
    :class:`~napari_zarr_explorer.errors.AccessDeniedError`) naming the host and the key; a
    chunk raises :class:`ChunkFetchError`, which readers show as the fill value with a warning.
    """

    supports_writes = False
    supports_deletes = False

    def __init__(
        self,
        store: Store,
        *,
        url: str = "",
        options: RemoteOptions | None = None,
        alternate: Callable[[], Store] | None = None,
        credentials_hint: str = "",
        listable: bool | None = None,
    ) -> None:
        super().__init__(store)
        self.url = url.rstrip("/")
        #: The URL as messages name it: no password, no signature (``user:***@host``).
        self.shown = shown_url(self.url)
        #: Host (and port) the store reads from, for messages: no user name or password.
        self.host = urlsplit(url).netloc.rpartition("@")[2] or self.shown
        #: ``host:port`` the requests go to (for "connection refused by host:port").
        self.peer = _authority(url)
        self.options = options or RemoteOptions()
        self.stats = RemoteStats()
        self._alternate = alternate
        self._credentials_hint = credentials_hint
        self._listable = listable
        self._reopen: Callable[[], RemoteStore] | None = None
        self._setup()

    def _setup(self) -> None:
        self._cache = _LRU(self.options.cache_bytes)
        self._state_lock = threading.Lock()
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._locks = weakref.WeakKeyDictionary()
        self._inflight: dict[tuple[Any, ...], asyncio.Future[bytes | None]] = {}
        self._failures: dict[tuple[Any, ...], tuple[float, ExplorerError]] = {}
        self._reads_ok = 0
        self._format: int | None = None  # Zarr format of the store, once a document says so
        self._background: set[asyncio.Task[None]] = set()
        self._background_done = threading.Condition(self._state_lock)
        self._background_count = 0  # reads ahead started and not finished, on any loop
        self._failed_in_a_row = 0
        self._unreachable: tuple[float, str] | None = None  # (until, last error)
        self._expanded: set[str] = set()  # metadata keys whose children were read ahead

    # -- pickling (dask workers), copies ----------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        if self._reopen is not None:
            return {"reopen": self._reopen}
        return {
            "store": self._store,
            "url": self.url,
            "options": self.options,
            "alternate": self._alternate,
            "credentials_hint": self._credentials_hint,
            "listable": self._listable,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "reopen" in state:
            self.__dict__.update(state["reopen"]().__dict__)
            return
        self.__init__(state.pop("store"), **state)  # type: ignore[misc]

    def _with_store(self, store: Store) -> RemoteStore:
        return RemoteStore(
            store,
            url=self.url,
            options=self.options,
            alternate=self._alternate,
            credentials_hint=self._credentials_hint,
            listable=self._listable,
        )

    def with_read_only(self, read_only: bool = False) -> RemoteStore:
        """Return this store; remote stores are always read-only."""
        if not read_only:
            raise ExplorerError(f"{self.shown}: remote stores are opened read-only.")
        return self

    @property
    def read_only(self) -> bool:
        """Always True."""
        return True

    def _check_writable(self) -> None:
        raise ExplorerError(f"{self.shown}: remote stores are opened read-only.")

    async def set(self, key: str, value: Buffer) -> None:
        """Refuse: remote stores are read-only."""
        self._check_writable()

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Refuse: remote stores are read-only."""
        self._check_writable()

    async def delete(self, key: str) -> None:
        """Refuse: remote stores are read-only."""
        self._check_writable()

    async def delete_dir(self, prefix: str) -> None:
        """Refuse: remote stores are read-only."""
        self._check_writable()

    async def clear(self) -> None:
        """Refuse: remote stores are read-only."""
        self._check_writable()

    def __eq__(self, value: object) -> bool:
        return isinstance(value, RemoteStore) and value.url == self.url

    def __hash__(self) -> int:
        return hash(("RemoteStore", self.url))

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"RemoteStore({self.shown!r})"

    # -- cache ------------------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Forget every cached value and remembered failure (the host is asked again)."""
        self._cache.clear()
        self._failures.clear()
        self._failed_in_a_row = 0
        self._unreachable = None

    def seed_cache(self, key: str, byte_range: tuple[Any, ...] | None, data: bytes | None) -> None:
        """Keep *data*, read by another reader of this store, as the answer for *key*.

        *byte_range* is ``("range", start, end)``, ``("suffix", n)`` or None (the whole object):
        the store then answers that request from its cache, as if it had made it. *data* None
        means the object does not exist.
        """
        check_key(key, where=self.shown)
        self._cache.put((key, byte_range), data)

    @property
    def cache_nbytes(self) -> int:
        """Bytes currently held by the cache."""
        return self._cache.nbytes

    # -- reading ----------------------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._state_lock:
            sem = self._semaphores.get(loop)
            if sem is None:
                sem = asyncio.Semaphore(self.options.concurrency)
                self._semaphores[loop] = sem
            return sem

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read *key* (or a byte range of it); ``None`` when it does not exist."""
        data = await self.get_bytes(key, byte_range)
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_bytes(self, key: str, byte_range: ByteRequest | None = None) -> bytes | None:
        """Like :meth:`get` but returning ``bytes`` (cached and shared by identical requests)."""
        return await self._read(key, byte_range, read_ahead=self.options.read_ahead)

    async def get_bounded(self, key: str, limit: int) -> bytes | None:
        """Read *key* whole if it has at most *limit* bytes (None when absent).

        The ``Content-Length`` (HTTP) is checked before the body is read, and a body without
        one is cut off after *limit* bytes; object stores are asked for *limit* + 1 bytes.

        Raises
        ------
        MetadataError
            When the object is larger than *limit* bytes.
        """
        data = await self._read(key, None, read_ahead=self.options.read_ahead, limit=limit)
        if data is not None and len(data) > limit:
            raise metadata_too_large(self._where(key), len(data), limit)
        return data

    async def _read(
        self,
        key: str,
        byte_range: ByteRequest | None,
        *,
        read_ahead: bool,
        limit: int | None = None,
    ) -> bytes | None:
        check_key(key, where=self.shown)
        name = key.rpartition("/")[2]
        if byte_range is None and self._skip_probe(name):
            return None
        ck = (key, _range_key(byte_range))
        if byte_range is not None:
            whole = self._cache.get((key, None))
            if whole is None or isinstance(whole, bytes):
                self.stats.cache_hits += 1
                return None if whole is None else _cut(whole, byte_range)
        cached = self._cache.get(ck)
        if cached is not _MISSING:
            self.stats.cache_hits += 1
            if read_ahead and cached is not None and byte_range is None:
                self._expand(key, name, cached)
            return cached  # type: ignore[no-any-return]
        failed = self._failures.get(ck)
        if failed is not None:
            when, known = failed
            age = time.monotonic() - when
            if age < FAILURE_TTL:
                raise _remembered(known, age)
            self._failures.pop(ck, None)
        loop = asyncio.get_running_loop()
        fkey = (id(loop), *ck)
        pending = self._inflight.get(fkey)
        if pending is not None:
            self.stats.merged += 1
            try:
                data = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if pending.cancelled() and task is not None and not task.cancelling():
                    # the request we joined was cancelled, not us: make it ourselves
                    return await self._read(key, byte_range, read_ahead=read_ahead, limit=limit)
                raise
            if read_ahead and data is not None and byte_range is None:
                self._expand(key, name, data)
            return data
        fut: asyncio.Future[bytes | None] = loop.create_future()
        self._inflight[fkey] = fut
        try:
            data = await self._fetch(key, byte_range, limit=limit)
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            err: BaseException = exc
            if isinstance(exc, RemoteError) and key.rpartition("/")[2] not in METADATA_NAMES:
                err = ChunkFetchError(
                    f"Could not fetch chunk {key!r}: {exc.message}", hint=exc.hint
                )
                err.__cause__ = exc
            if isinstance(err, ExplorerError) and not isinstance(exc, _HostLeftAlone):
                # (a host left alone was not asked: _call says so, with the time left, until
                # it asks again)
                self._failures[ck] = (time.monotonic(), err)
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # mark retrieved: nobody else may be waiting
            if err is exc:
                raise
            raise err from exc
        else:
            fut.set_result(data)
            self._cache.put(ck, data)
            if byte_range is None and name in METADATA_NAMES:
                if data is not None:
                    self._metadata_seen(key, name, data)
                    if read_ahead:
                        self._expand(key, name, data)
                elif name == "zarr.json" and self._format is None and read_ahead:
                    # Not Zarr v3 here: the reader will ask for the v2 documents next.
                    base = key.rpartition("/")[0]
                    names = [".zarray", ".zgroup", ".zattrs"] + ([] if base else [".zmetadata"])
                    self._start_read_ahead([f"{base}/{n}" if base else n for n in names])
            return data
        finally:
            self._inflight.pop(fkey, None)

    # -- metadata: format, read-ahead -------------------------------------------------------
    def _skip_probe(self, name: str) -> bool:
        """Tell whether *name* is a document the known format cannot have (answered missing)."""
        if self._format == 3:
            return name in _V2_NAMES
        if self._format == 2:
            return name == "zarr.json"
        return False

    def _metadata_seen(self, key: str, name: str, data: bytes) -> None:
        if self._format is None:
            self._format = 3 if name == "zarr.json" else 2

    def _expand(self, key: str, name: str, data: bytes) -> None:
        """Read ahead the children named by a document a reader asked for (once per document).

        Documents fetched by read-ahead are expanded only when a reader asks for them too, so
        read-ahead never cascades through a hierarchy on its own.
        """
        if name not in ("zarr.json", ".zattrs") or len(data) > _READ_AHEAD_MAX_DOC:
            return
        with self._state_lock:
            if key in self._expanded:
                return
            self._expanded.add(key)
        self._start_read_ahead(children_metadata_keys(key, data, self._format))

    def _start_read_ahead(self, keys: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        for child in keys:
            if self._cache.get((child, None)) is not _MISSING:
                continue
            if (id(loop), child, None) in self._inflight:
                continue
            task = loop.create_task(self._read_ahead_one(child))
            self._background.add(task)
            with self._state_lock:  # counted once it exists (its callback runs later, here)
                self._background_count += 1
            task.add_done_callback(self._read_ahead_done)

    def _read_ahead_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        with self._state_lock:
            self._background_count -= 1
            if self._background_count <= 0:
                self._background_done.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the store's reads ahead are over, and its client's requests if it says.

        Reads ahead run in the background, started by the documents a reader asks for; a
        store over the lean HTTP client also waits until that client has no request queued
        or in flight (its answers fetched ahead included). Called from another thread than
        the event loop the reads run on (this one blocks).

        Returns
        -------
        bool
            False when *timeout* seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state_lock:
            if not self._background_done.wait_for(lambda: self._background_count <= 0, timeout):
                return False
        inner = getattr(self._store, "wait_idle", None)
        if inner is None:
            return True
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return bool(inner(left))

    async def _read_ahead_one(self, key: str) -> None:
        try:
            await self._read(key, None, read_ahead=False, limit=max_metadata_bytes())
        except Exception:  # the real read reports it
            logger.debug("read-ahead of %s failed", self._where(key), exc_info=True)

    async def _fetch(
        self, key: str, byte_range: ByteRequest | None, *, limit: int | None = None
    ) -> bytes | None:
        if limit is None and byte_range is None and key.rpartition("/")[2] in METADATA_NAMES:
            limit = max_metadata_bytes()  # zarr-python's own metadata reads are bounded too

        async def attempt(store: Store) -> bytes | None:
            from zarr.core.buffer import default_buffer_prototype

            if limit is not None and byte_range is None:
                return await _bounded_fetch(store, key, limit, self._where(key))
            buf = await store.get(key, default_buffer_prototype(), byte_range)
            return None if buf is None else _trim(buf.to_bytes(), byte_range)

        try:
            data = await self._call(key, attempt)
        except NotFoundError:  # the server said so (HTTP 410, an object store's "no such key")
            return None
        if data is not None:
            self.stats.bytes_read += len(data)
        return data

    async def _call(self, key: str, func: Callable[[Store], Awaitable[_T]]) -> _T:
        """Run ``func(store)`` with the concurrency limit, a timeout and retries."""
        opts = self.options
        attempt = 0
        if self._unreachable is not None and time.monotonic() < self._unreachable[0]:
            left = self._unreachable[0] - time.monotonic()
            raise _HostLeftAlone(
                f"{self.host} failed {_BREAKER_FAILURES} requests in a row; not asking it again "
                f"for {left:.0f} s (reading {self._where(key)}). Last error: "
                f"{self._unreachable[1]}",
                hint="Check the server and your network connection.",
            )
        while True:
            store = self._store
            try:
                async with self._semaphore():
                    self.stats.requests += 1
                    result = await asyncio.wait_for(func(store), opts.timeout)
                self._reads_ok += 1
                self._failed_in_a_row = 0
                return result
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except ExplorerError:
                raise  # refused by a rule of this package (redirect, size limit): final
            except Exception as exc:
                kind, detail = _classify(exc)
                if kind == "missing":  # an answer: the key does not exist
                    self._failed_in_a_row = 0
                    raise NotFoundError(f"No object at {self._where(key)} ({detail}).") from exc
                if kind == "denied":
                    if self._reads_ok == 0 or self._store is not store:
                        async with self._lock():
                            if self._store is not store:
                                continue  # switched to the other access meanwhile: retry
                            result = await self._try_alternate(func)
                            if result is not _MISSING:
                                return result
                    # Never taken for a missing key, even where it may be one (S3 answers 403
                    # for those when listing is not allowed): a refused chunk would show as
                    # the fill value without a word.
                    raise AccessDeniedError(
                        f"Access denied ({detail}) reading {self._where(key)} from {self.host}.",
                        hint=self._credentials_hint or None,
                    ) from exc
                retries = min(opts.retries, _REFUSED_RETRIES) if kind == "refused" else opts.retries
                if kind in ("fatal", "dns") or attempt >= retries:
                    error = self._failure(key, kind, detail, attempt + 1)
                    if kind != "fatal":
                        self._failed_in_a_row += 1
                        if self._failed_in_a_row >= _BREAKER_FAILURES:
                            # The host looks down: fail fast for a while instead of making
                            # every chunk wait for its own timeouts.
                            until = time.monotonic() + _BREAKER_SECONDS
                            self._unreachable = (until, error.message)
                    raise error from exc
                attempt += 1
                self.stats.retries += 1
                delay = min(opts.backoff * 2 ** (attempt - 1), 10.0) * (0.5 + _JITTER.random())
                logger.debug("%s: %s, retry %d in %.2fs", self._where(key), detail, attempt, delay)
                await asyncio.sleep(delay)

    async def _try_alternate(self, func: Callable[[Store], Awaitable[_T]]) -> Any:
        """After a refusal, try the other kind of access once; switch to it if it works.

        Returns the result, or ``_MISSING`` when there is no alternate or it failed too.
        """
        factory, self._alternate = self._alternate, None
        if factory is None:
            return _MISSING
        try:
            candidate = factory()
            async with self._semaphore():
                self.stats.requests += 1
                result = await asyncio.wait_for(func(candidate), self.options.timeout)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            logger.debug("%s: the other kind of access failed too", self.shown, exc_info=True)
            return _MISSING
        logger.debug("%s: access refused; switched to the other kind of access", self.shown)
        self._store = candidate
        self._reads_ok += 1
        return result

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._state_lock:
            lock = self._locks.get(loop)
            if lock is None:
                lock = asyncio.Lock()
                self._locks[loop] = lock
            return lock

    def _where(self, key: str) -> str:
        return f"{self.shown}/{key}" if key else self.shown

    def _failure(self, key: str, kind: str, detail: str, attempts: int) -> RemoteError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if kind == "timeout":
            return RemoteError(
                f"{self.host} did not answer within {self.options.timeout:g} s{tries} "
                f"for {self._where(key)}.",
                hint=f"The server is slow or unreachable; raise the limit with "
                f"{ENV_PREFIX}TIMEOUT, or with the option '{_OPTION_PREFIX}timeout' "
                f"{_OPTIONS_HOW}.",
            )
        if kind == "refused":
            return RemoteError(
                f"Connection refused by {self.peer}{tries} reading {self._where(key)}.",
                hint=REFUSED_HINT,
            )
        if kind == "connection":
            return RemoteError(
                f"Could not connect to {self.host} ({detail}){tries} reading {self._where(key)}.",
                hint=CONNECTION_HINT,
            )
        if kind == "dns":
            return RemoteError(
                f"Unknown host {self.host}: its name could not be resolved ({detail}).",
                hint="Check the host name in the URL and your network connection.",
            )
        if kind == "transient" and not detail.startswith("HTTP "):
            # what went wrong on the way (a dropped connection), not an answer of the server
            return RemoteError(
                f"Reading {self._where(key)} from {self.host} failed{tries}: {detail}.",
                hint="The server or the network had a problem; try again later.",
            )
        return RemoteError(
            f"{self.host} answered {detail}{tries} for {self._where(key)}.",
            hint="The server had a problem; try again later."
            if kind == "transient"
            else "Check the URL and the storage options.",
        )

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Read several keys or ranges concurrently."""
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    def get_ranges(
        self,
        key: str,
        byte_ranges: Sequence[ByteRequest | None],
        *,
        prototype: BufferPrototype,
        **options: Any,
    ) -> AsyncIterator[Sequence[tuple[int, Buffer | None]]]:
        """Read several byte ranges of *key*, merged where close, through :meth:`get`.

        zarr releases after 3.1 read a shard's inner chunks this way, and zarr's
        ``WrapperStore`` would pass the call to the wrapped store, past this store's cache,
        retries, limits and error messages.
        """
        return coalesced_get_ranges(self, key, byte_ranges, prototype=prototype, **options)

    # Newer zarr's WrapperStore also forwards synchronous reads to the wrapped store when that
    # one can do them; this store's cache, retries and limits are asynchronous only.
    _supports_sync_io = False

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> Any:
        reqs = list(requests)
        results = await asyncio.gather(*(self.get(*r) for r in reqs))
        for (key, _, _), value in zip(reqs, results, strict=True):
            yield key, value

    async def exists(self, key: str) -> bool:
        """Tell whether *key* exists (answered from the cache when possible).

        Raises
        ------
        AccessDeniedError
            When the server refuses to tell (never False for a refusal).
        RemoteError
            When the request failed after the retries.
        """
        check_key(key, where=self.shown)
        cached = self._cache.get((key, None))
        if cached is not _MISSING:
            self.stats.cache_hits += 1
            return cached is not None
        try:
            found = bool(await self._call(key, lambda s: s.exists(key)))
        except NotFoundError:
            found = False
        if not found:
            self._cache.put((key, None), None)
        return found

    async def getsize(self, key: str) -> int:
        """Size of *key* in bytes.

        Raises
        ------
        NotFoundError
            A ``FileNotFoundError``, when the key does not exist (the server said 404), as
            zarr's stores and local stores raise it.
        AccessDeniedError
            When the server refuses to tell (HTTP 401, 403): never taken for a missing key.
        RemoteError
            When the request failed after the retries (server errors, a refused connection,
            a timeout).
        """
        check_key(key, where=self.shown)
        cached = self._cache.get((key, None))
        if isinstance(cached, bytes):
            self.stats.cache_hits += 1
            return len(cached)
        if cached is None:  # known to be missing
            self.stats.cache_hits += 1
            raise NotFoundError(f"No object at {self._where(key)}.")
        try:
            size = await self._call(key, lambda s: s.getsize(key))
        except NotFoundError:
            self._cache.put((key, None), None)
            raise
        return int(size)

    @property
    def supports_listing(self) -> bool:
        """False for plain web servers (they cannot list), True for object stores."""
        if self._listable is not None:
            return self._listable
        return bool(self._store.supports_listing)

    async def _listing(self, key: str, make: Callable[[Store], AsyncIterator[str]]) -> list[str]:
        if not self.supports_listing:
            raise NotImplementedError(f"{self.shown}: this server cannot list its files.")

        async def collect(store: Store) -> list[str]:
            return [k async for k in make(store)]

        return await self._call(key, collect)

    async def list(self) -> AsyncIterator[str]:
        """List every key of the store."""
        for k in await self._listing("", lambda s: s.list()):
            yield k

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """List every key starting with *prefix*."""
        for k in await self._listing(prefix, lambda s: s.list_prefix(prefix)):
            yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """List the keys and "directories" directly below *prefix*."""
        for k in await self._listing(prefix, lambda s: s.list_dir(prefix)):
            yield k

    async def is_empty(self, prefix: str) -> bool:
        """Tell whether nothing is stored below *prefix*."""
        async for _ in self.list_prefix(prefix):
            return False
        return True


def _authority(url: str) -> str:
    """Return ``host:port`` of *url* (the scheme's default port when it names none).

    No user name or password: the text goes into messages.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return parts.netloc.rpartition("@")[2] or url
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 80 if parts.scheme == "http" else 443
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status in (404, 410):
        return "missing"
    if status in (408, 425, 429) or status >= 500:
        return "transient"
    return "fatal"


def _classify(exc: BaseException) -> tuple[str, str]:
    """Sort an exception from the file-system layer into what to do about it.

    Returns
    -------
    tuple
        ``(kind, detail)`` where kind is ``"missing"`` (the server said the key does not
        exist: HTTP 404 or 410, S3's ``NoSuchKey``, a file system's ``FileNotFoundError``),
        ``"denied"``, ``"transient"``, ``"timeout"``, ``"refused"``, ``"connection"``,
        ``"dns"`` or ``"fatal"``. The detail of an OS error is its text without ``[Errno N]``.
    """
    import http.client
    import socket
    import sys

    name = type(exc).__name__
    text = (os_error_text(exc) if isinstance(exc, OSError) else str(exc)) or name
    # aiohttp's types matter only when it is in use (imported): never imported just for this
    aiohttp: Any = sys.modules.get("aiohttp")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", "timed out"
    # the lean HTTP client (store._http)
    if isinstance(exc, HTTPStatusError):
        return _status_kind(exc.status), f"HTTP {exc.status} {exc.reason}".strip()
    if isinstance(exc, FileNotFoundError) and exc.filename is None:
        # How zarr's stores, fsspec, s3fs and gcsfs say "no such key" (a local file the
        # client needs, such as a key file, names itself and is no missing key). fsspec's
        # HTTP file system raises it for any failure to tell a size, caused by the failure.
        cause = exc.__cause__
        if cause is not None and cause is not exc:
            return _classify(cause)
        return "missing", "HTTP 404"
    if isinstance(exc, socket.gaierror):
        return "dns", os_error_text(exc)
    if connection_refused(exc):  # any layer: the lean client, aiohttp, botocore
        return "refused", "connection refused"
    if isinstance(exc, http.client.HTTPException):
        return "transient", f"connection dropped ({name})"
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ClientResponseError):
            return _status_kind(exc.status), f"HTTP {exc.status} {exc.message}".strip()
        dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)
        if dns_error is not None and isinstance(exc, dns_error):
            return "dns", os_error_text(exc)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return "connection", os_error_text(exc)
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
            return "transient", f"connection dropped ({name})"
        if isinstance(exc, aiohttp.ClientConnectionError):
            return "transient", f"connection error ({text})"
    # gcsfs
    code = getattr(exc, "code", None)
    if name == "HttpError" and code == 401 and type(exc.__cause__).__name__ == "RefreshError":
        # gcsfs words a failed token refresh (its endpoint unreachable a moment) as a 401
        return "transient", "the access token could not be refreshed"
    if name == "HttpError" and isinstance(code, int):
        return _status_kind(code), f"HTTP {code}"
    # botocore (through s3fs when not translated)
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "denied", "no credentials found"
    if name in ("EndpointConnectionError", "ConnectTimeoutError"):
        return "connection", os_error_text(exc)
    if name in ("ReadTimeoutError",):
        return "timeout", text
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return _status_kind(
                status
            ), f"HTTP {status} {response.get('Error', {}).get('Code', '')}"
    if isinstance(exc, PermissionError):
        return "denied", "HTTP 403"
    if isinstance(exc, OSError) and text.startswith("Forbidden"):
        return "denied", "HTTP 403"
    if isinstance(exc, ConnectionError):
        return "transient", f"connection error ({name})"
    # s3fs wraps 5xx/throttling in OSError subclasses carrying the boto error as __cause__
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        kind, detail = _classify(cause)
        if kind != "fatal":
            return kind, detail
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in (104, 110):
        return "transient", os_error_text(exc)
    return "fatal", f"{name}: {text}"


# --------------------------------------------------------------------------------------------
# opening


_AWS_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_AWS_AUTH_OPTIONS = ("anon", "key", "secret", "token", "profile", "session", "username", "password")

# Options are given as --storage-options JSON on the command line and as storage_options= in
# Python: a hint names both (the options are written as JSON, which Python reads as a dict too).
_OPTIONS_HOW = "with --storage-options (command line) or storage_options= (Python)"
_S3_HINT = (
    "Public buckets are read anonymously. For a private bucket set AWS_ACCESS_KEY_ID and "
    'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass {"key": ..., "secret": ...} or '
    f'{{"profile": ...}} {_OPTIONS_HOW}.'
)
_GCS_HINT = (
    "Public buckets are read anonymously. For a private bucket set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run `gcloud auth "
    f'application-default login`, or pass {{"token": ...}} {_OPTIONS_HOW}.'
)


def _s3_hint(bucket: str) -> str:
    """Say what to do when S3 refuses a request to *bucket*: credentials, then the policy."""
    return (
        f"{_S3_HINT} With credentials, the policy of bucket {bucket!r} (or your IAM policy) "
        "must allow s3:GetObject on the key. A bucket that does not allow s3:ListBucket "
        "answers 403 for absent keys too: allowing it lets absent chunks read as the fill "
        "value."
    )


def _gcs_hint(bucket: str) -> str:
    """Say what to do when GCS refuses a request to *bucket*: credentials, the permission."""
    return (
        f"{_GCS_HINT} With credentials, the account needs storage.objects.get on bucket "
        f"{bucket!r} (the Storage Object Viewer role, or the bucket's policy)."
    )


_HTTP_HINT = (
    f'Pass credentials, e.g. {{"headers": {{"Authorization": "Bearer ..."}}}}, {_OPTIONS_HOW}.'
)


def _aws_credentials_configured(environ: Mapping[str, str]) -> bool:
    if any(environ.get(v) for v in _AWS_CREDENTIAL_ENV):
        return True
    home = Path.home()
    files = (
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials"),
        environ.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config"),
    )
    return any(Path(f).is_file() for f in files)


def _gcp_credentials_configured(environ: Mapping[str, str]) -> bool:
    if environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    config = environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    return (Path(config) / "application_default_credentials.json").is_file()


def _emulator_host(environ: Mapping[str, str]) -> str | None:
    host = environ.get("STORAGE_EMULATOR_HOST", "")
    if host in ("", "default"):
        return None
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


async def _aclose_fs(fs: Any) -> None:
    session = getattr(fs, "_session", None)  # fsspec HTTP, gcsfs: an aiohttp session
    if session is not None and not session.closed:
        await session.close()
    creator = getattr(fs, "_s3creator", None)  # s3fs: an aiobotocore client context
    if creator is not None:
        await creator.__aexit__(None, None, None)


def _close_fs(fs: Any) -> None:
    """Close the network sessions of an asynchronous fsspec file system (fsspec does not)."""
    loop, iothread = zarr_io_loop_and_thread()
    try:
        if loop is not None and loop.is_running() and threading.current_thread() is not iothread:
            asyncio.run_coroutine_threadsafe(_aclose_fs(fs), loop).result(timeout=1)
            return
        if loop is not None and loop.is_running():
            loop.create_task(_aclose_fs(fs))
            return
    except Exception:
        logger.debug("closing %r failed", fs, exc_info=True)
    session = getattr(fs, "_session", None)
    connector = getattr(session, "_connector", None)
    if connector is not None:
        connector._close()


def _fsspec_store(fs: Any, path: str) -> Store:
    from zarr.storage import FsspecStore

    store = FsspecStore(fs, path=path, read_only=True)
    weakref.finalize(store, _close_fs, fs)
    return store


def _redirect_guard(url: str) -> Any:
    """Build an aiohttp trace that stops redirects leaving the origin or prefix of *url*."""
    import aiohttp
    from yarl import URL

    base = URL(url)
    prefix = base.path.rstrip("/") + "/"

    async def on_redirect(session: Any, ctx: Any, params: Any) -> None:
        response = params.response
        location = response.headers.get("Location", "")
        try:
            target = params.url.join(URL(location))
        except ValueError:
            target = None
        allowed = (
            target is not None
            and target.scheme == base.scheme
            and target.host == base.host
            and target.port == base.port
            and _path_under(target.path, prefix)
        )
        if allowed:
            return
        response.close()
        raise RedirectRefusedError(
            f"{params.url} redirected to {location!r}, which is "
            + (
                "another host"
                if target is None or target.host != base.host
                else "outside the store"
            )
            + f"; redirects are followed only below {url} on the same host.",
            hint="Open the URL the data really lives at; no request was sent to the redirect "
            "target.",
        )

    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(on_redirect)
    return trace


def _path_under(path: str, prefix: str) -> bool:
    """Tell whether the URL *path* lies below *prefix* (``/data/img.zarr/``), ``..`` resolved."""
    from posixpath import normpath
    from urllib.parse import unquote

    decoded = unquote(path)
    return (normpath(decoded) + "/").startswith(prefix) and "\\" not in decoded


class HTTPStore(Store):
    """A read-only zarr store over :class:`~napari_zarr_explorer.store._http.HTTPClient`.

    Requests run in the client's threads (standard-library ``http.client``, connections kept
    alive); :class:`RemoteStore` adds retries, the concurrency limit, the cache and the error
    messages. Web servers cannot list their files.
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = False
    _supports_sync_io = False

    def __init__(self, client: HTTPClient) -> None:
        super().__init__(read_only=True)
        self.client = client
        self.path = client.base_url
        weakref.finalize(self, client.close)

    def __getstate__(self) -> dict[str, Any]:
        return {"client": self.client}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["client"])  # type: ignore[misc]

    def __eq__(self, value: object) -> bool:
        return isinstance(value, HTTPStore) and value.path == self.path

    def __hash__(self) -> int:
        return hash(("HTTPStore", self.path))

    def __repr__(self) -> str:
        return f"HTTPStore({self.path!r})"

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.client.executor, func, *args)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read *key* (or a byte range of it); None when it does not exist."""
        rng = _range_key(byte_range)
        if rng is not None and len(rng) == 2:
            rng = (rng[0], rng[1], 0)
        data = await self._run(self.client.get, key, rng)
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_bounded(self, key: str, limit: int) -> bytes | None:
        """Read *key* whole, refusing bodies beyond *limit* bytes (None when absent)."""
        return await self._run(self.client.get, key, None, limit)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Read several keys or ranges concurrently."""
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        """Tell whether *key* exists (a HEAD request)."""
        found, _ = await self._run(self.client.head, key)
        return found

    async def getsize(self, key: str) -> int:
        """Size of *key* in bytes (HEAD, or the object read when the server does not say)."""
        found, size = await self._run(self.client.head, key)
        if not found:
            raise FileNotFoundError(key)
        if size is None:
            data = await self._run(self.client.get, key, None)
            if data is None:
                raise FileNotFoundError(key)
            size = len(data)
        return size

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the client has no request queued or in flight (False: *timeout* passed).

        See :meth:`HTTPClient.wait_idle`.
        """
        return self.client.wait_idle(timeout)

    def _refuse(self) -> None:
        raise ExplorerError(f"{self.path}: remote stores are opened read-only.")

    async def set(self, key: str, value: Buffer) -> None:
        """Refuse: read-only."""
        self._refuse()

    async def delete(self, key: str) -> None:
        """Refuse: read-only."""
        self._refuse()

    async def list(self) -> AsyncIterator[str]:
        """Web servers cannot list their files."""
        raise NotImplementedError(f"{self.path}: this server cannot list its files.")
        yield ""  # pragma: no cover

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Web servers cannot list their files."""
        raise NotImplementedError(f"{self.path}: this server cannot list its files.")
        yield ""  # pragma: no cover

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """Web servers cannot list their files."""
        raise NotImplementedError(f"{self.path}: this server cannot list its files.")
        yield ""  # pragma: no cover


def _http_store(url: str, fs_options: dict[str, Any], opts: RemoteOptions) -> Store:
    headers = client_options(fs_options)
    if headers is not None and urlsplit(url).username is None:  # user:password@ is aiohttp's
        # plain HTTP(S) with at most headers: the lean client (no aiohttp import, no session)
        client = take_prefetched(url, headers)
        if client is not None and (
            client.timeout != opts.timeout or client.max_connections != opts.concurrency
        ):
            client.close()  # fetched ahead with other options: start afresh
            client = None
        if client is None:
            client = HTTPClient(
                url, headers=headers, timeout=opts.timeout, max_connections=opts.concurrency
            )
        return HTTPStore(client)
    return _fsspec_http_store(url, fs_options, opts)


def _fsspec_http_store(url: str, fs_options: dict[str, Any], opts: RemoteOptions) -> Store:
    """Open fsspec's HTTP file system over aiohttp, for options the lean client does not take."""
    import aiohttp
    from fsspec.implementations.http import HTTPFileSystem

    fs_options = dict(fs_options)
    client_kwargs = dict(fs_options.pop("client_kwargs", None) or {})
    client_kwargs.setdefault(
        "timeout", aiohttp.ClientTimeout(total=None, sock_connect=opts.timeout)
    )
    client_kwargs["trace_configs"] = [
        *(client_kwargs.get("trace_configs") or ()),
        _redirect_guard(url),
    ]
    fs = HTTPFileSystem(
        asynchronous=True, client_kwargs=client_kwargs, skip_instance_cache=True, **fs_options
    )
    return _fsspec_store(fs, url)


def _s3_store(path: str, fs_options: dict[str, Any], opts: RemoteOptions, anon: bool) -> Store:
    import s3fs

    fs_options = dict(fs_options)
    config = dict(fs_options.pop("config_kwargs", None) or {})
    config.setdefault("connect_timeout", opts.timeout)
    config.setdefault("read_timeout", opts.timeout)
    # botocore's pool holds 10 connections by default: allow as many as requests in flight.
    config.setdefault("max_pool_connections", opts.concurrency)
    # Retries happen in RemoteStore, once, with our limits.
    config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
    if anon:
        fs_options["anon"] = True
    # With max_concurrency > 1, s3fs asks for the size (HEAD) before every whole-object read:
    # one more round trip per key. Keys are fetched concurrently here anyway.
    fs_options.setdefault("max_concurrency", 1)
    fs = s3fs.S3FileSystem(
        asynchronous=True, config_kwargs=config, skip_instance_cache=True, **fs_options
    )
    fs.retries = 1
    return _fsspec_store(fs, path)


def _gcs_store(path: str, fs_options: dict[str, Any], opts: RemoteOptions, token: Any) -> Store:
    # The plain GCS file system: gcsfs's default "extended" one first asks a gRPC control API
    # for the bucket layout (another round trip, refused for anonymous users, not cached then).
    from gcsfs.core import GCSFileSystem

    fs_options = dict(fs_options)
    fs_options.setdefault("token", token)
    fs_options.setdefault("requests_timeout", opts.timeout)
    fs = GCSFileSystem(asynchronous=True, skip_instance_cache=True, **fs_options)
    # gcsfs retries every failed request itself, up to 6 times with delays growing to 16 s, so
    # a refused or unreachable endpoint took about 40 s before RemoteStore's own policy
    # (timeouts, a refusal tried once more) could answer; botocore's retries are switched off
    # the same way. The undecorated request also logs nothing, where gcsfs's retry wrapper logs
    # each failure it gives up on with a traceback. Set on the instance: a copy sent to another
    # process is made again from its options and retries as gcsfs does.
    single = getattr(GCSFileSystem._request, "__wrapped__", None)
    if single is not None:
        fs._request = types.MethodType(single, fs)
    return _fsspec_store(fs, path)


def open_remote_store(
    location: Location, *, environ: Mapping[str, str] | None = None
) -> RemoteStore:
    """Open a remote location as a read-only zarr store.

    Parameters
    ----------
    location
        An ``http``, ``https``, ``s3`` or ``gs`` location (see
        :func:`~napari_zarr_explorer.store.parse_location`). Its ``storage_options`` go to the
        file system (fsspec's HTTP file system, s3fs or gcsfs), except the ``explorer_*`` keys
        of :class:`RemoteOptions`.
    environ
        Environment variables to use instead of ``os.environ`` (for tests).

    Returns
    -------
    RemoteStore
        Opening makes no request: the first read does.

    Raises
    ------
    ExplorerError
        For an unsupported scheme or invalid options.
    RemoteError
        When the package needed for the scheme is not installed.
    """
    env = os.environ if environ is None else environ
    store = _open(location, env)
    if environ is None:
        store._reopen = functools.partial(open_remote_store, location)
    return store


def _open(location: Location, env: Mapping[str, str]) -> RemoteStore:
    from napari_zarr_explorer.store.locate import check_userinfo

    opts, fs_options = RemoteOptions.split(location.storage_options, env)
    protocol = location.protocol
    url = location.url
    check_userinfo(url)
    try:
        if protocol in ("http", "https"):
            if "?" in url:
                raise ExplorerError(
                    f"{shown_url(url)}: URLs with a query string cannot be opened as a Zarr store.",
                    hint=f"Remove the '?...' part; pass tokens as 'headers' {_OPTIONS_HOW}.",
                )
            return RemoteStore(
                _http_store(url, fs_options, opts),
                url=url,
                options=opts,
                credentials_hint=_HTTP_HINT,
                listable=False,
            )
        if protocol == "s3":
            return _open_s3(url, fs_options, opts, env)
        if protocol in ("gs", "gcs"):
            return _open_gcs(url, fs_options, opts, env)
    except ImportError as exc:
        raise RemoteError(
            f"Opening {protocol}:// URLs needs the package {exc.name!r}, which is not installed.",
            hint="Install it with: pip install 'napari-zarr-explorer[remote]'.",
        ) from exc
    raise ExplorerError(
        f"{url}: the protocol {protocol!r} is not a remote protocol.",
        hint="Use http(s)://, s3:// or gs://.",
    )


def _split_bucket(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if not parts.netloc:
        raise ExplorerError(f"{url}: no bucket name in the URL.", hint="Use s3://bucket/path.")
    return parts.netloc, f"{parts.netloc}{parts.path}".rstrip("/")


def _open_s3(
    url: str, fs_options: dict[str, Any], opts: RemoteOptions, env: Mapping[str, str]
) -> RemoteStore:
    bucket, path = _split_bucket(url)
    endpoint = (
        fs_options.get("endpoint_url")
        or (fs_options.get("client_kwargs") or {}).get("endpoint_url")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
    )
    if endpoint and "endpoint_url" not in fs_options:
        fs_options = {**fs_options, "endpoint_url": endpoint}
    alternate: Callable[[], Store] | None = None
    if any(k in fs_options for k in _AWS_AUTH_OPTIONS):
        store = _s3_store(path, fs_options, opts, anon=False)
    else:
        signed = _aws_credentials_configured(env)
        store = _s3_store(path, fs_options, opts, anon=not signed)

        def alternate() -> Store:
            return _s3_store(path, fs_options, opts, anon=signed)

    rs = RemoteStore(
        store,
        url=url,
        options=opts,
        alternate=alternate,
        credentials_hint=_s3_hint(bucket),
    )
    rs.host = urlsplit(endpoint).netloc.rpartition("@")[2] if endpoint else "s3.amazonaws.com"
    rs.peer = _authority(endpoint) if endpoint else "s3.amazonaws.com:443"
    return rs


def _open_gcs(
    url: str, fs_options: dict[str, Any], opts: RemoteOptions, env: Mapping[str, str]
) -> RemoteStore:
    bucket, path = _split_bucket(url)
    url = "gs://" + path
    emulator = _emulator_host(env)
    endpoint = fs_options.get("endpoint_url") or emulator
    if endpoint and "endpoint_url" not in fs_options:
        fs_options = {**fs_options, "endpoint_url": endpoint}
    alternate: Callable[[], Store] | None = None
    if "token" in fs_options:
        store = _gcs_store(path, fs_options, opts, fs_options["token"])
    elif emulator is None and _gcp_credentials_configured(env):
        store = _gcs_store(path, fs_options, opts, "google_default")

        def alternate() -> Store:
            return _gcs_store(path, fs_options, opts, "anon")
    else:
        # gcsfs would otherwise probe the cloud metadata server, which takes seconds off GCP.
        store = _gcs_store(path, fs_options, opts, "anon")
    rs = RemoteStore(
        store, url=url, options=opts, alternate=alternate, credentials_hint=_gcs_hint(bucket)
    )
    rs.host = urlsplit(endpoint).netloc.rpartition("@")[2] if endpoint else "storage.googleapis.com"
    rs.peer = _authority(endpoint) if endpoint else "storage.googleapis.com:443"
    return rs


# --------------------------------------------------------------------------------------------
# helpers for metadata readers


def fetch_many(store: Store, keys: Sequence[str]) -> dict[str, bytes | None]:
    """Read several keys of *store* concurrently, from synchronous code.

    Parameters
    ----------
    store
        Any zarr store (local stores too).
    keys
        Store keys such as ``"zarr.json"`` or ``"0/.zarray"``.

    Returns
    -------
    dict
        Each key mapped to its bytes, or ``None`` when absent.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    async def one(key: str) -> bytes | None:
        if isinstance(store, RemoteStore):
            return await store.get_bytes(key)
        buf = await store.get(key, default_buffer_prototype())
        return None if buf is None else buf.to_bytes()

    unique = list(dict.fromkeys(keys))

    async def many() -> list[bytes | None]:
        return list(await asyncio.gather(*(one(k) for k in unique)))

    results: list[bytes | None] = sync(many()) if unique else []
    return dict(zip(unique, results, strict=True))


#: Most pieces :func:`read_region` splits a read into (beyond it, one plain read).
_MAX_PIECES = 4096


def read_region(array: Any, selection: Sequence[slice]) -> Any:
    """Read a region of a zarr array, its inner chunks fetched concurrently when sharded.

    zarr-python reads the inner chunks of one shard one after another; on a remote store each
    costs a round trip. This reads the region as one piece per inner chunk, all at once (the
    shard index is fetched once: identical requests are merged and cached by
    :class:`RemoteStore`). Arrays that are not sharded, or not on a :class:`RemoteStore`, are read
    as usual.

    Parameters
    ----------
    array
        A ``zarr.Array``.
    selection
        One step-1 slice per dimension, with explicit ``start`` and ``stop``.

    Returns
    -------
    numpy.ndarray
        The region, as ``array[selection]`` would return it.
    """
    import numpy as np
    from zarr.core.sync import sync

    sel = tuple(selection)
    shards = getattr(array, "shards", None)
    if not isinstance(array.store, RemoteStore) or len(sel) != array.ndim:
        return array[sel]
    import itertools

    chunks = array.chunks
    shape = array.shape
    origin = tuple(int(s.start) for s in sel)
    if shards is None:
        # zarr-python fetches the chunks of one read at most ``async.concurrency`` (a global
        # setting, 10 by default) at a time; as one piece per chunk they all go out at once,
        # bounded by this store's own limit (RemoteOptions.concurrency).
        from zarr.core.config import config as zarr_config

        n = math.prod(
            -(-int(s.stop) // c) - int(s.start) // c for s, c in zip(sel, chunks, strict=True)
        )
        if n <= int(zarr_config.get("async.concurrency")) or n > _MAX_PIECES:
            return array[sel]
        shards = chunks
    # One piece per shard touched; a shard read only in part is split into its inner chunks
    # (a shard read whole is one request anyway).
    pieces: list[tuple[slice, ...]] = []
    for shard_part in itertools.product(
        *(_split(int(s.start), int(s.stop), n) for s, n in zip(sel, shards, strict=True))
    ):
        whole = all(
            p.start % n == 0 and (p.stop - p.start == n or p.stop == size)
            for p, n, size in zip(shard_part, shards, shape, strict=True)
        )
        if whole:
            pieces.append(shard_part)
        else:
            pieces.extend(
                itertools.product(
                    *(_split(p.start, p.stop, c) for p, c in zip(shard_part, chunks, strict=True))
                )
            )
        if len(pieces) > _MAX_PIECES:
            return array[sel]
    if len(pieces) <= 1:
        return array[sel]
    out = np.empty(tuple(int(s.stop) - int(s.start) for s in sel), dtype=array.dtype)
    async_array = array.async_array

    async def one(src: tuple[slice, ...]) -> None:
        dst = tuple(slice(p.start - o, p.stop - o) for p, o in zip(src, origin, strict=True))
        out[dst] = await async_array.getitem(src)

    async def all_pieces() -> None:
        await asyncio.gather(*(one(p) for p in pieces))

    sync(all_pieces())
    return out


def _split(start: int, stop: int, size: int) -> list[slice]:
    """Cut ``start:stop`` at the multiples of *size*."""
    out = []
    lo = start
    while lo < stop:
        hi = min((lo // size + 1) * size, stop)
        out.append(slice(lo, hi))
        lo = hi
    return out
