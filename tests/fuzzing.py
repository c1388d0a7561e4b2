"""The machinery of the fuzz harness (``tests/test_fuzz.py``).

- :func:`build_stores` writes one tiny store of every kind the package reads;
- :class:`Mutation` damages one store in place (and puts it back), or injects an HTTP fault;
- :class:`Harness` runs every public entry point on the damaged store under a watchdog, with
  an audit hook on file opens, the loopback server's request log, a memory bound and a
  pickle sentinel, and records each breach of the rules as a :class:`Finding`.

Everything runs in-process on stores of a few kilobytes, so thousands of cases take minutes.
"""

from __future__ import annotations

import json
import os
import posixpath
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import ExplorerError
from traps import pickle_trap

#: A case's operation must finish within this many seconds. Far above what any operation
#: takes (validating the largest generated document: 5-13 s on a 2-core machine at load 5-10),
#: so that only a real hang trips it, however loaded the machine is.
OP_TIMEOUT = 120.0
#: Growth of resident memory one operation may cause at its peak (the stores hold a few KiB).
MEMORY_BOUND = 128 * 2**20
#: Name of the file a pickle payload creates beside the stores when it is ever unpickled.
SENTINEL = "UNPICKLED-SENTINEL"

TILE = 8


# --------------------------------------------------------------------------------------------
# stores


@dataclass
class Store:
    """One pristine store: where it is, its arrays and the bytes of every file."""

    kind: str
    root: Path
    arrays: list[str]
    pristine: dict[str, bytes] = field(default_factory=dict)

    def snapshot(self) -> None:
        self.pristine = {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    @property
    def json_files(self) -> list[str]:
        return [k for k in self.pristine if k.rsplit("/", 1)[-1] in _META_NAMES]

    @property
    def chunk_files(self) -> list[str]:
        return [k for k in self.pristine if k not in self.json_files and not k.endswith(".xml")]

    def restore(self, touched: set[str]) -> None:
        """Put back every file in *touched* as it was (and remove files that were not there)."""
        for rel in touched:
            path = self.root / rel
            if rel in self.pristine:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.pristine[rel])
            elif path.is_file():
                path.unlink()


_META_NAMES = {"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"}


def _shape_image(version: str) -> dict[str, Any]:
    return {"version": version, "shape": (2, 16, 16), "axes": "cyx", "levels": 2}


def build_stores(www: Path) -> dict[str, Store]:
    """Write one small store of every kind under *www* (each ``KIND.zarr``)."""
    values = testing.blobs((16, 16), seed=1, dtype="uint16")
    builders: dict[str, tuple[Callable[[Path], Any], list[str]]] = {
        "v2": (lambda p: testing.write_array(p, values, zarr_format=2, chunks=(8, 8)), [""]),
        "v3": (lambda p: testing.write_array(p, values, zarr_format=3, chunks=(8, 8)), [""]),
        "sharded": (
            lambda p: testing.write_array(
                p, values, zarr_format=3, chunks=(4, 4), shards=(8, 8), compressor="zstd:1"
            ),
            [""],
        ),
        "v2-filters": (
            lambda p: testing.write_array(
                p, values.astype("int32"), zarr_format=2, chunks=(8, 8), compressor="gzip:1"
            ),
            [""],
        ),
    }
    for version in ("0.1", "0.2", "0.3"):
        builders[f"ome{version}"] = (
            lambda p, v=version: testing.write_ome_image(p, chunks=(1, 8, 8), **_shape_image(v)),
            ["0", "1"],
        )
    for version in ("0.4", "0.5"):
        builders[f"ome{version}-labels"] = (
            lambda p, v=version: testing.write_ome_image(
                p, chunks=(1, 8, 8), labels=True, **_shape_image(v)
            ),
            ["0", "labels/cells/0"],
        )
    builders["ome0.5-sharded"] = (
        lambda p: testing.write_ome_image(
            p, chunks=(1, 4, 4), shards=(1, 8, 8), **_shape_image("0.5")
        ),
        ["0"],
    )
    for version in ("0.4", "0.5"):
        builders[f"plate{version}"] = (
            lambda p, v=version: testing.write_plate(
                p, version=v, rows=1, cols=2, fields=1, shape=(1, 8, 8), levels=1
            ),
            ["A/1/0/0"],
        )
    builders["bioformats2raw"] = (
        lambda p: testing.write_bioformats2raw(p, series=2, version="0.4"),
        ["0/0"],
    )
    stores = {}
    for kind, (build, arrays) in builders.items():
        root = www / f"{kind}.zarr"
        build(root)
        store = Store(kind, root, arrays)
        store.snapshot()
        stores[kind] = store
    return stores


# --------------------------------------------------------------------------------------------
# mutations


@dataclass
class Mutation:
    """A change to one store's files, and optionally an HTTP fault; describes itself."""

    kind: str
    label: str  # the mutation class, e.g. "json-value", "chunk-truncate", "http-redirect"
    detail: str
    writes: dict[str, bytes | None] = field(default_factory=dict)  # rel -> new bytes / delete
    http: tuple[str, ...] | None = None  # ("status", pattern, code) etc., see Harness

    def __str__(self) -> str:
        return f"[{self.kind}] {self.label}: {self.detail}"

    def apply(self, store: Store) -> set[str]:
        for rel, data in self.writes.items():
            path = store.root / rel
            if data is None:
                if path.is_file():
                    path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return set(self.writes)


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (tuple of keys / indices) into a JSON document, the root first."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from json_paths(v, (*prefix, i))


def json_get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def json_set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return *doc* with the value at *path* replaced (the root when *path* is empty)."""
    if not path:
        return value
    json_get(doc, path[:-1])[path[-1]] = value
    return doc


def json_delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return {}
    parent = json_get(doc, path[:-1])
    del parent[path[-1]]
    return doc


def dumps(doc: Any) -> bytes:
    """JSON with NaN/Infinity allowed and a marker for raw tokens (see :data:`RAW`)."""
    text = json.dumps(doc, allow_nan=True)
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker), raw)
    return text.encode()


#: Strings replaced by raw JSON text after dumping: tokens json.dumps cannot produce.
RAW = {
    "@@bigint@@": "9" * 5000,
    "@@deep@@": "[" * 5000 + "]" * 5000,
    "@@deepobj@@": '{"a":' * 3000 + "1" + "}" * 3000,
    "@@float-overflow@@": "1e999",
}


def nested_sharding(depth: int) -> dict[str, Any]:
    """A ``sharding_indexed`` codec nested *depth* times."""
    inner: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    for _ in range(depth):
        inner = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [4, 4],
                    "codecs": inner,
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                },
            }
        ]
    return inner[0]


def zstd_bomb(nbytes: int) -> bytes:
    """A zstd frame declaring *nbytes* of content, made of RLE blocks (a few KiB)."""
    block = 1 << 17
    n = -(-nbytes // block)
    header = struct.pack("<I", 0xFD2FB528) + bytes([0xE0]) + struct.pack("<Q", n * block)
    body = b"".join(
        ((block << 3) | (1 << 1) | (i == n - 1)).to_bytes(3, "little") + b"\x07" for i in range(n)
    )
    return header + body


def shard_index(data: bytes, entries: list[tuple[int, int]], *, checksum: bool) -> bytes:
    """*data* with its trailing shard index replaced by *entries* (offset, nbytes)."""
    import crc32c

    index = b"".join(struct.pack("<QQ", o, n) for o, n in entries)
    n = len(index) + (4 if checksum else 0)
    body = data[:-n] if len(data) >= n else b""
    if checksum:
        index += struct.pack("<I", crc32c.crc32c(index))
    return body + index


# --------------------------------------------------------------------------------------------
# running


@dataclass(frozen=True)
class Finding:
    """One breach of the rules: what was done, which entry point, what went wrong, where."""

    mutation: str
    label: str
    op: str
    problem: str  # "exception", "hang", "memory", "outside", "code-execution"
    what: str  # exception type and message, or the path / URL touched
    where: str  # the innermost frame of the package (or the raising frame)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two findings the same bug (the mutation itself may differ)."""
        return (self.problem, self.op, self.what.split(":", 1)[0], self.where)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "napari_zarr_explorer" in f.filename]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    name = frame.filename.split("site-packages/")[-1].split("src/")[-1]
    return f"{name}:{frame.lineno} ({frame.name})"


class Inconsistent(AssertionError):
    """The data read back disagrees with the metadata the reader checked."""


class OpenAudit:
    """Records files opened or listed outside the allowed folders while :attr:`active`."""

    _installed: OpenAudit | None = None

    def __init__(self) -> None:
        self.active = False
        self.allowed: tuple[str, ...] = ()
        self.seen: list[str] = []
        folders = {sys.prefix, sys.base_prefix, sys.exec_prefix}
        folders |= {p for p in sys.path if p and os.path.isdir(p)}
        # Python's own files (lazy imports), and what the system reads for sockets and time.
        self._system = (
            *(os.path.realpath(p) + os.sep for p in folders),
            *("/proc/", "/sys/", "/dev/", "/etc/ssl/", "/usr/share/zoneinfo/", "/usr/lib/"),
        )
        # The import system lists these folders themselves: a lazy import (``import crc32c`` on a
        # first shard index) lists every folder on sys.path whose contents changed since the last
        # import, such as the checkout while another test run writes its caches there.
        self._import_folders = {os.path.realpath(p) for p in folders}
        self._system_files = {
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/gai.conf",
            "/etc/localtime",
            "/etc/services",
            "/etc/protocols",
            "/etc/mime.types",
        }

    @classmethod
    def install(cls) -> OpenAudit:
        if cls._installed is None:
            audit = cls()
            sys.addaudithook(audit._hook)  # audit hooks cannot be removed: one per process
            cls._installed = audit
        return cls._installed

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event not in ("open", "os.listdir", "os.scandir"):
            return
        if "process_request_thread" in threading.current_thread().name:
            return  # the loopback server reading the files it serves: its log is checked instead
        path = args[0] if args else None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or not path:
            return  # a file descriptor, or the current directory
        full = os.path.normpath(os.path.abspath(path))
        if full in self._system_files or full.startswith(self._system):
            return
        if event != "open" and full in self._import_folders:
            return
        if any(full == a.rstrip(os.sep) or full.startswith(a) for a in self.allowed):
            return
        self.seen.append(full)


class RssSampler:
    """Samples this process's resident memory every millisecond or two; keeps the peak.

    Cheaper than tracemalloc (which slows asyncio-heavy remote reads several times) and it sees
    native allocations too (decompressors, numpy).
    """

    def __init__(self) -> None:
        self._fd = os.open("/proc/self/statm", os.O_RDONLY)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fuzz-rss", daemon=True)
        self._thread.start()

    def now(self) -> int:
        return int(os.pread(self._fd, 200, 0).split()[1]) * self._page

    def reset(self) -> int:
        """Start a new measurement; return the current resident size."""
        self.peak = now = self.now()
        return now

    def _loop(self) -> None:
        while not self._stop.wait(0.0015):
            rss = self.now()
            if rss > self.peak:
                self.peak = rss

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self._fd)


class Harness:
    """Runs the entry points on a store and records findings."""

    OPS = ("open_layers", "inspect", "chunk_map", "validate", "estimate")

    def __init__(self, base: Path, stores: dict[str, Store]) -> None:
        self.base = base
        self.stores = stores
        self.findings: list[Finding] = []
        self.cases = 0
        self.by_label: dict[str, int] = {}
        self.audit = OpenAudit.install()
        self.sentinel = base / SENTINEL
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fuzz-op")
        self.rss = RssSampler()
        self.server: Any = None  # LoopbackHTTPServer of the www folder, for remote cases
        self.evil: Any = None  # a second server: any request reaching it left the origin
        self.seconds = 0.0

    # -- the entry points -------------------------------------------------------------------
    @staticmethod
    def _read_tiles(url: str, options: dict[str, Any] | None) -> None:
        from napari_zarr_explorer.layers import open_layers

        for data, _kwargs, _type in open_layers(url, storage_options=options):
            level = data[0] if isinstance(data, list | tuple) else data
            if level.ndim == 0:
                continue
            index = (0,) * max(level.ndim - 2, 0) + (slice(0, TILE),) * min(level.ndim, 2)
            tile = np.asarray(level[index])
            if tile.dtype != level.dtype:
                # zarr decoded the chunks with other metadata than the metadata we checked
                raise Inconsistent(f"layer says {level.dtype}, its chunks decode as {tile.dtype}")

    def _op(self, op: str, url: str, array: str, options: dict[str, Any] | None) -> None:
        if op == "open_layers":
            self._read_tiles(url, options)
        elif op == "inspect":
            from napari_zarr_explorer.report import inspect

            inspect(url, storage_options=options)
        elif op == "chunk_map":
            from napari_zarr_explorer.chunks import chunk_map

            chunk_map(url, array, verify=True, storage_options=options)
        elif op == "validate":
            from napari_zarr_explorer.ome.validate import validate

            validate(url, storage_options=options)
        elif op == "estimate":
            from napari_zarr_explorer.estimate import estimate

            estimate(url, array, ["zstd:3"], sample=2, storage_options=options)

    def _guarded(self, op: str, url: str, array: str, options: dict[str, Any] | None) -> Any:
        """Run one entry point; return None, or a (problem, what, where) tuple."""

        def call() -> Any:
            start = self.rss.reset()
            try:
                self._op(op, url, array, options)
            except ExplorerError:
                pass
            except BaseException as exc:
                return ("exception", f"{type(exc).__name__}: {str(exc)[:300]}", _where(exc))
            peak = self.rss.peak - start
            if peak > MEMORY_BOUND:
                return ("memory", f"resident memory grew: by {peak / 2**20:.0f} MiB", "")
            return None

        future = self._pool.submit(call)
        try:
            return future.result(timeout=OP_TIMEOUT)
        except FutureTimeout:
            # The thread cannot be stopped: leave it, and carry on with a fresh one.
            self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="fuzz-op")
            return ("hang", f"still running after {OP_TIMEOUT:.0f} s", "")

    def run(self, mutation: Mutation, *, remote: bool) -> None:
        """Apply *mutation*, run every entry point, record findings, restore the store."""
        store = self.stores[mutation.kind]
        arrays = sorted({_array_of(rel, store) for rel in mutation.writes} - {None}) or [
            store.arrays[0]
        ]
        touched = mutation.apply(store)
        options: dict[str, Any] | None = None
        if remote:
            url = f"{self.server.url}/{store.root.name}"
            options = dict(REMOTE_OPTIONS)
            self._quiesce()
            self._inject(mutation, store, options)
            self.server.clear_log()
            self.evil.clear_log()
            self.audit.allowed = (str(self.server.root) + os.sep,)
        else:
            url = str(store.root)
            self.audit.allowed = (str(store.root) + os.sep,)
        t0 = time.perf_counter()
        try:
            for op in self.OPS:
                self.audit.seen.clear()
                self.audit.active = True
                try:
                    result = self._guarded(op, url, arrays[0], options)
                finally:
                    self.audit.active = False
                if result is not None:
                    self._record(mutation, op, *result)
                for path in sorted(set(self.audit.seen)):
                    self._record(mutation, op, "outside", f"opened outside the store: {path}", "")
                if remote:
                    self._check_requests(mutation, op, store)
                if self.sentinel.exists():
                    self.sentinel.unlink()
                    self._record(mutation, op, "code-execution", "the pickle sentinel appeared", "")
        finally:
            if remote:
                self.server.clear_faults()
            store.restore(touched)
            self.seconds += time.perf_counter() - t0
            self.cases += 1
            self.by_label[mutation.label] = self.by_label.get(mutation.label, 0) + 1

    def _inject(self, mutation: Mutation, store: Store, options: dict[str, Any]) -> None:
        if mutation.http is None:
            return
        action, rel, *rest = mutation.http
        pattern = f"{store.root.name}/{rel}"
        if action == "status":
            self.server.fail(pattern, int(rest[0]))
        elif action == "truncate":
            self.server.truncate(pattern, int(rest[0]))
        elif action == "length":
            self.server.lie_about_length(pattern, int(rest[0]))
        elif action == "reset":
            self.server.reset(pattern, times=1)
        elif action == "slow":
            options["explorer_timeout"] = 0.5
            self.server.slow(pattern, 0.8, times=1)
        elif action == "redirect":
            where = rest[0]
            if where == "evil":
                target = f"{self.evil.url}/{store.root.name}/{rel}"
            elif where == "outside":
                target = f"{self.server.url}/secret/{rel}"
            else:
                target = f"{self.server.url}/{store.root.name}/{rel}?moved=1"
            self.server.redirect(pattern, target, times=None if where != "inside" else 1)

    def _quiesce(self) -> None:
        """Wait (briefly) until the server has answered every request of the previous case."""
        deadline = time.monotonic() + 2
        while self.server._active and time.monotonic() < deadline:
            time.sleep(0.001)

    def _check_requests(self, mutation: Mutation, op: str, store: Store) -> None:
        # Requests for another store's files are late background reads (metadata read-ahead) of
        # an earlier case: no mutation names another store. Anything else is outside.
        prefixes = tuple(s.root.name + "/" for s in self.stores.values())
        for path in sorted(set(self.server.paths())):
            norm = posixpath.normpath(path) + "/"
            if not norm.startswith(prefixes):
                self._record(mutation, op, "outside", f"requested outside the store: /{path}", "")
        for path in sorted(set(self.evil.paths())):
            self._record(mutation, op, "outside", f"requested from another host: /{path}", "")
        self.server.clear_log()
        self.evil.clear_log()

    def _record(self, mutation: Mutation, op: str, problem: str, what: str, where: str) -> None:
        self.findings.append(Finding(str(mutation), mutation.label, op, problem, what, where))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.rss.stop()

    # -- the report -------------------------------------------------------------------------
    def summary(self) -> str:
        """One line per distinct finding (with an example mutation and how often it came)."""
        groups: dict[tuple[str, str, str, str], list[Finding]] = {}
        for f in self.findings:
            groups.setdefault(f.key, []).append(f)
        lines = [
            f"{self.cases} cases in {self.seconds:.0f} s; {len(self.findings)} findings, "
            f"{len(groups)} distinct"
        ]
        for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            labels = sorted({f.label for f in items})
            first = items[0]
            lines.append(
                f"- {key[0]} in {key[1]} x{len(items)} [{', '.join(labels)}]: {first.what} "
                f"at {first.where or '-'}\n    e.g. {first.mutation[:400]}"
            )
        return "\n".join(lines)


REMOTE_OPTIONS: dict[str, Any] = {
    "explorer_timeout": 10.0,
    "explorer_retries": 1,
    "explorer_backoff": 0.01,
    "explorer_cache_mb": 0,
}


def _array_of(rel: str, store: Store) -> str | None:
    """The array of *store* that the file *rel* belongs to, if it is one of its arrays."""
    for array in sorted(store.arrays, key=len, reverse=True):
        if not array or rel.startswith(array + "/"):
            return array
    return None


def quiet() -> Any:
    """Warnings are not findings (ExplorerWarning is how we report trouble)."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


__all__ = [
    "SENTINEL",
    "Finding",
    "Harness",
    "Mutation",
    "Store",
    "build_stores",
    "dumps",
    "json_delete",
    "json_get",
    "json_paths",
    "json_set",
    "nested_sharding",
    "pickle_trap",
    "shard_index",
    "zstd_bomb",
]
