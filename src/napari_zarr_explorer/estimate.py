"""Preview a re-encoding on a sample of chunks, writing nothing.

:func:`estimate` reads a random sample of chunks of an array (re-chunked to each candidate's
chunk shape when one is given), encodes them with each candidate encoding, decodes them back,
and projects the stored size and the number of stored objects of the whole array.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from napari_zarr_explorer._html import plural
from napari_zarr_explorer.codec_spec import CompressorSpec, ErrorStats, parse_compressor
from napari_zarr_explorer.codecs import jsonable
from napari_zarr_explorer.errors import CodecError, ExplorerError

__all__ = [
    "ESTIMATE_ARRAYS",
    "NOTHING_TO_SAMPLE",
    "ArrayEstimate",
    "Candidate",
    "CandidateResult",
    "EstimateReport",
    "RunEstimate",
    "estimate",
    "estimate_run",
    "growth_warning",
    "parse_shape",
]

NOTHING_TO_SAMPLE = "no stored chunks: nothing to sample (every chunk reads as the fill value)."
"""The warning of an estimate of an array that stores no chunk (then no chunk is sampled)."""


def parse_shape(text: str | Sequence[int] | None, *, what: str = "shape") -> tuple[int, ...] | None:
    """Parse ``"1,1,256,256"`` (or a sequence) into a tuple of positive ints; None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            values = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
        except ValueError:
            raise ExplorerError(
                f"{what} {text!r} is not a comma-separated list of integers.",
                hint="Write it like 1,1,256,256.",
            ) from None
    else:
        values = tuple(int(v) for v in text)
    if not values or any(v <= 0 for v in values):
        raise ExplorerError(f"{what} {text!r} must have positive sizes.")
    return values


def _parse_shards(value: Any) -> tuple[int, ...] | Literal["none"] | None:
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    return parse_shape(value, what="shards")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One encoding to try: a compressor spec, and optionally new chunk and shard shapes.

    ``chunks=None`` keeps the array's chunk shape (its inner chunks when sharded);
    ``shards=None`` keeps its sharding (rounded up to whole chunks), ``shards="none"`` projects
    an unsharded array. This is what ``recompress`` does with the same options.
    """

    spec: CompressorSpec
    chunks: tuple[int, ...] | None = None
    shards: tuple[int, ...] | Literal["none"] | None = None

    @property
    def label(self) -> str:
        """``"zstd:5 chunks 1x256x256 shards 1x2048x2048"``."""
        text = self.spec.label
        if self.chunks:
            text += " chunks " + "x".join(map(str, self.chunks))
        if self.shards == "none":
            text += " unsharded"
        elif self.shards:
            text += " shards " + "x".join(map(str, self.shards))
        return text

    @classmethod
    def coerce(cls, value: Any) -> Candidate:
        """Make a candidate from a string, a :class:`CompressorSpec`, a mapping or a candidate.

        A mapping may have the keys ``compressor``, ``shuffle``, ``chunks`` and ``shards``.
        """
        if isinstance(value, Candidate):
            return value
        if isinstance(value, CompressorSpec | str):
            return cls(parse_compressor(value))
        if isinstance(value, Mapping):
            spec = parse_compressor(value.get("compressor"), shuffle=value.get("shuffle"))
            return cls(
                spec,
                parse_shape(value.get("chunks"), what="chunks"),
                _parse_shards(value.get("shards")),
            )
        raise CodecError(
            f"Cannot use {value!r} as an estimate candidate.",
            hint="Give a compressor string such as 'zstd:5' or a CompressorSpec.",
        )


@dataclass(kw_only=True, frozen=True, slots=True)
class CandidateResult:
    """What one candidate would give.

    Attributes
    ----------
    label
        The candidate in words.
    chunk_shape, shard_shape
        The chunk and shard shapes the projection is for.
    sampled
        Chunks sampled (including the ones found empty).
    sampled_empty
        Sampled chunks holding only the fill value (not stored by a rewrite).
    bytes_in, bytes_out
        Raw and encoded bytes of the non-empty sampled chunks.
    ratio
        ``bytes_in / bytes_out``: the sampled chunks' own compression ratio.
    encode_mbps, decode_mbps
        Speed in MB/s (10^6 bytes of raw data per second) on this machine, one thread.
    projected_bytes
        Projected stored bytes of the whole array (chunks, plus shard indexes); None when
        nothing could be sampled (the candidate is not possible, the array stores no chunk, or
        no sampled chunk could be read).
    projected_objects
        Projected number of stored objects (chunks, or shards when sharded); None when
        ``projected_bytes`` is.
    projected_ratio
        The array's logical bytes over ``projected_bytes``: the ratio to compare with the
        ratio of what is stored now (edge chunks are stored whole, and empty ones not at all).
    error
        Round-trip error of lossy encodings, None for lossless ones.
    problems
        Why a candidate could not be evaluated (then the numbers are zero).
    """

    label: str
    compressor: str
    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...] | None = None
    sampled: int = 0
    sampled_empty: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    ratio: float | None = None
    encode_mbps: float | None = None
    decode_mbps: float | None = None
    projected_bytes: int | None = None
    projected_objects: int | None = None
    projected_ratio: float | None = None
    error: ErrorStats | None = None
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (see ``docs/cli-json.md``)."""
        return {
            "label": self.label,
            "compressor": self.compressor,
            "chunk_shape": list(self.chunk_shape),
            "shard_shape": list(self.shard_shape) if self.shard_shape else None,
            "sampled": self.sampled,
            "sampled_empty": self.sampled_empty,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "ratio": _round(self.ratio),
            "encode_mbps": _round(self.encode_mbps),
            "decode_mbps": _round(self.decode_mbps),
            "projected_bytes": self.projected_bytes,
            "projected_objects": self.projected_objects,
            "projected_ratio": _round(self.projected_ratio),
            "error": self.error.to_dict() if self.error is not None else None,
            "problems": list(self.problems),
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


@dataclass(kw_only=True, frozen=True, slots=True)
class EstimateReport:
    """The estimate of every candidate on one array.

    Attributes
    ----------
    url, path
        The array.
    shape, dtype, chunk_shape, shard_shape
        The array as it is now.
    bytes_stored, objects_stored
        What it stores now (from the listing; None when the store cannot list).
    logical_bytes
        ``prod(shape) * itemsize``.
    candidates
        One :class:`CandidateResult` per candidate, in the order given.
    sample, seed
        The sample size asked for and the random seed.
    chunks_to_sample
        The sampled chunks drawn (at most ``sample``: fewer when the array has fewer).
    cancelled
        True when a cancel stopped the sampling before every drawn chunk was read: the
        figures are of the chunks read before (:attr:`chunks_sampled`).
    """

    url: str
    path: str
    shape: tuple[int, ...]
    dtype: str
    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...] | None = None
    bytes_stored: int | None = None
    objects_stored: int | None = None
    logical_bytes: int = 0
    candidates: tuple[CandidateResult, ...] = ()
    sample: int = 16
    seed: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    chunks_to_sample: int = 0
    cancelled: bool = False

    @property
    def ratio(self) -> float | None:
        """The compression ratio now: logical bytes over the bytes stored."""
        if not self.bytes_stored:
            return None
        return self.logical_bytes / self.bytes_stored

    @property
    def objects_text(self) -> str:
        """``1 object``, ``3 objects``, or ``? objects`` when the store cannot list."""
        n = self.objects_stored
        return "? objects" if n is None else plural(n, "object")

    @property
    def chunks_sampled(self) -> int:
        """Chunks actually sampled (at most ``sample``: fewer when the array has fewer)."""
        return max((c.sampled for c in self.candidates), default=0)

    @property
    def cancelled_text(self) -> str | None:
        """Say how much a cancelled estimate sampled (None when it was not cancelled).

        ``"Estimate cancelled after sampling 3 of 16 chunks: the figures are projected from
        those alone."``
        """
        if not self.cancelled:
            return None
        n = self.chunks_sampled
        if n == 0:
            return "Estimate cancelled before any chunk was sampled: nothing is projected."
        return (
            f"Estimate cancelled after sampling {n} of {self.chunks_to_sample} chunks: the "
            "figures are projected from those alone."
        )

    @property
    def best(self) -> CandidateResult | None:
        """The candidate with the smallest projected size."""
        ok = [c for c in self.candidates if c.projected_bytes is not None and not c.problems]
        return min(ok, key=lambda c: c.projected_bytes or 0) if ok else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (see ``docs/cli-json.md``)."""
        return jsonable(  # type: ignore[no-any-return]
            {
                "url": self.url,
                "path": self.path,
                "shape": list(self.shape),
                "dtype": self.dtype,
                "chunk_shape": list(self.chunk_shape),
                "shard_shape": list(self.shard_shape) if self.shard_shape else None,
                "bytes_stored": self.bytes_stored,
                "objects_stored": self.objects_stored,
                "logical_bytes": self.logical_bytes,
                "ratio": _round(self.ratio),
                "sample": self.sample,
                "chunks_sampled": self.chunks_sampled,
                "seed": self.seed,
                "candidates": [c.to_dict() for c in self.candidates],
                "warnings": list(self.warnings),
            }
        )

    def __str__(self) -> str:
        from napari_zarr_explorer._html import human_bytes
        from napari_zarr_explorer.store.locate import node_where

        ratio = self.ratio
        lines = [
            f"Estimate for {node_where(self.url, self.path)}: {list(self.shape)} "
            f"{self.dtype}, chunks {list(self.chunk_shape)}"
            + (f", shards {list(self.shard_shape)}" if self.shard_shape else ""),
            (
                "  now: stored size unknown"
                if self.bytes_stored is None
                else f"  now: {human_bytes(self.bytes_stored)} stored in {self.objects_text}"
            )
            + (f", compression ratio {ratio:.2f}x" if ratio else ""),
        ]
        for c in self.candidates:
            if c.problems:
                lines.append(f"  {c.label}: {'; '.join(c.problems)}")
                continue
            if c.projected_bytes is None:  # no sampled chunk could be read (see the warnings)
                lines.append(f"  {c.label}: nothing projected")
                continue
            lines.append(
                f"  {c.label}: compression ratio {c.projected_ratio or 0:.2f}x, "
                f"encode {c.encode_mbps or 0:.0f} MB/s, decode {c.decode_mbps or 0:.0f} MB/s, "
                f"projected {human_bytes(c.projected_bytes)}"
                f" in {plural(c.projected_objects or 0, 'object')}"
                + (
                    f", max error {c.error.max_abs:.3g}"
                    if c.error is not None and c.error.max_abs
                    else ""
                )
            )
        if self.cancelled:
            lines.append(f"  {self.cancelled_text}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from napari_zarr_explorer import _html

        ratio = self.ratio
        head = (
            f"<div><b>{_html.esc(self.url)}</b>{_html.esc('/' + self.path if self.path else '')}"
            f": {_html.esc(list(self.shape))} {_html.esc(self.dtype)}, "
            + (
                "stored size now unknown"
                if self.bytes_stored is None
                else f"now {_html.human_bytes(self.bytes_stored)} stored"
            )
            + (f", compression ratio {ratio:.2f}x" if ratio else "")
            + "</div>"
        )
        if self.cancelled_text:
            head += f"<div class='nze-warn'>{_html.esc(self.cancelled_text)}</div>"
        rows = []
        for c in self.candidates:
            rows.append(
                (
                    c.label,
                    f"{c.projected_ratio:.2f}x" if c.projected_ratio else "-",
                    f"{c.encode_mbps:.0f}" if c.encode_mbps else "-",
                    f"{c.decode_mbps:.0f}" if c.decode_mbps else "-",
                    _html.human_bytes(c.projected_bytes) if c.projected_bytes is not None else "-",
                    c.projected_objects if c.projected_objects is not None else "-",
                    f"{c.error.max_abs:.3g}" if c.error is not None else "-",
                    "; ".join(c.problems),
                )
            )
        return head + _html.table(
            [*CANDIDATE_COLUMNS, "max error", "problems"],
            rows,
        )


def _sample_indices(grid: Sequence[int], sample: int, seed: int) -> list[tuple[int, ...]]:
    total = math.prod(grid)
    if total == 0:
        return []
    if total > 2**62:  # beyond numpy's integers: draw each axis on its own
        import random

        pick = random.Random(seed)
        drawn = {tuple(pick.randrange(g) for g in grid) for _ in range(sample)}
        return sorted(drawn)
    rng = np.random.default_rng(seed)
    if total <= sample:
        flat = np.arange(total)
    else:
        picked: set[int] = set()
        while len(picked) < sample:
            picked.update(int(i) for i in rng.integers(0, total, size=sample - len(picked)))
        flat = np.array(sorted(picked))
    return [tuple(int(i) for i in np.unravel_index(f, tuple(grid))) for f in flat]


def _sample_blocks(
    arr: Any,
    chunk: tuple[int, ...],
    outer: Sequence[int],
    key_encoding: Any,
    fill_value: Any,
    sample: int,
    seed: int,
    where: str,
    warnings: list[str],
    cancel: Any = None,
) -> tuple[list[tuple[npt.NDArray[Any], bool]], int, bool]:
    """Read the sampled *chunk*-shaped regions of *arr*; each unreadable one adds to *warnings*.

    When none can be read, one warning says so with the first reason, not one per region.
    Returns the regions read, how many were drawn, and whether *cancel* (an event) stopped
    the reading before the last one was tried.
    """
    from napari_zarr_explorer import codecs as _codecs

    blocks: list[tuple[npt.NDArray[Any], bool]] = []
    unreadable: list[tuple[str, str]] = []  # (region and key, reason)
    indices = _sample_indices(_codecs.grid_shape(arr.shape, chunk), sample, seed)
    drawn = len(indices)
    for n, idx in enumerate(indices):
        if cancel is not None and cancel.is_set():
            # the figures are of the regions tried before the cancel
            return _blocks_read(blocks, unreadable, indices[:n], where, warnings), drawn, True
        try:
            blocks.append(_read_block(arr, idx, chunk, fill_value))
        except Exception as exc:  # a corrupt chunk must not stop the estimate
            # the stored object holding the region's first element
            stored = [i * c // o for i, c, o in zip(idx, chunk, outer, strict=True)]
            unreadable.append(
                (
                    f"region {list(idx)} (chunks {list(chunk)}, key "
                    f"{_codecs.chunk_key(stored, key_encoding)})",
                    f"{type(exc).__name__}: {exc}",
                )
            )
    return _blocks_read(blocks, unreadable, indices, where, warnings), drawn, False


def _blocks_read(
    blocks: list[tuple[npt.NDArray[Any], bool]],
    unreadable: list[tuple[str, str]],
    indices: Sequence[Any],
    where: str,
    warnings: list[str],
) -> list[tuple[npt.NDArray[Any], bool]]:
    """Return *blocks*, adding the warnings of the *unreadable* regions among *indices*."""
    if indices and not blocks:
        region, reason = unreadable[0]
        warnings.append(
            f"{where}: none of the {len(indices)} sampled chunks could be read: nothing to "
            f"project (the first, {region}: {reason})"
        )
    else:
        warnings.extend(
            f"{where}: sampled {region} could not be read and was skipped: {reason}"
            for region, reason in unreadable
        )
    return blocks


def _read_block(
    arr: Any, index: Sequence[int], chunk: Sequence[int], fill: Any
) -> tuple[npt.NDArray[Any], bool]:
    """Read one candidate chunk, padded with the fill value to its full shape."""
    shape = arr.shape
    sel = tuple(
        slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, chunk, shape, strict=True)
    )
    data = np.asarray(arr[sel])
    empty = _all_fill(data, fill)
    if data.shape != tuple(chunk):
        full = np.full(tuple(chunk), fill if fill is not None else 0, dtype=data.dtype)
        full[tuple(slice(0, s) for s in data.shape)] = data
        data = full
    return data, empty


def _all_fill(data: npt.NDArray[Any], fill: Any) -> bool:
    if fill is None:
        fill = 0
    try:
        if data.dtype.kind in "fc" and isinstance(fill, float) and math.isnan(fill):
            return bool(np.isnan(data).all())
        return bool((data == fill).all())
    except (TypeError, ValueError):
        return False


def estimate(
    url: Any,
    path: str,
    candidates: Sequence[Any] | Any,
    *,
    sample: int = 16,
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    level: int | None = None,
    cancel: Any = None,
) -> EstimateReport:
    """Estimate ratio, speed and projected size of candidate encodings on sampled chunks.

    Parameters
    ----------
    url
        Path or URL of the store (or an open zarr store).
    path
        Path of the array (or of an OME image group: then *level* picks the level, 0 by
        default).
    candidates
        Compressor strings (``"zstd:5"``, ``"blosc-zstd:5"``...), :class:`CompressorSpec`
        objects, :class:`Candidate` objects (with chunk and shard shapes), or mappings with the
        keys ``compressor``, ``shuffle``, ``chunks`` and ``shards``. One candidate alone is
        accepted too.
    sample
        How many chunks to sample (at random, the same positions for every candidate of the
        same chunk shape).
    seed
        Random seed of the sample.
    storage_options
        Options for remote stores.
    level
        Multiscale level when *path* is an OME image group.
    cancel
        A ``threading.Event``: once set, no further sampled chunk is read, and the candidates
        are evaluated on the chunks read before (the report says ``cancelled``).

    Returns
    -------
    EstimateReport
        Nothing is written anywhere.
    """
    from napari_zarr_explorer import chunks as _chunks
    from napari_zarr_explorer import codecs as _codecs
    from napari_zarr_explorer.store import open_url
    from napari_zarr_explorer.store.locate import node_where

    if isinstance(candidates, str | CompressorSpec | Candidate | Mapping):
        candidates = [candidates]
    cands = [Candidate.coerce(c) for c in candidates]
    if not cands:
        raise ExplorerError("No candidate encodings given.", hint="Give at least one, e.g. zstd:5.")
    if sample < 1:
        raise ExplorerError(
            f"The sample must be at least 1 chunk, not {sample}.", hint="Give --sample 1 or more."
        )
    store, where = open_url(url, storage_options)
    path, metadata, zarr_format = _chunks._resolve_level(store, path.strip("/"), level, where)
    arr = _chunks._open_for_decode(store, path, metadata, zarr_format, where)
    codecs = _codecs.codec_pipeline(metadata, zarr_format=zarr_format)
    sharding = _codecs.sharding_info(codecs)
    outer = _codecs.outer_chunk_shape(metadata, zarr_format=zarr_format)
    inner = sharding.chunk_shape if sharding is not None else outer
    shape = tuple(int(s) for s in arr.shape)
    dtype = np.dtype(arr.dtype)
    itemsize = dtype.itemsize
    fill = arr.fill_value
    fill_value: Any = fill.item() if hasattr(fill, "item") else fill
    warnings: list[str] = []

    listing = None
    try:
        listing = _chunks.list_stored(store, path)
    except Exception as exc:
        warnings.append(f"{node_where(where, path)}: listing failed ({exc}); current size unknown.")
    bytes_stored = objects_stored = None
    if listing is not None:
        _, valid = _chunks.parse_chunk_keys(
            listing.keys,
            _codecs.grid_shape(shape, outer),
            _codecs.chunk_key_encoding(metadata, zarr_format=zarr_format),
        )
        objects_stored = int(valid.sum())
        bytes_stored = int(listing.sizes[valid].sum()) if objects_stored else 0
    key_encoding = _codecs.chunk_key_encoding(metadata, zarr_format=zarr_format)
    nothing_stored = objects_stored == 0  # every chunk is the fill value: no sample to take
    if nothing_stored:
        warnings.append(NOTHING_TO_SAMPLE)

    samples: dict[tuple[int, ...], list[tuple[npt.NDArray[Any], bool]]] = {}
    drawn = 0  # the most sampled chunks drawn for one chunk shape
    cancelled = False
    results: list[CandidateResult] = []
    for cand in cands:
        chunk = tuple(cand.chunks) if cand.chunks else tuple(inner)
        problems: list[str] = []
        if len(chunk) != len(shape):
            problems.append(f"chunks {list(chunk)} do not match the array's {len(shape)} axes.")
        else:  # a chunk larger than the array is the whole axis
            chunk = tuple(max(1, min(c, n)) if n else 1 for c, n in zip(chunk, shape, strict=True))
        shard: tuple[int, ...] | None
        if cand.shards == "none":
            shard = None
        elif cand.shards is None:
            shard = None
            if sharding is not None and len(chunk) == len(shape):  # keep the array's sharding
                shard = tuple(
                    max(c, min(-(-s // c) * c, -(-n // c) * c if n else c))
                    for s, c, n in zip(outer, chunk, shape, strict=True)
                )
        else:
            shard = tuple(cand.shards)
            if len(shard) != len(shape):
                problems.append(f"shards {list(shard)} do not match the array's {len(shape)} axes.")
            elif any(s % c for s, c in zip(shard, chunk, strict=False)):
                problems.append(f"shards {list(shard)} are not multiples of chunks {list(chunk)}.")
        try:  # image codecs: also the chunk shape they would encode, before any encoding
            cand.spec.check_dtype(dtype, chunks=chunk if len(chunk) == len(shape) else None)
        except CodecError as exc:
            problems.append(str(exc))
        if not problems and chunk not in samples:
            if nothing_stored:
                samples[chunk] = []
            else:
                node = node_where(where, path)
                samples[chunk], tried, stopped = _sample_blocks(
                    arr,
                    chunk,
                    outer,
                    key_encoding,
                    fill_value,
                    sample,
                    seed,
                    node,
                    warnings,
                    cancel,
                )
                drawn = max(drawn, tried)
                cancelled = cancelled or stopped
        if problems or not samples[chunk]:  # not possible, or nothing stored or read
            results.append(
                CandidateResult(
                    label=cand.label,
                    compressor=cand.spec.label,
                    chunk_shape=chunk,
                    shard_shape=shard,
                    problems=tuple(problems),
                )
            )
            continue
        results.append(_evaluate(cand, chunk, shard, shape, dtype, itemsize, samples[chunk]))
    return EstimateReport(
        url=where,
        path=path,
        shape=shape,
        dtype=str(dtype),
        chunk_shape=tuple(inner),
        shard_shape=tuple(outer) if sharding is not None else None,
        bytes_stored=bytes_stored,
        objects_stored=objects_stored,
        logical_bytes=math.prod(shape) * itemsize,
        candidates=tuple(results),
        sample=sample,
        seed=seed,
        warnings=tuple(warnings),
        chunks_to_sample=drawn,
        cancelled=cancelled,
    )


def _evaluate(
    cand: Candidate,
    chunk: tuple[int, ...],
    shard: tuple[int, ...] | None,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    itemsize: int,
    blocks: list[tuple[npt.NDArray[Any], bool]],
) -> CandidateResult:
    spec = cand.spec
    bytes_in = bytes_out = 0
    t_enc = t_dec = 0.0
    empty = 0
    max_abs = rms_sq = 0.0
    psnr = math.inf
    n_values = 0
    for data, is_empty in blocks:
        if is_empty:
            empty += 1
            continue
        t0 = time.perf_counter()
        encoded = spec.encode(data)
        t1 = time.perf_counter()
        back = spec.decode(encoded, dtype, data.shape)
        t2 = time.perf_counter()
        t_enc += t1 - t0
        t_dec += t2 - t1
        bytes_in += data.nbytes
        bytes_out += len(encoded)
        if spec.is_lossy:
            err = _error(data, back)
            max_abs = max(max_abs, err.max_abs)
            rms_sq += err.rms**2 * data.size
            psnr = min(psnr, err.psnr)
            n_values += data.size
    sampled = len(blocks)
    grid = _codecs_grid(shape, chunk)
    n_chunks = math.prod(grid)
    filled_fraction = (sampled - empty) / sampled if sampled else 0.0
    stored_chunks = n_chunks * filled_fraction
    mean_out = bytes_out / (sampled - empty) if sampled > empty else 0.0
    projected = stored_chunks * mean_out
    if shard is not None:
        per = math.prod(s // c for s, c in zip(shard, chunk, strict=True))
        n_shards = math.prod(_codecs_grid(shape, shard))
        # probability that a shard holds at least one stored chunk
        p_shard = 1.0 - (1.0 - filled_fraction) ** per
        objects = round(n_shards * p_shard)
        projected += objects * (16 * per + 4)
    else:
        objects = round(stored_chunks)
    error = None
    if spec.is_lossy:
        rms = math.sqrt(rms_sq / n_values) if n_values else 0.0
        error = ErrorStats(max_abs, rms, psnr)
    return CandidateResult(
        label=cand.label,
        compressor=spec.label,
        chunk_shape=chunk,
        shard_shape=shard,
        sampled=sampled,
        sampled_empty=empty,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        ratio=(bytes_in / bytes_out) if bytes_out else None,
        encode_mbps=(bytes_in / t_enc / 1e6) if t_enc > 0 else None,
        decode_mbps=(bytes_in / t_dec / 1e6) if t_dec > 0 else None,
        projected_bytes=round(projected),
        projected_objects=int(objects),
        projected_ratio=math.prod(shape) * itemsize / projected if projected else None,
        error=error,
    )


def _codecs_grid(shape: Sequence[int], chunk: Sequence[int]) -> tuple[int, ...]:
    from napari_zarr_explorer.codecs import grid_shape

    return grid_shape(shape, chunk)


def _error(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> ErrorStats:
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    if not ok.any():
        return ErrorStats(0.0, 0.0, math.inf)
    d = np.abs(x[ok] - y[ok])
    max_abs = float(d.max())
    rms = float(np.sqrt(np.mean(d**2)))
    finite = x[ok][np.isfinite(x[ok])]
    peak = float(np.max(finite) - np.min(finite)) if finite.size else 0.0
    psnr = math.inf if rms == 0 else (20 * math.log10(peak / rms) if peak > 0 else 0.0)
    return ErrorStats(max_abs, rms, psnr)


# --------------------------------------------------------------------------------------------
# The estimate of a whole run: every array a recompression writes

#: Arrays :func:`estimate_run` samples at most; the others are projected at the ratio of those
#: sampled.
ESTIMATE_ARRAYS = 48


def _first_array(url: str, path: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """Return the array to sample alone: the node, level 0 of an image, or the first array below."""
    from napari_zarr_explorer.store import open_url, read_node

    store, where = open_url(url, storage_options)
    node = read_node(store, path, where=where)
    if node is None or node.kind == "array":
        return path
    from napari_zarr_explorer.ome.model import parse_ome

    ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
    if ome is not None and ome.multiscales:
        return path  # estimate() follows an image group to its level 0
    from napari_zarr_explorer.report import inspect

    report = inspect(url, path=path, max_nodes=200, storage_options=storage_options)
    for array in report.arrays:
        return str(array.path)
    return path


@dataclass(frozen=True)
class ArrayEstimate:
    """The estimate of one array the run writes."""

    path: str
    """The array, relative to the source node (``""`` for the node itself)."""
    report: EstimateReport
    bytes_now: int | None
    """What it stores now (None when unknown)."""


#: The columns of a table of candidates (the command line's and the HTML's), before their own.
CANDIDATE_COLUMNS = (
    "candidate",
    "compression ratio",
    "encode MB/s",
    "decode MB/s",
    "projected size",
    "objects",
)


@dataclass(frozen=True)
class RunEstimate:
    """The estimate of a whole run: every array it writes, summed per candidate encoding.

    Arrays beyond the ones sampled (a large plate) are projected at the ratio of those sampled.
    Pure data, no Qt: the dock shows it as its table, its summary and its warning.
    """

    source: str
    arrays: tuple[ArrayEstimate, ...]
    compressors: tuple[str, ...]
    """The candidate encodings, the chosen one first (as the estimate names them)."""
    unsampled: int = 0
    """Arrays the run writes that were not sampled."""
    unsampled_nbytes: int = 0
    unsampled_now: int | None = 0
    plan_error: str | None = None
    """Why the run as set cannot be planned (what ``recompress`` would say), None when it can.

    When set, :attr:`arrays` holds the first array alone, at the shapes as typed: the figures
    are not the run's.
    """
    cancelled: bool = False
    """True when a cancel stopped the estimate: the figures are projected from the chunks
    sampled before it (:attr:`chunks_sampled`), and the arrays not reached are projected at the
    compression ratio of those sampled."""

    @property
    def chunks_sampled(self) -> int:
        """Chunks sampled in all, over every array."""
        return sum(a.report.chunks_sampled for a in self.arrays)

    def sampled_text(self, *, seed: bool = True) -> str:
        """Say what was sampled, in one sentence that never claims more than was read.

        ``"Sampled up to 16 chunks per array (seed 0)."``, ``"Sampled 4 chunks (seed 0)."``
        for one array; a cancelled estimate says how much it read:
        ``"Estimate cancelled after sampling 3 of 16 chunks: the figures are projected from
        those alone."``, ``"Estimate cancelled after sampling 19 chunks in 2 of 6 arrays: ..."``
        or ``"Estimate cancelled before any chunk was sampled: nothing is projected."``.
        """
        count = len(self.arrays) + self.unsampled
        seeded = f" (seed {self.arrays[0].report.seed})" if seed and self.arrays else ""
        if self.cancelled:
            total = self.chunks_sampled
            if total == 0:
                return "Estimate cancelled before any chunk was sampled: nothing is projected."
            if count == 1:
                report = self.arrays[0].report
                of = f" of {report.chunks_to_sample}" if report.chunks_to_sample else ""
                done = f"{total}{of} {'chunk' if total == 1 and not of else 'chunks'}"
            else:
                reached = sum(1 for a in self.arrays if a.report.chunks_sampled)
                done = f"{plural(total, 'chunk')} in {reached} of {count} arrays"
            return (
                f"Estimate cancelled after sampling {done}{seeded}: the figures are projected "
                "from those alone."
            )
        n = max((a.report.chunks_sampled for a in self.arrays), default=0)
        if count == 1:
            return f"Sampled {plural(n, 'chunk')}{seeded}."
        return f"Sampled up to {plural(n, 'chunk')} per array{seeded}."

    @property
    def unsampled_text(self) -> str | None:
        """Say which arrays were not sampled and how they are projected (None when all were).

        ``"2 arrays were not sampled: they are projected at the compression ratio of those
        sampled."``
        """
        if not self.unsampled:
            return None
        one = self.unsampled == 1
        return (
            f"{plural(self.unsampled, 'array')} {'was' if one else 'were'} not sampled: "
            f"{'it is' if one else 'they are'} projected at the compression ratio of those "
            "sampled."
        )

    @property
    def nbytes(self) -> int:
        """Logical bytes of every array the run writes."""
        return sum(a.report.logical_bytes for a in self.arrays) + self.unsampled_nbytes

    @property
    def bytes_now(self) -> int | None:
        """What the arrays store now, in all (None when a size is unknown)."""
        sizes = [a.bytes_now for a in self.arrays] + [self.unsampled_now]
        return None if any(b is None for b in sizes) else sum(b or 0 for b in sizes)

    def projected_of(self, array: ArrayEstimate, index: int) -> int | None:
        """Return the projected size of *array* with candidate *index* (None when not projected).

        An array storing no chunk (every chunk the fill value) has nothing to sample and
        nothing to write: 0.
        """
        size = array.report.candidates[index].projected_bytes
        if size is None and array.report.objects_stored == 0:
            return 0
        return size

    def projected(self, index: int) -> int | None:
        """Return the projected size of the whole run with candidate *index* (None when unknown)."""
        sizes = [self.projected_of(a, index) for a in self.arrays]
        if any(b is None for b in sizes):
            return None
        total = sum(b or 0 for b in sizes)
        if self.unsampled_nbytes:
            sampled = sum(a.report.logical_bytes for a in self.arrays)
            if sampled == 0:
                return None
            total += round(self.unsampled_nbytes * total / sampled)
        return total

    @property
    def plan_note(self) -> str | None:
        """Say that the run as set cannot be planned and the figures are of one array only.

        ``"The run as set cannot be planned: Zarr v2 has no shards. ... The figures are for
        the first array only (0)."``; None when the run was planned.
        """
        if self.plan_error is None:
            return None
        first = self.arrays[0] if self.arrays else None
        name = f" ({first.path or first.report.path or '/'})" if first is not None else ""
        reason = self.plan_error.strip()
        if not reason.endswith((".", "!", "?")):
            reason += "."
        return (
            f"The run as set cannot be planned: {reason} The figures are for the first "
            f"array only{name}."
        )

    def warnings(self) -> list[str]:
        """Every array's warnings, each naming its array, each once.

        A warning that does not start with its array's path is prefixed with it
        (``"empty: no stored chunks: nothing to sample ..."``).
        """
        from napari_zarr_explorer.store.locate import node_where

        seen: dict[str, None] = {}
        for a in self.arrays:
            name = a.path or a.report.path or "/"
            where = node_where(a.report.url, a.report.path)
            for w in a.report.warnings:
                named = w.startswith((f"{name}:", f"{where}:"))
                seen.setdefault(w if named else f"{name}: {w}")
        return list(seen)

    def problems(self, index: int) -> list[str]:
        """Why candidate *index* cannot encode some array (each reason once)."""
        seen: dict[str, None] = {}
        for a in self.arrays:
            for p in a.report.candidates[index].problems:
                seen.setdefault(p)
        return list(seen)

    @property
    def best(self) -> int | None:
        """Index of the candidate with the smallest projected run."""
        known = [
            (size, i)
            for i in range(len(self.compressors))
            if (size := self.projected(i)) is not None and not self.problems(i)
        ]
        return min(known)[1] if known else None

    def total_text(self, index: int) -> str | None:
        """Return candidate *index*'s projected total as the tables show it, None when not possible.

        ``"696.3 KiB (78% of now)"``; ``"-"`` when it could not be projected.
        """
        from napari_zarr_explorer._html import human_bytes

        if self.problems(index):
            return None
        size, now = self.projected(index), self.bytes_now
        if size is None:
            return "-"
        return human_bytes(size) + (f" ({size / now:.0%} of now)" if now else "")

    def _repr_html_(self) -> str:
        """Show the run in Jupyter: arrays by candidates, the totals, what was not sampled.

        Each array is a row with its size now and its projected size per candidate; the total
        row gives each candidate's share of the size now, the smallest total highlighted.
        Below: the sample, the arrays not sampled, why a candidate cannot encode some array,
        the arrays' warnings, and the warning of :func:`growth_warning` for the chosen
        candidate (the first). Why the run cannot be planned, when it cannot, is said once,
        at the top. Names and messages are escaped; a URL shows no password.
        """
        from napari_zarr_explorer import _html
        from napari_zarr_explorer.errors import redact_urls, shown_url

        esc = _html.esc

        def human(size: int | None) -> str:  # a size a store cannot tell is said in words
            return "unknown" if size is None else _html.human_bytes(size)

        now = self.bytes_now
        count = len(self.arrays) + self.unsampled
        stored = "stored size now unknown" if now is None else f"now {human(now)} stored"
        head = (
            f"<div><b>{esc(shown_url(self.source))}</b>: the run writes "
            f"{_html.plural(count, 'array')}; {stored}"
            f" (logical {human(self.nbytes)})</div>"
        )
        indices = range(len(self.compressors))
        rows: list[list[str]] = []
        for a in self.arrays:
            cells = []
            for i in indices:
                size = self.projected_of(a, i)
                cells.append(
                    "<span class='nze-err'>not possible</span>"
                    if a.report.candidates[i].problems
                    else esc(human(size))
                    if size is not None
                    else "-"
                )
            # the node itself (path ""): named by its path in the store
            rows.append([a.path or a.report.path or "/", human(a.bytes_now), *cells])
        if self.unsampled:
            rows.append(
                [f"{self.unsampled} more, not sampled", human(self.unsampled_now)]
                + ["-" for _ in indices]
            )
        best = self.best
        totals = []
        for i in indices:
            text = self.total_text(i)
            if text is None:
                totals.append("<span class='nze-err'>not possible</span>")
                continue
            totals.append(
                f"<b style='color:#1b7f1b'>{esc(text)}</b>" if i == best else f"<b>{esc(text)}</b>"
            )
        rows.append(["total", human(now), *totals])
        table = _html.table(
            ["array", "now", *self.compressors],
            rows,
            raw_columns=range(2, 2 + len(self.compressors)),
        )
        # a cancelled estimate says so first, with how much it sampled
        notes = [] if self.cancelled else [f"{self.sampled_text()} Nothing was written."]
        if self.cancelled:
            head = f"<div><b>{esc(self.sampled_text())}</b></div>" + head
        if self.unsampled_text:
            notes.append(self.unsampled_text)
        lines = [f"<div>{esc(n)}</div>" for n in notes]
        for i, name in enumerate(self.compressors):
            lines.extend(
                f"<div class='nze-err'>{esc(name)}: {esc(redact_urls(p))}</div>"
                for p in self.problems(i)
            )
        lines.extend(
            f"<div class='nze-warn'>warning: {esc(redact_urls(w))}</div>" for w in self.warnings()
        )
        # the head says why the run cannot be planned: the warning does not say it again
        warning = growth_warning(
            self, 0, pick="a column of the table with a smaller total", plan_note=False
        )
        if warning:
            lines.append(f"<div class='nze-warn' style='font-weight:bold'>{esc(warning)}</div>")
        note = self.plan_note
        if note is not None:
            head = (
                head
                + f"<div class='nze-err' style='font-weight:bold'>{esc(redact_urls(note))}</div>"
            )
        return head + table + "".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (see ``docs/cli-json.md``): the totals, then each array's estimate."""
        from napari_zarr_explorer.errors import shown_url

        return jsonable(  # type: ignore[no-any-return]
            {
                "source": shown_url(self.source),
                "compressors": list(self.compressors),
                "logical_bytes": self.nbytes,
                "bytes_now": self.bytes_now,
                "projected_bytes": [self.projected(i) for i in range(len(self.compressors))],
                "problems": [self.problems(i) for i in range(len(self.compressors))],
                "best": self.best,
                "arrays_unsampled": self.unsampled,
                "plan_error": self.plan_error,
                "arrays": [
                    {
                        "path": a.path,
                        "bytes_now": a.bytes_now,
                        "projected_bytes": [
                            self.projected_of(a, i) for i in range(len(self.compressors))
                        ],
                        "estimate": a.report.to_dict(),
                    }
                    for a in self.arrays
                ],
            }
        )


def growth_warning(
    run: RunEstimate,
    index: int = 0,
    *,
    pick: str = "a smaller row of the table",
    plan_note: bool = True,
) -> str | None:
    """Return the warning to show when candidate *index* is projected to write more than now.

    The advice fits what the estimate found: when another encoding estimated is projected
    smaller, choose it; when none is (data already compressed as well as these codecs can,
    or noise-like), no codec helps, and the warning says so, names the arrays that grow and
    advises keeping the source, or its encoding, no compression or larger chunks.

    Parameters
    ----------
    run
        The estimate of the run.
    index
        The candidate (0: the chosen one).
    pick
        Where the view shows the encodings to choose from instead (the Recompress dock's
        table has one row per encoding, the notebook's one column).
    plan_note
        End with :attr:`RunEstimate.plan_note` when the run cannot be planned (False: a view
        that says it elsewhere, such as the notebook's table or the Recompress dock's summary,
        leaves it out here).

    Returns
    -------
    str or None
        ``"Warning: the estimate predicts the output will be 12% larger than the source
        (1.0 MiB -> 1.1 MiB with none): choose a stronger codec (...) or keep the source."``;
        when every encoding estimated grows the data: ``"Warning: ... No encoding
        estimated is projected smaller than now (every array grows: 0, 1, labels/0): the data
        does not compress further with these codecs (...). Keep the source as it is, or keep its
        encoding; to rewrite it anyway, use no compression (none) or larger chunks (fewer,
        fuller objects)."``; None when it is projected no larger (or either size is
        unknown), and for a cancelled estimate: its figures come from part of the sample (the
        arrays it did not reach are projected from those it did), so no advice is drawn from
        them; :meth:`RunEstimate.sampled_text` says what was sampled.
    """
    from napari_zarr_explorer._html import human_bytes

    if run.cancelled:  # figures from part of the sample: no advice is drawn from them
        return None
    now, projected = run.bytes_now, run.projected(index)
    if not now or projected is None or projected <= now:
        return None
    larger = max(1, round(100 * (projected - now) / now))
    text = (
        f"Warning: the estimate predicts the output will be {larger}% larger than the source "
        f"({human_bytes(now)} -> {human_bytes(projected)} with {run.compressors[index]})"
    )
    smaller = [
        i
        for i in range(len(run.compressors))
        if not run.problems(i) and (size := run.projected(i)) is not None and size <= now
    ]
    if smaller or len(run.compressors) == 1:  # another encoding helps, or none other was tried
        text += f": choose a stronger codec ({pick}) or keep the source."
    else:
        text += (
            f". {_every_encoding_grows(run, index)} the data does not compress further with "
            "these codecs (it is already compressed well, or noise-like). Keep the source as "
            "it is, or keep its encoding; to rewrite it anyway, use no compression (none) or "
            "larger chunks (fewer, fuller objects)."
        )
    note = run.plan_note if plan_note else None
    return text if note is None else f"{text} {note}"


def _every_encoding_grows(run: RunEstimate, index: int) -> str:
    """Say that no encoding estimated is smaller, naming the arrays candidate *index* grows."""
    lead = "No encoding estimated is projected smaller than now"
    count = len(run.arrays) + run.unsampled
    if count == 1:
        return f"{lead}:"
    growing = [
        a.path or a.report.path or "/"
        for a in run.arrays
        if a.bytes_now is not None
        and (size := run.projected_of(a, index)) is not None
        and size > a.bytes_now
    ]
    if not growing:
        return f"{lead}:"
    names = ", ".join(growing[:6]) + (f" and {len(growing) - 6} more" if len(growing) > 6 else "")
    if len(growing) == len(run.arrays):
        which = f"every array grows: {names}"
        if run.unsampled:
            which += f", and the {plural(run.unsampled, 'array')} not sampled"
    else:
        which = f"{plural(len(growing), 'array')} of {count} grow: {names}"
    return f"{lead} ({which}):"


def estimate_run(
    url: str,
    path: str,
    source: str,
    candidates: list[dict[str, Any]],
    plan_kwargs: dict[str, Any],
    sample: int,
    cancel: Any = None,
    *,
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    fallback: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RunEstimate:
    """Estimate every array a recompression of *source* with *plan_kwargs* would write.

    The run's plan names the arrays and each one's output chunk and shard shapes; each array
    is sampled with every candidate at those shapes. When the plan cannot be made (the run
    would say why) and *fallback* is true, the node's first array is estimated alone with the
    shapes as typed.

    Parameters
    ----------
    url
        The source store (path or URL).
    path
        The node inside it that the run rewrites (``""`` for the root).
    source
        The source as the recompression is given it (*url* with *path*).
    candidates
        The encodings to compare, the chosen one first (as :func:`estimate` takes them).
    plan_kwargs
        The run's settings (``compressor``, ``shuffle``, ``chunks``, ``shards``,
        ``zarr_format``), as :func:`~napari_zarr_explorer.recompress.plan_recompress` takes them.
    sample
        Chunks sampled per array.
    cancel
        A ``threading.Event``: once set, no further chunk is read; the figures are projected
        from the chunks sampled before, the arrays not reached at the compression ratio of
        those sampled, and :attr:`RunEstimate.cancelled` is True (its
        :meth:`~RunEstimate.sampled_text` says how much was sampled). The first array is
        always opened, so the sizes now are known even when nothing was sampled.
    seed
        Seed of each array's random sample.
    storage_options
        Options of a remote store (as :func:`estimate` takes them).
    fallback
        Estimate the first array alone when the run cannot be planned, keeping the planning
        error in :attr:`RunEstimate.plan_error`; False raises it (what ``recompress`` would
        say).
    progress
        Called with ``(arrays sampled, arrays to sample)`` before the first array is sampled
        and after each one (not when the run cannot be planned: one array is sampled then).

    Returns
    -------
    RunEstimate
        Every sampled array's estimate, and the totals over the whole run.
    """
    from napari_zarr_explorer.recompress import plan_recompress

    options = dict(storage_options or {})
    try:
        plan = plan_recompress(source, storage_options=options or None, **plan_kwargs)
    except Exception as exc:
        if not fallback:
            raise
        from napari_zarr_explorer.errors import error_message

        first = _first_array(url, path, options)
        report = estimate(
            url,
            first,
            candidates,
            sample=sample,
            seed=seed,
            storage_options=options,
            cancel=cancel,
        )
        return RunEstimate(
            source,
            (ArrayEstimate(report.path, report, report.bytes_stored),),
            tuple(c.compressor for c in report.candidates),
            plan_error=error_message(exc),
            cancelled=report.cancelled,
        )
    arrays: list[ArrayEstimate] = []
    rest = plan.arrays[ESTIMATE_ARRAYS:]
    to_sample = len(plan.arrays[:ESTIMATE_ARRAYS])
    if progress is not None:
        progress(0, to_sample)
    cancelled = False
    for planned in plan.arrays[:ESTIMATE_ARRAYS]:
        if cancel is not None and cancel.is_set() and arrays:
            rest = plan.arrays[len(arrays) :]
            cancelled = True
            break
        target = planned.target
        layout = {"chunks": target.chunks, "shards": target.shards or "none"}
        where = "/".join(p for p in (path, target.path) if p)
        report = estimate(
            url,
            where,
            [{**c, **layout} for c in candidates],
            sample=sample,
            seed=seed,
            storage_options=options,
            cancel=cancel,
        )
        if report.cancelled and not report.chunks_sampled and arrays:
            # stopped before its first chunk: projected with the arrays not reached
            rest = plan.arrays[len(arrays) :]
            cancelled = True
            break
        now = planned.bytes_before if planned.bytes_before is not None else report.bytes_stored
        arrays.append(ArrayEstimate(target.path, report, now))
        if progress is not None:
            progress(len(arrays), to_sample)
        if report.cancelled:
            rest = plan.arrays[len(arrays) :]
            cancelled = True
            break
    if not arrays:
        from napari_zarr_explorer.errors import shown_url

        raise ExplorerError(f"{shown_url(source)}: a recompression of it writes no array.")
    befores = [a.bytes_before for a in rest]
    return RunEstimate(
        source,
        tuple(arrays),
        tuple(c.compressor for c in arrays[0].report.candidates),
        unsampled=len(rest),
        unsampled_nbytes=sum(a.nbytes for a in rest),
        unsampled_now=None if any(b is None for b in befores) else sum(b or 0 for b in befores),
        cancelled=cancelled,
    )
