"""A lean HTTP(S) client for web servers holding Zarr data: the standard library only.

:class:`HTTPClient` reads the objects below one base URL with ``http.client`` connections kept
alive in a pool and used from threads (up to the store's concurrency at once). It replaces
aiohttp (through fsspec) for plain ``http(s)://`` stores: importing aiohttp and building its two
SSL contexts costs a few tenths of a second before the first byte of an image can move, and
this module costs nothing of the kind (an SSL context is made once, for ``https`` only).

The rules are those of the store layer (``docs/security.md``):

- every request has a timeout (connecting and each read);
- redirects are followed only to the same scheme, host and port, below the store's URL, at most
  :data:`MAX_REDIRECTS` times; anything else raises :class:`RedirectRefusedError` before a
  request is sent there;
- a bounded read checks ``Content-Length`` before reading the body and cuts a body without one
  off after the limit; a body shorter than its ``Content-Length`` is an error, never data;
- a server that ignores a ``Range`` header and sends the whole object is answered with the
  requested bytes only.

Retries, the concurrency limit, caching and error messages are the job of
:class:`~napari_zarr_explorer.store.remote.RemoteStore`, which wraps this client.

Importing this module does not import zarr (nor aiohttp): :func:`prefetch` can start the first
metadata requests of a store while the rest of the reader is still being imported.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from posixpath import normpath
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from napari_zarr_explorer.errors import ExplorerError, RemoteError
from napari_zarr_explorer.store.keys import check_key
from napari_zarr_explorer.store.limits import metadata_too_large

__all__ = [
    "MAX_REDIRECTS",
    "ClientClosedError",
    "HTTPClient",
    "HTTPStatusError",
    "RedirectRefusedError",
    "client_options",
    "peek_prefetched",
    "prefetch",
    "take_prefetched",
]

#: Most redirects followed for one request.
MAX_REDIRECTS = 5
#: Seconds an answer fetched ahead (:func:`prefetch`) waits to be used before it is dropped.
PREFETCH_TTL = 30.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "napari-zarr-explorer"
_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: Any = None


class RedirectRefusedError(RemoteError):
    """A server redirected a request to another origin or outside the store's prefix.

    Redirects are followed only to the same scheme, host and port, below the store's URL;
    anything else stops the read before a request is sent there, so headers and credentials
    never leave the origin.
    """


class ClientClosedError(ExplorerError, RuntimeError):
    """A request was made of an :class:`HTTPClient` after :meth:`HTTPClient.close`.

    Closing is final: a closed client makes no new request (it would open connections and
    threads nothing closes again). Not a :class:`~napari_zarr_explorer.errors.RemoteError`:
    the server is not at fault, and a store reading through the client is not retried.
    """


class HTTPStatusError(OSError):
    """A server answered with a status that is neither success, redirect nor "not found"."""

    def __init__(self, status: int, reason: str, url: str) -> None:
        super().__init__(f"HTTP {status} {reason}".strip() + f" for {url}")
        self.status = status
        self.reason = reason
        self.url = url


def _ssl_context() -> Any:
    """Return the process's default SSL context for verified HTTPS (made once, on first use)."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            import ssl

            _SSL_CONTEXT = ssl.create_default_context()
        return _SSL_CONTEXT


def client_options(fs_options: Mapping[str, Any]) -> dict[str, str] | None:
    """Return the headers for :class:`HTTPClient` if it can honour *fs_options*, else None.

    The lean client takes ``headers`` (a mapping of strings) only; any other file-system option
    (``client_kwargs``, ``block_size``...) is for fsspec's HTTP file system over aiohttp.
    """
    if any(k != "headers" for k in fs_options):
        return None
    headers = fs_options.get("headers") or {}
    if not isinstance(headers, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        return None
    return dict(headers)


_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _DaemonThreads(Executor):
    """Threads for requests that never hold the interpreter at exit.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so a
    request a slow server holds open would keep napari (or a script) from quitting until its
    timeout. These threads are daemons: at exit, requests in flight are abandoned (their
    connections are the operating system's to close). Threads are started on demand, up to
    *max_workers*, and reused.
    """

    def __init__(self, max_workers: int, name: str, where: str = "") -> None:
        self._max = max(1, int(max_workers))
        self._name = name
        self._where = where
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._pending = 0  # submitted and not finished (queued or running)
        self._done = threading.Condition(self._lock)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` in one of the threads; return its future."""
        fut: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise _closed_error(self._where)
            self._pending += 1
            self._queue.put((fut, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                t = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(t)
                t.start()
        return fut

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fut, fn, args, kwargs = item
            del item
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to whoever waits on the future
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            del fut, fn, args, kwargs
            self._finished(1)
            self._idle.release()

    def _finished(self, n: int) -> None:
        with self._lock:
            self._pending -= n
            if self._pending <= 0:
                self._done.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no work is queued or running; return False if *timeout* passed first."""
        with self._lock:
            return self._done.wait_for(lambda: self._pending <= 0, timeout)

    def busy(self) -> bool:
        """Tell whether work is queued or running."""
        with self._lock:
            return self._pending > 0

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once their current work is done (waiting for it if *wait*)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
                    self._finished(1)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for t in threads:
                t.join()


class _Pool:
    """A client's kept-alive connections and request threads.

    Kept apart from the client so that a finalizer can close them without keeping the client
    alive: when the client is collected, and at interpreter exit (``weakref.finalize`` runs
    then), where sockets left open would be reported as ``ResourceWarning: unclosed socket``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()
        self.executor: _DaemonThreads | None = None
        # threads stopped by close() while requests were still running in them: wait_idle()
        # waits for those requests too
        self.stopping: list[_DaemonThreads] = []
        self.final = False  # closed for good: connections are no longer kept

    def checkout(self) -> http.client.HTTPConnection | None:
        with self.lock:
            return self.idle.pop() if self.idle else None

    def checkin(self, conn: http.client.HTTPConnection) -> None:
        with self.lock:
            if not self.final and len(self.idle) < self.size:
                self.idle.append(conn)
                return
        conn.close()

    def close(self, *, final: bool = False) -> None:
        """Close the idle connections and stop the threads.

        With *final*, no connection is kept any more: a request still in flight at exit
        closes its connection when it ends.
        """
        with self.lock:
            idle, self.idle = self.idle, []
            executor, self.executor = self.executor, None
            self.final = self.final or final
        for conn in idle:
            conn.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            with self.lock:
                self.stopping = [e for e in (*self.stopping, executor) if e.busy()]

    def executors(self) -> list[_DaemonThreads]:
        """Return the current threads, if any, and those stopped with requests still running."""
        with self.lock:
            self.stopping = [e for e in self.stopping if e.busy()]
            return [*self.stopping, *([self.executor] if self.executor is not None else [])]


class HTTPClient:
    """Read objects below *base_url* over HTTP(S) with pooled keep-alive connections.

    Parameters
    ----------
    base_url
        ``http://`` or ``https://`` URL of the store (no query string).
    headers
        Headers sent with every request (credentials, for instance); they are sent to the
        store's origin only (redirects elsewhere are refused).
    timeout
        Seconds allowed for connecting and for each read of the socket.
    max_connections
        Most requests in flight at once (threads), and connections kept alive.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.netloc = parts.netloc
        self.prefix = (parts.path.rstrip("/") or "") + "/"
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.max_connections = int(max_connections)
        self._setup()

    def _setup(self) -> None:
        self._pool = _Pool(self.max_connections)
        # closes the connections when the client is collected, and at interpreter exit
        weakref.finalize(self, self._pool.close, final=True)
        self._lock = threading.Lock()
        self._early: dict[str, tuple[float, Future[tuple[int, bytes | None]]]] = {}
        self._asked: set[str] = set()  # metadata keys the store has asked for itself
        # clear while prefetch() is still asking for documents; set otherwise (nothing ahead)
        self._ahead = threading.Event()
        self._ahead.set()
        self.requests = 0  # requests sent (tests and benchmarks)

    # -- pickling: configuration only ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "headers": self.headers,
            "timeout": self.timeout,
            "max_connections": self.max_connections,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["base_url"],
            headers=state["headers"],
            timeout=state["timeout"],
            max_connections=state["max_connections"],
        )

    def __repr__(self) -> str:
        return f"HTTPClient({self.base_url!r})"

    @property
    def executor(self) -> Executor:
        """The threads requests run in (made on first use; they never delay the exit).

        Raises
        ------
        ClientClosedError
            After :meth:`close`.
        """
        pool = self._pool
        with pool.lock:
            if pool.final:
                raise _closed_error(self.base_url)
            if pool.executor is None:
                pool.executor = _DaemonThreads(self.max_connections, "nze-http", self.base_url)
            return pool.executor

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the client then makes no new request)."""
        return self._pool.final

    def close(self) -> None:
        """Close the idle connections and stop the threads; the client is closed for good.

        Requests in flight finish (and close their connections); requests queued and not
        started are cancelled; :meth:`wait_idle` waits for those in flight. Any request after
        it (:meth:`get`, :meth:`head`, :meth:`request`, :meth:`fetch_ahead`, :attr:`executor`)
        raises :class:`ClientClosedError`; answers already fetched ahead can still be looked
        at (:meth:`peek_early`). Closing again does nothing. The client is also closed when it
        is collected and at interpreter exit. A pickled copy is a new, open client.
        """
        self._pool.close(final=True)

    def _check_open(self) -> None:
        if self._pool.final:
            raise _closed_error(self.base_url)

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=_ssl_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = self._pool.checkout()
        if conn is not None:
            return conn, True
        return self._connect(), False

    # -- requests --------------------------------------------------------------------------
    def url_of(self, key: str) -> str:
        """Return the URL of the store *key*."""
        return f"{self.base_url}/{key}" if key else self.base_url

    def _path_of(self, key: str) -> str:
        path = urlsplit(self.url_of(key)).path
        return quote(unquote(path), safe="/:@!$&'()*+,;=-._~")

    def _allowed(self, target: str) -> tuple[bool, str]:
        """Tell whether a redirect to the absolute URL *target* may be followed, and why not."""
        parts = urlsplit(target)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False, "an invalid URL"
        if parts.scheme != self.scheme or parts.hostname != self.host or port != self.port:
            return False, "another host"
        decoded = unquote(parts.path)
        if "\\" in decoded or not (normpath(decoded) + "/").startswith(self.prefix):
            return False, "outside the store"
        if parts.query:
            return False, "a URL with a query string"
        return True, ""

    def request(
        self,
        key: str,
        *,
        method: str = "GET",
        range_header: str | None = None,
        limit: int | None = None,
    ) -> tuple[int, bytes | None, Mapping[str, str]]:
        """Send one request for *key*; return ``(status, body, headers)``.

        The status is 404 (body None) when the object does not exist. Redirects are followed
        within the store's URL; other failures raise :class:`HTTPStatusError` (an answer),
        :class:`RedirectRefusedError`, or the socket's ``OSError`` (no answer: refused,
        reset, timed out, unknown host) or ``http.client.HTTPException`` (a broken answer).

        Parameters
        ----------
        key
            Store key (checked with :func:`~napari_zarr_explorer.store.keys.check_key`).
        method
            ``GET`` or ``HEAD``.
        range_header
            Value of a ``Range`` header (``bytes=0-99``...).
        limit
            Largest body read; a larger ``Content-Length`` raises
            :class:`~napari_zarr_explorer.errors.MetadataError` before the body is read, and a
            body without one is cut off after *limit* + 1 bytes (the caller then refuses it).
        """
        self._check_open()
        check_key(key, where=self.base_url)
        url = self.url_of(key)
        path = self._path_of(key)
        headers = {
            "User-Agent": _USER_AGENT,
            "Accept-Encoding": "identity",
            **self.headers,
        }
        if range_header is not None:
            headers["Range"] = range_header
        for _ in range(MAX_REDIRECTS + 1):
            status, body, resp_headers = self._once(method, path, headers, limit, url)
            if status not in _REDIRECT_STATUSES:
                return status, body, resp_headers
            location = resp_headers.get("location", "")
            target = urljoin(f"{self.scheme}://{self.netloc}{path}", location)
            ok, why = self._allowed(target)
            if not ok:
                raise RedirectRefusedError(
                    f"{url} redirected to {location!r}, which is {why}; redirects are followed "
                    f"only below {self.base_url} on the same host.",
                    hint="Open the URL the data really lives at; no request was sent to the "
                    "redirect target.",
                )
            parts = urlsplit(target)
            path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~")
            url = target
        raise RemoteError(
            f"{self.url_of(key)}: more than {MAX_REDIRECTS} redirects.",
            hint="The server redirects in a loop; open the URL the data really lives at.",
        )

    def _once(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        limit: int | None,
        url: str,
    ) -> tuple[int, bytes | None, Mapping[str, str]]:
        deadline = time.monotonic() + self.timeout
        conn, reused = self._checkout()
        resp: http.client.HTTPResponse | None = None
        try:
            try:
                conn.request(method, path, headers=dict(headers))
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not reused:
                    raise
                # the server closed a kept-alive connection meanwhile: once more, on a new one
                conn, reused = self._connect(), False
                conn.request(method, path, headers=dict(headers))
                resp = conn.getresponse()
            with self._lock:
                self.requests += 1
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
            if status in (404, 410):
                resp.read(1 << 16)  # small "not found" pages leave the connection reusable
                body: bytes | None = None
            elif status in _REDIRECT_STATUSES:
                resp.read(1 << 16)
                body = b""
            elif 200 <= status < 300:
                body = b"" if method == "HEAD" else _read_body(resp, limit, url, deadline)
            else:
                resp.read(1 << 16)
                raise HTTPStatusError(status, resp.reason or "", url)
            if resp.will_close or not resp.isclosed():
                conn.close()
            else:
                self._pool.checkin(conn)
                conn = None  # type: ignore[assignment]
            return status, body, resp_headers
        finally:
            if conn is not None:
                # a response that owns the socket (the server said it would close) keeps it
                # open until it is closed itself; left to the garbage collector, an error's
                # traceback can hold it long after, and the socket then closes unclosed
                if resp is not None:
                    resp.close()
                conn.close()

    def get(
        self, key: str, byte_range: tuple[str, int, int] | None = None, limit: int | None = None
    ) -> bytes | None:
        """Read *key* whole or a byte range of it (None when it does not exist).

        *byte_range* is ``("range", start, end)`` (end excluded), ``("offset", start, 0)`` or
        ``("suffix", n, 0)``. An answer fetched ahead by :func:`prefetch` is used once.
        """
        self._check_open()
        if byte_range is None and limit is not None:
            early = self._take_early(key)
            if early is not _NOTHING:
                return early  # type: ignore[return-value]
        header = None
        if byte_range is not None:
            kind, a, b = byte_range
            if kind == "range":
                if b <= a:
                    return b""
                header = f"bytes={a}-{b - 1}"
            elif kind == "offset":
                header = f"bytes={a}-"
            else:
                if a <= 0:
                    return b""
                header = f"bytes=-{a}"
        status, body, _ = self.request(key, range_header=header, limit=limit)
        if body is None or status == 404 or status == 410:
            return None
        if byte_range is not None and status == 200:
            # the server ignored the Range header and sent it all: keep what was asked for
            kind, a, b = byte_range
            if kind == "range":
                body = body[a:b]
            elif kind == "offset":
                body = body[a:]
            else:
                body = body[max(len(body) - a, 0) :]
        return body

    def head(self, key: str) -> tuple[bool, int | None]:
        """Return ``(exists, size)`` of *key* (size None when the server does not say)."""
        _, body, headers = self.request(key, method="HEAD")
        if body is None:
            return False, None
        length = headers.get("content-length")
        return True, int(length) if length and length.isdigit() else None

    # -- fetching ahead --------------------------------------------------------------------
    def fetch_ahead(self, keys: Iterable[str], limit: int) -> None:
        """Start bounded reads of metadata *keys* in the background; :meth:`get` takes them."""
        self._check_open()
        now = time.monotonic()
        for key in keys:
            with self._lock:
                if key in self._early or key in self._asked:
                    continue  # fetched ahead already, or asked for by the store meanwhile
                fut: Future[tuple[int, bytes | None]] = Future()
                self._early[key] = (now, fut)
            try:
                self.executor.submit(self._early_one, key, limit, fut)
            except ClientClosedError:  # closed meanwhile: leave no answer that never comes
                with self._lock:
                    self._early.pop(key, None)
                fut.cancel()
                raise

    def _early_one(self, key: str, limit: int, fut: Future[tuple[int, bytes | None]]) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            status, body, _ = self.request(key, limit=limit)
        except BaseException as exc:
            fut.set_exception(exc)
            return
        fut.set_result((status, body))

    def _take_early(self, key: str) -> object:
        """Return the answer fetched ahead for *key* (bytes; None: missing), else ``_NOTHING``.

        The key counts as asked from now on: it is not fetched ahead any more.
        """
        with self._lock:
            self._asked.add(key)
            entry = self._early.pop(key, None)
        if entry is None:
            return _NOTHING
        when, fut = entry
        if time.monotonic() - when > PREFETCH_TTL:
            return _NOTHING
        if fut.cancel():
            # not started yet (all threads busy, maybe with this very call): ask now instead
            return _NOTHING
        try:
            status, body = fut.result(timeout=self.timeout)
        except Exception:
            return _NOTHING  # asked again, with retries and the store's error messages
        return None if status in (404, 410) else body

    def peek_early(self, key: str) -> object:
        """Return the answer fetched ahead for *key*, leaving it for :meth:`get` (waits for it).

        Returns the body (bytes), None when the object does not exist, or ``NOTHING`` when it
        was not fetched ahead (or the request failed: the store asks again and reports it).
        On a client :func:`prefetch` is still fetching ahead for, waits (at most the timeout)
        until it has asked for all it will; on any other client, answers at once.
        """
        self._ahead.wait(self.timeout)
        return self._peek(key, self.timeout)

    def _peek(self, key: str, timeout: float) -> object:
        """:meth:`peek_early` without waiting for :func:`prefetch` to have asked for all."""
        with self._lock:
            entry = self._early.get(key)
        if entry is None or time.monotonic() - entry[0] > PREFETCH_TTL:
            return NOTHING
        try:
            status, body = entry[1].result(timeout=timeout)
        except Exception:
            return NOTHING
        return None if status in (404, 410) else body

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until this client has no request queued or in flight in its threads.

        On a client :func:`prefetch` made, also until it has asked for all it will fetch ahead.
        After :meth:`close`, the requests that were in flight still count until they end (close
        cancels only those not started); with none left it returns at once. Requests made by
        :meth:`request` and :meth:`get` in the caller's own thread are the caller's to wait for.

        Returns
        -------
        bool
            False when *timeout* seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._ahead.wait(timeout):
            return False
        for executor in self._pool.executors():
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not executor.wait_idle(left):
                return False
        return True

    def early_keys(self) -> list[str]:
        """Keys fetched ahead and not used yet."""
        with self._lock:
            return list(self._early)


def _closed_error(where: str) -> ClientClosedError:
    return ClientClosedError(
        f"The HTTP client of {where or 'this store'} is closed: it makes no new request.",
        hint="Open the URL again for a new store (a closed client is not reopened).",
    )


_NOTHING = object()
#: What :meth:`HTTPClient.peek_early` returns for an answer that was not fetched ahead.
NOTHING = _NOTHING


def _read_all(resp: http.client.HTTPResponse, most: int | None, deadline: float) -> bytes:
    """Read the body (at most *most* bytes) in pieces, giving up at *deadline*.

    The socket's timeout bounds each wait; the deadline bounds the whole body, so that a server
    sending a byte now and then cannot hold a thread longer than the request's timeout.
    """
    parts: list[bytes] = []
    got = 0
    while most is None or got < most:
        want = _PIECE if most is None else min(_PIECE, most - got)
        piece = resp.read(want)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
        if time.monotonic() > deadline:
            raise TimeoutError("the response body took longer than the timeout")
    return b"".join(parts)


_PIECE = 1 << 20


def _read_body(
    resp: http.client.HTTPResponse, limit: int | None, url: str, deadline: float
) -> bytes:
    encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
    length_text = resp.getheader("Content-Length")
    length = int(length_text) if length_text and length_text.strip().isdigit() else None
    if limit is not None and length is not None and length > limit and encoding == "identity":
        raise metadata_too_large(url, length, limit)
    if limit is None:
        data = _read_all(resp, None, deadline)
    else:
        data = _read_all(resp, limit + 1, deadline)
        if len(data) > limit and encoding == "identity":
            raise metadata_too_large(url, None, limit)
    if length is not None and len(data) < length and (limit is None or len(data) <= limit):
        raise http.client.IncompleteRead(data, length - len(data))
    if encoding in ("gzip", "x-gzip", "deflate"):
        # asked for identity, compressed anyway: decoded, never beyond the limit
        wbits = 47 if encoding != "deflate" else 15
        dec = zlib.decompressobj(wbits)
        bound = limit + 1 if limit is not None else 0
        out = dec.decompress(data, bound)
        if limit is not None and len(out) > limit:
            raise metadata_too_large(url, None, limit)
        data = out
    elif encoding != "identity":
        raise HTTPStatusError(200, f"with an unsupported Content-Encoding {encoding!r}", url)
    return data


# --------------------------------------------------------------------------------------------
# fetching the first metadata documents ahead

_PREFETCHED: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, HTTPClient]] = {}
_PREFETCH_LOCK = threading.Lock()


def _client_key(url: str, headers: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return url.rstrip("/"), tuple(sorted(headers.items()))


def prefetch(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    max_connections: int = 64,
    limit: int,
) -> HTTPClient | None:
    """Start reading the root metadata of the store at *url*, and its levels', in the background.

    Called before the rest of the reader is imported, so that the first round trips overlap
    with the imports. The root's ``zarr.json`` (or, when it is missing, the Zarr v2 documents)
    is read, then the metadata of the children the OME metadata names (multiscales levels,
    ``labels``, then the label images and their levels), unless the metadata is consolidated.
    :func:`take_prefetched` hands the client (with its answers) to the store opened next for
    the same URL and headers; unused answers are dropped after :data:`PREFETCH_TTL` seconds.
    """
    try:
        client = HTTPClient(url, headers=headers, timeout=timeout, max_connections=max_connections)
    except ValueError:
        return None
    client._ahead.clear()  # until run() has asked for all it will (peek_early waits for it)
    key = _client_key(url, client.headers)
    with _PREFETCH_LOCK:
        _PREFETCHED[key] = (time.monotonic(), client)

    def run() -> None:
        try:
            _fetch_root_ahead(client, limit)
        except Exception:  # the store asks again and reports problems
            return
        finally:
            client._ahead.set()

    # its own thread: it waits for answers the client's threads fetch (with a concurrency of 1,
    # waiting inside the pool would block the pool)
    threading.Thread(target=run, name="nze-http-prefetch", daemon=True).start()
    return client


def take_prefetched(url: str, headers: Mapping[str, str]) -> HTTPClient | None:
    """Return the client :func:`prefetch` made for *url* and *headers* (once), else None."""
    key = _client_key(url, headers)
    with _PREFETCH_LOCK:
        entry = _PREFETCHED.pop(key, None)
        now = time.monotonic()
        for k, (when, old) in list(_PREFETCHED.items()):
            if now - when > PREFETCH_TTL:
                _PREFETCHED.pop(k, None)
                old.close()
    if entry is None or time.monotonic() - entry[0] > PREFETCH_TTL:
        return None
    return entry[1]


def peek_prefetched(url: str, headers: Mapping[str, str]) -> HTTPClient | None:
    """Return the client :func:`prefetch` made for *url* and *headers*, leaving it there.

    :func:`take_prefetched` still hands it (with the answers nobody took) to the store opened
    next for the same URL.
    """
    key = _client_key(url, headers)
    with _PREFETCH_LOCK:
        entry = _PREFETCHED.get(key)
    if entry is None or time.monotonic() - entry[0] > PREFETCH_TTL:
        return None
    return entry[1]


def _fetch_root_ahead(client: HTTPClient, limit: int) -> None:
    from napari_zarr_explorer.store.readahead import children_metadata_keys

    client.fetch_ahead(["zarr.json"], limit)
    with client._lock:
        entry = client._early.get("zarr.json")
    if entry is None:
        return
    status, body = entry[1].result(timeout=client.timeout * 2)
    if status == 404:
        client.fetch_ahead([".zattrs", ".zgroup", ".zarray", ".zmetadata"], limit)
        with client._lock:
            attrs = client._early.get(".zattrs")
        if attrs is None:
            return
        status, body = attrs[1].result(timeout=client.timeout * 2)
        fmt = 2
        key = ".zattrs"
    else:
        fmt = 3
        key = "zarr.json"
    if body is None:
        return
    try:
        doc = json.loads(body)
    except ValueError:
        return
    # the reader takes the nodes the consolidated metadata describes (all but the root) from it:
    # only the documents of the others are asked for
    described = _consolidated(client, doc if fmt == 3 else None)
    children = [
        k for k in children_metadata_keys(key, body, fmt) if k.rpartition("/")[0] not in described
    ]
    client.fetch_ahead(children, limit)
    _fetch_labels_ahead(client, children, fmt, limit, described)


def _consolidated(client: HTTPClient, root: Any) -> set[str]:
    """Paths of the nodes the consolidated metadata describes, parsed as the store parses it.

    *root* is the root ``zarr.json`` (v3), else None (v2: the ``.zmetadata`` fetched ahead).
    """
    from napari_zarr_explorer.store.meta import consolidated_v2, consolidated_v3

    if root is None:
        raw = _early_body(client, ".zmetadata")
        try:
            root = json.loads(raw) if raw is not None else None
        except ValueError:
            return set()
        cons = consolidated_v2(root) if isinstance(root, dict) else None
    else:
        cons = consolidated_v3(root) if isinstance(root, dict) else None
    return set(cons or ())


def _early_body(client: HTTPClient, key: str) -> bytes | None:
    body = client._peek(key, client.timeout * 2)
    return body if isinstance(body, bytes) else None


def _fetch_labels_ahead(
    client: HTTPClient, children: list[str], fmt: int, limit: int, described: set[str]
) -> None:
    """Read ahead an image's label images and their levels, as the store would.

    The ordinary reader reads the ``labels`` group, then each label image it lists, then their
    levels; the store reads ahead the children named by each of those documents
    (``children_metadata_keys``). The same documents are asked for here, before zarr-python is
    imported, so the first image of an image with labels needs no other metadata. A label
    image the consolidated metadata describes is not read by the reader: its children are not
    asked for.
    """
    from napari_zarr_explorer.store.readahead import children_metadata_keys

    doc = "zarr.json" if fmt == 3 else ".zattrs"
    labels = f"labels/{doc}"
    if labels not in children:
        return
    frontier = [labels]
    for _ in range(2):  # the labels group, then its label images
        found: list[str] = []
        for parent in frontier:
            data = _early_body(client, parent)
            if data is None:
                continue
            found.extend(children_metadata_keys(parent, data, fmt))
        found = list(dict.fromkeys(found))
        client.fetch_ahead(found, limit)
        frontier = [
            k
            for k in found
            if k.rpartition("/")[2] == doc and k.rpartition("/")[0] not in described
        ]
