"""Real servers on loopback for remote-store tests and benchmarks.

- :class:`LoopbackHTTPServer`: a threaded HTTP/1.1 server serving a directory, with Range
  support, request logging and injectable latency and faults (status codes, slow responses,
  connection resets).
- :class:`S3Server`: moto's S3 server on ``127.0.0.1`` (port chosen by the system) with a public
  bucket (anonymous read) and a private one.
- :class:`GCSServer`: the ``gcp-storage-emulator`` on ``127.0.0.1`` with one bucket.

Every server stops itself at teardown; request handlers never loop without bound (a slow
response waits at most its delay, and wakes up as soon as the server stops).

The pytest fixtures at the end (``http_server``, ``s3_server``, ``gcs_server``) are registered
by ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

__all__ = [
    "GCSServer",
    "LoopbackHTTPServer",
    "RequestRecord",
    "S3Server",
    "gcs_server",
    "http_server",
    "s3_server",
    "serve_directory",
    "serve_sharded_image",
]

FAKE_KEY_ID = "testing-key-id"
FAKE_SECRET = "testing-secret"  # moto accepts any credentials


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request seen by :class:`LoopbackHTTPServer`."""

    method: str
    path: str  # relative to the served root, no leading slash
    range: str | None
    status: int


@dataclass(slots=True)
class _Fault:
    pattern: str
    status: int | None = None  # answer with this status
    delay: float = 0.0  # wait this long before answering
    reset: bool = False  # drop the connection without answering
    times: int | None = None  # how many requests it applies to (None: all)
    truncate: int | None = None  # send only this many bytes of the body, then close
    length_delta: int = 0  # add this to the Content-Length header (a lying server)
    redirect: str | None = None  # answer 302 with this Location


class LoopbackHTTPServer:
    """A threaded HTTP server on ``127.0.0.1`` serving *root* read-only.

    Parameters
    ----------
    root
        Directory served at ``/``.
    latency
        Seconds added to every request (simulates a distant server).
    """

    def __init__(self, root: str | os.PathLike[str], *, latency: float = 0.0) -> None:
        self.root = Path(root).resolve()
        self.latency = latency
        self.requests: list[RequestRecord] = []
        self.arrived: list[str] = []  # paths of requests as they arrive (before any delay)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._required: dict[str, str] = {}
        self._active = 0
        self.max_active = 0  # most requests handled at the same time
        # hold each request until this many are in flight (or for at most gate_timeout s): a
        # client's concurrency is then measured without depending on timing
        self.gate = 0
        self.gate_timeout = 10.0
        self._gate_cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._holds: list[str] = []  # patterns of requests left unanswered until release()
        self._released = threading.Event()
        handler = _make_handler(self)
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the served root (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- faults -----------------------------------------------------------------------------
    @staticmethod
    def _pattern(pattern: str) -> str:
        """Check *pattern*: request paths are relative to the served root (``a.zarr/c/0``).

        A pattern with a leading "/" would match no request, and a test relying on it would
        test nothing.
        """
        if pattern.startswith("/"):
            raise ValueError(
                f"request paths have no leading '/': use {pattern.lstrip('/')!r}, not {pattern!r}"
            )
        return pattern

    def fail(self, pattern: str, status: int, *, times: int | None = None) -> None:
        """Answer requests whose path matches *pattern* (fnmatch) with *status*."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), status=status, times=times))

    def slow(self, pattern: str, delay: float, *, times: int | None = None) -> None:
        """Delay answers to requests matching *pattern* by *delay* seconds."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), delay=delay, times=times))

    def reset(self, pattern: str, *, times: int | None = None) -> None:
        """Drop the connection (TCP reset) for requests matching *pattern*."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), reset=True, times=times))

    def hold(self, pattern: str) -> None:
        """Leave requests matching *pattern* unanswered until :meth:`release` (or the end).

        What a client does while its request waits is then seen without depending on timing.
        """
        with self._lock:
            if self._released.is_set():
                self._released = threading.Event()
            self._holds.append(self._pattern(pattern))

    def release(self) -> None:
        """Answer the requests held by :meth:`hold`, and hold no more."""
        with self._lock:
            self._holds.clear()
            self._released.set()

    def require_header(self, name: str, value: str) -> None:
        """Answer 401 to requests without the header *name* set to *value*."""
        with self._lock:
            self._required[name] = value

    def truncate(self, pattern: str, nbytes: int, *, times: int | None = None) -> None:
        """Send only the first *nbytes* of the body (with the full Content-Length), then close."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), truncate=nbytes, times=times))

    def lie_about_length(self, pattern: str, delta: int, *, times: int | None = None) -> None:
        """Announce ``Content-Length`` *delta* bytes off the body actually sent, then close."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), length_delta=delta, times=times))

    def redirect(self, pattern: str, location: str, *, times: int | None = None) -> None:
        """Answer requests matching *pattern* with ``302 Found`` to *location*."""
        with self._lock:
            self._faults.append(_Fault(self._pattern(pattern), redirect=location, times=times))

    def clear_faults(self) -> None:
        """Remove every injected fault and required header."""
        with self._lock:
            self._faults.clear()
            self._required.clear()

    def _take_faults(self, path: str) -> list[_Fault]:
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if fnmatch.fnmatchcase(path, fault.pattern):
                    taken.append(fault)
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
        return taken

    # -- request log ------------------------------------------------------------------------
    def count(self, pattern: str = "*", *, method: str | None = None) -> int:
        """Number of logged requests whose path matches *pattern* (and *method*)."""
        self._pattern(pattern)
        with self._lock:
            return sum(
                1
                for r in self.requests
                if fnmatch.fnmatchcase(r.path, pattern) and (method is None or r.method == method)
            )

    def paths(self, *, method: str | None = None) -> list[str]:
        """Paths of the logged requests, in order."""
        with self._lock:
            return [r.path for r in self.requests if method is None or r.method == method]

    def clear_log(self) -> None:
        """Forget the logged requests (and the concurrency high-water mark)."""
        with self._lock:
            self.requests.clear()
            self.arrived.clear()
            self.max_active = 0

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def publish(self, src: str | os.PathLike[str], name: str | None = None) -> str:
        """Serve a copy of the folder *src* as *name* (its own name by default); its URL."""
        name = name or Path(src).name
        shutil.copytree(src, self.root / name)
        return f"{self.url}/{name}"

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop serving and wake up any slow or held handler."""
        self._stopping.set()
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackHTTPServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    # Clients open many connections at once; the default backlog of 5 would make the kernel drop
    # connection attempts, which costs a one-second SYN retry each.
    request_queue_size = 128
    daemon_threads = True


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _make_handler(server: LoopbackHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LoopbackHTTP/1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _reply(
            self,
            status: int,
            data: bytes,
            headers: dict[str, str],
            body: bool,
            *,
            fault: _Fault | None = None,
        ) -> None:
            # logged before answering, so the log is complete when the client has its answer
            self._record(status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            length = len(data) + (fault.length_delta if fault else 0)
            self.send_header("Content-Length", str(max(length, 0)))
            if fault and (fault.truncate is not None or fault.length_delta):
                # A broken or lying server: send what we send, then close the connection.
                self.close_connection = True
                if fault.truncate is not None:
                    data = data[: fault.truncate]
                self.end_headers()
                if body:
                    with contextlib.suppress(OSError):
                        self.wfile.write(data)
                return
            if body and data:
                # headers and body in one write
                self._headers_buffer.append(b"\r\n" + data)
                self.flush_headers()
            else:
                self.end_headers()

        def _record(self, status: int) -> None:
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            server._log(RequestRecord(self.command, rel, self.headers.get("Range"), status))

        def _serve(self, *, body: bool) -> None:
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            rng = self.headers.get("Range")
            with server._lock:
                server.arrived.append(rel)
                server._active += 1
                server.max_active = max(server.max_active, server._active)
                if server.gate:
                    server._gate_cond.notify_all()
                    server._gate_cond.wait_for(
                        lambda: server.max_active >= server.gate or server._stopping.is_set(),
                        timeout=server.gate_timeout,
                    )
            try:
                with server._lock:
                    held = any(fnmatch.fnmatchcase(rel, p) for p in server._holds)
                    released = server._released
                if held:
                    released.wait()
                if server.latency:
                    server._stopping.wait(server.latency)
                self._answer(rel, rng, body=body)
            finally:
                with server._lock:
                    server._active -= 1

        def _answer(self, rel: str, rng: str | None, *, body: bool) -> int:
            with server._lock:
                required = dict(server._required)
            if any(self.headers.get(k) != v for k, v in required.items()):
                self._reply(401, b"credentials required", {"Content-Type": "text/plain"}, body)
                return 401
            damage: _Fault | None = None
            for fault in server._take_faults(rel):
                if fault.truncate is not None or fault.length_delta:
                    damage = fault
                if fault.redirect is not None:
                    self._reply(302, b"", {"Location": fault.redirect}, body)
                    return 302
                if fault.delay:
                    server._stopping.wait(fault.delay)
                if fault.reset:
                    # SO_LINGER 0: closing sends a TCP reset instead of a clean shutdown.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self._record(0)
                    return 0
                if fault.status is not None:
                    msg = f"{fault.status} injected for {rel}".encode()
                    self._reply(fault.status, msg, {"Content-Type": "text/plain"}, body)
                    return fault.status
            target = (server.root / rel).resolve()
            if not target.is_relative_to(server.root) or not target.is_file():
                self._reply(404, b"not found", {"Content-Type": "text/plain"}, body)
                return 404
            data = target.read_bytes()
            size = len(data)
            if rng:
                m = _RANGE_RE.match(rng.strip())
                if not m or (not m.group(1) and not m.group(2)):
                    self._reply(416, b"", {"Content-Range": f"bytes */{size}"}, body)
                    return 416
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix
                    start = max(size - int(m.group(2)), 0)
                    end = size - 1
                if start >= size or start > end:
                    self._reply(416, b"", {"Content-Range": f"bytes */{size}"}, body)
                    return 416
                headers = {
                    "Content-Range": f"bytes {start}-{end}/{size}",
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }
                self._reply(206, data[start : end + 1], headers, body, fault=damage)
                return 206
            headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            self._reply(HTTPStatus.OK, data, headers, body, fault=damage)
            return 200

    return Handler


@contextlib.contextmanager
def serve_directory(
    root: str | os.PathLike[str], *, latency: float = 0.0
) -> Iterator[LoopbackHTTPServer]:
    """Serve *root* over HTTP on loopback for the duration of the ``with`` block."""
    srv = LoopbackHTTPServer(root, latency=latency)
    try:
        yield srv
    finally:
        srv.close()


def serve_sharded_image(
    server: LoopbackHTTPServer,
    tmp_path: Path,
    name: str = "img.ome.zarr",
    *,
    size: int = 128,
    labels: bool = False,
) -> tuple[str, Path]:
    """A sharded OME-Zarr 0.5 image served by *server*: its URL and the local original.

    Two channels of four planes of *size* x *size* pixels, three levels, chunks of a quarter
    and shards of half the plane's side (with ``labels/cells`` when *labels*), written to
    ``tmp_path / name``.
    """
    from napari_zarr_explorer import testing

    src = testing.write_ome_image(
        tmp_path / name,
        version="0.5",
        shape=(2, 4, size, size),
        chunks=(1, 1, size // 4, size // 4),
        shards=(1, 1, size // 2, size // 2),
        levels=3,
        labels=labels,
    )
    return server.publish(src), src


# --------------------------------------------------------------------------------------------
# S3 (moto)


#: The environment variables that give AWS credentials or endpoints: cleared by tests that
#: must not pick up the machine's own.
AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class S3Server:
    """moto's S3 server on loopback with a public and a private bucket.

    Attributes
    ----------
    endpoint_url
        ``http://127.0.0.1:PORT``.
    public_bucket, private_bucket
        Bucket names. The public bucket has a policy allowing anonymous ``GetObject`` and
        ``ListBucket``; the private one answers anonymous requests with 403.
    """

    public_bucket = "public-data"
    private_bucket = "private-data"

    def __init__(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        httpd = self._server._server
        assert httpd is not None
        base = httpd.RequestHandlerClass

        class Quiet(base):  # type: ignore[valid-type,misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

            def log_message(self, *args: Any, **kwargs: Any) -> None:
                pass

        httpd.RequestHandlerClass = Quiet
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        client = self.client()
        for bucket in (self.public_bucket, self.private_bucket):
            client.create_bucket(Bucket=bucket)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [
                        f"arn:aws:s3:::{self.public_bucket}",
                        f"arn:aws:s3:::{self.public_bucket}/*",
                    ],
                }
            ],
        }
        client.put_bucket_policy(Bucket=self.public_bucket, Policy=json.dumps(policy))

    def client(self) -> Any:
        """A boto3 S3 client with (fake) credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET,
            region_name="us-east-1",
        )

    @property
    def credentials_env(self) -> dict[str, str]:
        """Environment variables giving credentials for the private bucket."""
        return {
            "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def upload(self, local: str | os.PathLike[str], bucket: str, prefix: str) -> str:
        """Upload the directory *local* under ``s3://bucket/prefix``; return that URL."""
        client = self.client()
        root = Path(local)
        for p in sorted(root.rglob("*")):
            if p.is_file():
                key = f"{prefix.strip('/')}/{p.relative_to(root).as_posix()}"
                client.put_object(Bucket=bucket, Key=key, Body=p.read_bytes())
        return f"s3://{bucket}/{prefix.strip('/')}"

    def close(self) -> None:
        """Stop the server."""
        self._server.stop()
        if self._server._server is not None:
            self._server._server.server_close()


# --------------------------------------------------------------------------------------------
# GCS (gcp-storage-emulator)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GCSServer:
    """The GCS emulator on loopback with one bucket (anonymous access, as the emulator has).

    Attributes
    ----------
    endpoint_url
        ``http://127.0.0.1:PORT``, to pass as ``storage_options={"endpoint_url": ...}`` or in
        the ``STORAGE_EMULATOR_HOST`` environment variable.
    """

    bucket = "gcs-data"

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        last: Exception | None = None
        for _ in range(5):  # the port may be taken between choosing and binding it
            port = _free_port()
            try:
                self._server = create_server("127.0.0.1", port, in_memory=True)
                self._server.start()
                break
            except OSError as exc:
                last = exc
        else:  # pragma: no cover
            raise RuntimeError(f"could not start the GCS emulator: {last}")
        self.endpoint_url = f"http://127.0.0.1:{port}"
        import requests

        requests.post(
            f"{self.endpoint_url}/storage/v1/b", json={"name": self.bucket}, timeout=10
        ).raise_for_status()

    def upload(self, local: str | os.PathLike[str], prefix: str) -> str:
        """Upload the directory *local* under ``gs://bucket/prefix``; return that URL."""
        import requests

        root = Path(local)
        with requests.Session() as session:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    name = f"{prefix.strip('/')}/{p.relative_to(root).as_posix()}"
                    session.post(
                        f"{self.endpoint_url}/upload/storage/v1/b/{self.bucket}/o",
                        params={"uploadType": "media", "name": name},
                        data=p.read_bytes(),
                        timeout=10,
                    ).raise_for_status()
        return f"gs://{self.bucket}/{prefix.strip('/')}"

    def close(self) -> None:
        """Stop the emulator."""
        self._server.stop()


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LoopbackHTTPServer]:
    """An HTTP server on loopback serving ``tmp_path / "www"`` (created empty)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as srv:
        yield srv


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on loopback, shared by the session."""
    srv = S3Server()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """The GCS emulator on loopback, shared by the session."""
    srv = GCSServer()
    try:
        yield srv
    finally:
        srv.close()
