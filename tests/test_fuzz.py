"""Fuzzing every entry point with damaged stores, local and over loopback HTTP.

One tiny store of every kind we read is built once (``fuzzing.build_stores``); each case damages
one store in place (JSON values, types, nesting and sizes; dataset paths; codec lists and
configurations; chunk bytes; shard indexes and their checksums; missing and extra files) and, on
HTTP, injects a server fault (status codes, truncated bodies, a wrong Content-Length, resets,
slow answers, redirects). Then the reader (``open_layers`` and a tile of every layer),
``inspect``, ``chunk_map(verify=True)``, ``validate`` and ``estimate`` run on it, and the case
fails on:

- an exception that is not an ``ExplorerError`` (warnings are fine);
- an operation still running after ``fuzzing.OP_TIMEOUT`` seconds (a watchdog);
- resident memory growing by more than ``fuzzing.MEMORY_BOUND`` bytes (sampled every ~2 ms);
- a file opened or listed outside the store (an audit hook on ``open``), an HTTP request outside
  the store's prefix (the server's log) or at any other host (a second server, the target of
  redirects);
- code executed from data (pickle payloads that create a sentinel file).

In CI the examples are fixed (Hypothesis' ``derandomize``, fixed counts: ``LOCAL_CASES`` and
``REMOTE_CASES``). ``NZE_HYPOTHESIS=explore NZE_FUZZ_CASES=20000`` draws new examples, as many
as asked (see docs/security.md, "Fuzzing"). All findings of a run are collected and reported
together, one line per distinct bug with an example mutation.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing
from fuzzing import Harness, Mutation, Store
from servers import serve_directory

EXPLORE = os.environ.get("NZE_HYPOTHESIS") == "explore"
_TOTAL = int(os.environ.get("NZE_FUZZ_CASES", "0")) or None
LOCAL_CASES = _TOTAL * 17 // 20 if _TOTAL else 1700
REMOTE_CASES = _TOTAL - LOCAL_CASES if _TOTAL else 300

HOSTILE_STRINGS = [
    "",
    ".",
    "..",
    "../secret",
    "../../../../etc/passwd",
    "%2e%2e/secret",
    "%2e%2e%2fsecret",
    "..%2Fsecret",
    "a/../../secret",
    "0/../../secret",
    "/etc/passwd",
    "\\..\\secret",
    "..\\secret",
    "a\x00b",
    "\x1b]0;PWNED\x07",
    "http://127.0.0.1:9/x",
    "file:///etc/passwd",
    "s3://bucket/x",
    "~",
    " ",
    "c/0/0",
    "zarr.json",
    "x" * 300,
    "é/ü",
    "\ud800",
]

_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64, -(2**63), 10**18]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(list(fuzzing.RAW)),
)
JSON_VALUES = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


# --------------------------------------------------------------------------------------------
# codec lists


def _v3_codec() -> st.SearchStrategy[Any]:
    any_int = st.sampled_from([-1, 0, 1, 3, 22, 99, 2**31, 2**63, "5", None])
    return st.one_of(
        st.fixed_dictionaries(
            {"name": st.just("bytes")},
            optional={
                "configuration": st.fixed_dictionaries(
                    {"endian": st.sampled_from(["little", "big", "middle", None, 1])}
                )
            },
        ),
        st.builds(
            lambda order: {"name": "transpose", "configuration": {"order": order}},
            st.lists(st.integers(-1, 3), max_size=3) | JSON_VALUES,
        ),
        st.builds(
            lambda lvl, cs: {"name": "zstd", "configuration": {"level": lvl, "checksum": cs}},
            any_int,
            st.sampled_from([True, False, "yes"]),
        ),
        st.builds(lambda lvl: {"name": "gzip", "configuration": {"level": lvl}}, any_int),
        st.builds(
            lambda cname, clevel, shuffle, typesize: {
                "name": "blosc",
                "configuration": {
                    "cname": cname,
                    "clevel": clevel,
                    "shuffle": shuffle,
                    "typesize": typesize,
                    "blocksize": 0,
                },
            },
            st.sampled_from(["zstd", "lz4", "nope", ""]),
            any_int,
            st.sampled_from(["shuffle", "noshuffle", "bitshuffle", "x", 1]),
            any_int,
        ),
        st.just({"name": "crc32c"}),
        st.builds(
            lambda shape, depth: {
                **fuzzing.nested_sharding(depth),
                "configuration": {
                    **fuzzing.nested_sharding(depth)["configuration"],
                    "chunk_shape": shape,
                },
            },
            st.sampled_from([[4, 4], [8, 8], [3, 4], [0, 4], [4], [2**40, 4], "4x4"]),
            st.sampled_from([1, 2, 5, 60, 300]),
        ),
        st.sampled_from(
            [
                {"name": "numcodecs.pickle"},
                {"name": "numcodecs.zfpy", "configuration": {"mode": 4}},
                {"name": "numcodecs.delta", "configuration": {"dtype": "<i8"}},
                {
                    "name": "numcodecs.fixedscaleoffset",
                    "configuration": {"offset": 0, "scale": 1e308, "dtype": "<f8", "astype": "<u2"},
                },
                {
                    "name": "numcodecs.astype",
                    "configuration": {"encode_dtype": "<u1", "decode_dtype": "<f8"},
                },
                {"name": "numcodecs.vlen-utf8"},
                {"name": "frobnicate"},
                {"name": 5},
                {"configuration": {}},
                "zstd",
                None,
            ]
        ),
    )


V2_COMPRESSORS = st.one_of(
    st.just(None),
    st.builds(lambda lvl: {"id": "zstd", "level": lvl}, st.sampled_from([0, 3, 99, -(2**40)])),
    st.builds(
        lambda cname, shuffle: {"id": "blosc", "cname": cname, "clevel": 5, "shuffle": shuffle},
        st.sampled_from(["zstd", "lz4", "snappy", "nope"]),
        st.sampled_from([-1, 0, 1, 2, 7]),
    ),
    st.sampled_from(
        [
            {"id": "gzip", "level": 1},
            {"id": "zlib", "level": 1},
            {"id": "lz4"},
            {"id": "bz2"},
            {"id": "lzma"},
            {"id": "pickle"},
            {"id": "zfpy", "mode": 4},
            {"id": "frobnicate"},
            {"id": 5},
            {},
            "zstd",
        ]
    ),
)
V2_FILTERS = st.one_of(
    st.just(None),
    st.just([]),
    st.lists(
        st.sampled_from(
            [
                {"id": "delta", "dtype": "<i8"},
                {"id": "pickle"},
                {"id": "vlen-utf8"},
                {"id": "json2"},
                {"id": "msgpack2"},
                {"id": "astype", "encode_dtype": "<u1", "decode_dtype": "<f8"},
                {"id": "categorize", "labels": ["a"], "dtype": "<U1"},
                {"id": "shuffle", "elementsize": 0},
                {"id": "bitround", "keepbits": -3},
                {"id": "quantize", "digits": 2**40, "dtype": "<f8"},
            ]
        ),
        min_size=1,
        max_size=3,
    ),
)


# --------------------------------------------------------------------------------------------
# mutations


def _load(store: Store, rel: str) -> Any:
    return json.loads(store.pristine[rel])


def _draw_file(draw: st.DrawFn, files: list[str]) -> str:
    return draw(st.sampled_from(files))


@st.composite
def json_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    rel = _draw_file(draw, store.json_files)
    doc = _load(store, rel)
    paths = list(fuzzing.json_paths(doc))
    path = draw(st.sampled_from(paths))
    label = draw(st.sampled_from(["json-value", "json-delete", "json-nest", "json-size"]))
    if label == "json-value":
        value = draw(JSON_VALUES)
        doc = fuzzing.json_set(doc, path, value)
        detail = f"{rel} {list(path)} = {value!r:.200}"
    elif label == "json-delete":
        doc = fuzzing.json_delete(doc, path)
        detail = f"{rel} delete {list(path)}"
    elif label == "json-nest":
        depth = draw(st.sampled_from([1, 3, 40, 990, 1100, 5000]))
        value: Any = fuzzing.json_get(doc, path)
        for _ in range(depth):
            value = draw(st.sampled_from([[value], {"a": value}]))
        doc = fuzzing.json_set(doc, path, value)
        detail = f"{rel} {list(path)} nested {depth} deep"
    else:
        size = draw(st.sampled_from([10_000, 300_000, 3_000_000]))
        target = fuzzing.json_get(doc, path)
        if isinstance(target, dict):
            target["pad"] = "x" * size
        elif isinstance(target, list):
            target.extend([0] * (size // 2))
        else:
            doc = fuzzing.json_set(doc, path, "x" * size)
        detail = f"{rel} {list(path)} grown by {size} bytes"
    return Mutation(store.kind, label, detail, {rel: fuzzing.dumps(doc)})


@st.composite
def raw_json_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    rel = _draw_file(draw, store.json_files)
    data = store.pristine[rel]
    choice = draw(
        st.sampled_from(["truncate", "empty", "garbage", "null", "list", "raw-token", "delete"])
    )
    new: bytes | None
    if choice == "truncate":
        new = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif choice == "empty":
        new = b""
    elif choice == "garbage":
        new = draw(st.binary(min_size=1, max_size=64))
    elif choice == "null":
        new = b"null"
    elif choice == "list":
        new = b"[1, 2, 3]"
    elif choice == "raw-token":
        new = fuzzing.RAW[draw(st.sampled_from(list(fuzzing.RAW)))].encode()
    else:
        new = None
    return Mutation(store.kind, f"json-file-{choice}", rel, {rel: new})


def _ome_path_slots(doc: Any) -> list[tuple[Any, ...]]:
    """JSON paths of values naming other nodes: dataset, well, image, label and series paths."""
    out = []
    for path in fuzzing.json_paths(doc):
        if not path:
            continue
        last = path[-1]
        parent = path[-2] if len(path) > 1 else None
        if last == "path" or (isinstance(last, int) and parent in ("labels", "series")):
            out.append(path)
    return out


@st.composite
def dataset_path_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    candidates = [
        (rel, path) for rel in store.json_files for path in _ome_path_slots(_load(store, rel))
    ]
    if not candidates:
        return draw(json_mutation(store))
    rel, path = draw(st.sampled_from(candidates))
    value = draw(st.sampled_from(HOSTILE_STRINGS) | JSON_VALUES)
    doc = fuzzing.json_set(_load(store, rel), path, value)
    return Mutation(
        store.kind,
        "dataset-path",
        f"{rel} {list(path)} = {value!r:.200}",
        {rel: fuzzing.dumps(doc)},
    )


def _array_docs(store: Store) -> list[str]:
    out = []
    for rel in store.json_files:
        doc = _load(store, rel)
        if rel.endswith(".zarray") or (isinstance(doc, dict) and doc.get("node_type") == "array"):
            out.append(rel)
    return out


def _chunks_of(store: Store, meta_rel: str) -> list[str]:
    """The chunk files of the array whose metadata document is *meta_rel*."""
    folder = meta_rel.rpartition("/")[0]
    prefix = folder + "/" if folder else ""
    return [
        k
        for k in store.chunk_files
        if k.startswith(prefix) and _CHUNK_KEY.fullmatch(k[len(prefix) :])
    ]


_CHUNK_KEY = re.compile(r"c(/[0-9]+)+|[0-9]+([./][0-9]+)*")


@st.composite
def codec_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    rel = draw(st.sampled_from(_array_docs(store)))
    doc = _load(store, rel)
    writes: dict[str, bytes | None] = {}
    if rel.endswith("zarr.json"):
        codecs = draw(st.lists(_v3_codec(), max_size=4))
        doc["codecs"] = codecs
        detail = f"{rel} codecs = {json.dumps(codecs, default=str)[:300]}"
    else:
        doc["compressor"] = draw(V2_COMPRESSORS)
        doc["filters"] = draw(V2_FILTERS)
        if draw(st.booleans()):
            doc["dtype"] = draw(st.sampled_from(["|O", "<U4", "|S3", "<f8", "|b1", "<m8[s]", "V4"]))
        detail = (
            f"{rel} dtype {doc['dtype']} compressor {doc['compressor']} filters {doc['filters']}"
        )
    writes[rel] = fuzzing.dumps(doc)
    if draw(st.booleans()):
        # The chunks hold a pickle that creates the sentinel when loaded.
        payload = fuzzing.pickle_trap(_SENTINEL_PATH[0])
        for key in _chunks_of(store, rel)[:4]:
            writes[key] = payload
        detail += " + pickle chunks"
    return Mutation(store.kind, "codec", detail, writes)


_SENTINEL_PATH: list[Path] = [Path("/nonexistent")]


@st.composite
def chunk_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    rel = _draw_file(draw, store.chunk_files)
    data = store.pristine[rel]
    choice = draw(
        st.sampled_from(
            ["truncate", "flip", "random", "empty", "bomb", "pickle", "append", "delete"]
        )
    )
    new: bytes | None
    if choice == "truncate":
        new = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif choice == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            if buf:
                i = draw(st.integers(0, len(buf) - 1))
                buf[i] ^= draw(st.integers(1, 255))
        new = bytes(buf)
    elif choice == "random":
        new = draw(st.binary(min_size=1, max_size=256))
    elif choice == "empty":
        new = b""
    elif choice == "bomb":
        new = fuzzing.zstd_bomb(draw(st.sampled_from([1 << 20, 256 << 20])))
    elif choice == "pickle":
        new = fuzzing.pickle_trap(_SENTINEL_PATH[0])
    elif choice == "append":
        new = data + draw(st.binary(min_size=1, max_size=64))
    else:
        new = None
    return Mutation(store.kind, f"chunk-{choice}", rel, {rel: new})


@st.composite
def shard_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    shards = [k for k in store.chunk_files if "/c/" in "/" + k and store.kind.endswith("sharded")]
    if not shards:
        return draw(chunk_mutation(store))
    rel = draw(st.sampled_from(shards))
    data = store.pristine[rel]
    n = 4  # inner chunks per shard (2x2) in both sharded stores
    value = st.sampled_from([0, 1, 7, len(data), len(data) - 1, 2**32, 2**62, 2**64 - 1])
    entries = draw(st.lists(st.tuples(value, value), min_size=n, max_size=n))
    checksum = draw(st.booleans())
    new = fuzzing.shard_index(data, entries, checksum=checksum)
    detail = f"{rel} index {entries} ({'valid' if checksum else 'no'} checksum)"
    return Mutation(store.kind, "shard-index", detail, {rel: new})


@st.composite
def consolidated_mutation(draw: st.DrawFn, store: Store) -> Mutation:
    """Consolidated metadata that differs from the documents zarr reads."""
    v2 = any(k.endswith((".zarray", ".zgroup")) for k in store.pristine)
    docs = {k: json.loads(v) for k, v in store.pristine.items() if k in store.json_files}
    target = draw(st.sampled_from(_array_docs(store)))
    lie = draw(
        st.sampled_from(["dtype", "shape", "codecs", "missing", "real-unsafe", "real-strings"])
    )
    fake = json.loads(json.dumps(docs[target]))
    if lie == "dtype":
        fake["dtype" if v2 else "data_type"] = "|u1" if v2 else "uint8"
    elif lie == "shape":
        fake["shape"] = [1] * len(fake.get("shape", []))
    elif lie == "codecs":
        if v2:
            fake["compressor"] = None
        else:
            fake["codecs"] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    docs[target] = fake
    if lie == "missing":
        del docs[target]
    writes: dict[str, bytes | None] = {}
    if lie == "real-unsafe":
        # The consolidated document is the pristine one; the array's own document (the one
        # zarr reads) holds Python objects decoded with pickle, and its chunks are pickles.
        real = json.loads(store.pristine[target])
        if v2:
            real.update(dtype="|O", compressor=None, filters=[{"id": "pickle"}])
        else:
            real["codecs"] = [{"name": "bytes"}, {"name": "numcodecs.pickle"}]
        writes[target] = fuzzing.dumps(real)
        for key in _chunks_of(store, target)[:4]:
            writes[key] = fuzzing.pickle_trap(_SENTINEL_PATH[0])
    elif lie == "real-strings" and v2:
        # The array's own document says strings (vlen-utf8), and its chunks hold strings.
        import numcodecs

        real = json.loads(store.pristine[target])
        real.update(dtype="|O", compressor=None, filters=[{"id": "vlen-utf8"}])
        writes[target] = fuzzing.dumps(real)
        n = int(np.prod(real["chunks"]))
        chunk = numcodecs.VLenUTF8().encode(np.array(["PWNED"] * n, dtype=object))
        for key in _chunks_of(store, target):
            writes[key] = chunk
    if v2:
        writes[".zmetadata"] = fuzzing.dumps({"zarr_consolidated_format": 1, "metadata": docs})
    elif "zarr.json" in docs:
        root = docs.pop("zarr.json")
        root["consolidated_metadata"] = {
            "kind": "inline",
            "must_understand": False,
            "metadata": {k.rpartition("/")[0]: v for k, v in docs.items()},
        }
        writes["zarr.json"] = fuzzing.dumps(root)
    return Mutation(store.kind, "consolidated", f"{target}: consolidated {lie} differs", writes)


def mutations(stores: dict[str, Store]) -> st.SearchStrategy[Mutation]:
    kinds = sorted(stores)

    @st.composite
    def one(draw: st.DrawFn) -> Mutation:
        store = stores[draw(st.sampled_from(kinds))]
        strategy = draw(
            st.sampled_from(
                [
                    json_mutation,
                    json_mutation,
                    raw_json_mutation,
                    dataset_path_mutation,
                    codec_mutation,
                    chunk_mutation,
                    shard_mutation,
                    consolidated_mutation,
                ]
            )
        )
        return draw(strategy(store))

    return one()


HTTP_FAULTS = ["status", "truncate", "length", "reset", "slow", "redirect"]


@st.composite
def remote_mutation(draw: st.DrawFn, stores: dict[str, Store]) -> Mutation:
    kinds = sorted(stores)
    if draw(st.integers(0, 3)) == 0:
        mutation = draw(mutations(stores))
    else:
        mutation = Mutation(draw(st.sampled_from(kinds)), "http", "")
    store = stores[mutation.kind]
    if draw(st.integers(0, 4)) > 0:
        target = draw(st.sampled_from(["*", "*zarr.json", "*.z*", "*/0/*", *store.pristine]))
        fault = draw(st.sampled_from(HTTP_FAULTS))
        if fault == "status":
            arg = str(
                draw(st.sampled_from([301, 400, 401, 403, 404, 410, 416, 418, 429, 500, 503]))
            )
        elif fault == "truncate":
            arg = str(draw(st.sampled_from([0, 1, 5, 20])))
        elif fault == "length":
            arg = str(draw(st.sampled_from([-5, -1, 1, 100, 10**9])))
        elif fault == "redirect":
            arg = draw(st.sampled_from(["evil", "outside", "inside"]))
        else:
            arg = ""
        mutation.http = (fault, target, arg)
        mutation.label = (
            f"http-{fault}" if mutation.label == "http" else f"{mutation.label}+http-{fault}"
        )
        mutation.detail = f"{mutation.detail} {fault} {arg} on {target}".strip()
    return mutation


# --------------------------------------------------------------------------------------------
# the runs


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    import dask

    base = tmp_path_factory.mktemp("fuzz")
    www = base / "www"
    stores = fuzzing.build_stores(www)
    (www / "secret").mkdir()
    for store in stores.values():
        # the same files outside every store: reading them is a finding, not a visible error
        (www / "secret" / store.root.name).symlink_to(store.root, target_is_directory=True)
    _SENTINEL_PATH[0] = base / fuzzing.SENTINEL
    h = Harness(base, stores)
    quiet = fuzzing.quiet()
    try:
        (base / "evil").mkdir()
        with (
            dask.config.set(scheduler="synchronous"),
            serve_directory(www) as server,
            serve_directory(base / "evil") as evil,
        ):
            h.server, h.evil = server, evil
            # Warm up: imports and first-use caches are not the data's doing.
            for store in stores.values():
                h.run(Mutation(store.kind, "pristine", "no change"), remote=False)
                h.run(Mutation(store.kind, "pristine", "no change"), remote=True)
            assert not h.findings, h.summary()
            h.cases = 0
            h.seconds = 0.0
            h.by_label.clear()
            yield h
    finally:
        quiet.__exit__(None, None, None)
        h.close()


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        derandomize=not EXPLORE,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def _report(harness: Harness, name: str) -> None:
    out = os.environ.get("NZE_FUZZ_REPORT")
    text = (
        f"{name}: {harness.summary()}\nby mutation class: {dict(sorted(harness.by_label.items()))}"
    )
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(text + "\n\n")
    print(text)


# The suite's 300 s per-test limit is meant for hangs; these runs are long by design (and a
# hang inside them is caught by the harness' own watchdog).
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_local(harness: Harness) -> None:
    """Damaged local stores: every entry point ends cleanly, within bounds, inside the store."""
    harness.findings.clear()
    strategy = mutations(harness.stores)

    @_settings(LOCAL_CASES)
    @given(strategy)
    def case(mutation: Mutation) -> None:
        harness.run(mutation, remote=False)

    case()
    _report(harness, "local")
    assert harness.cases >= LOCAL_CASES * 0.95
    assert not harness.findings, harness.summary()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_remote(harness: Harness) -> None:
    """Damaged stores and a misbehaving server: the same rules, and no request leaves the store."""
    harness.findings.clear()
    harness.cases = 0
    harness.seconds = 0.0
    harness.by_label.clear()

    @_settings(REMOTE_CASES)
    @given(remote_mutation(harness.stores))
    def case(mutation: Mutation) -> None:
        harness.run(mutation, remote=True)

    case()
    _report(harness, "remote")
    assert harness.cases >= REMOTE_CASES * 0.95
    assert not harness.findings, harness.summary()
