"""The results and progress events of a recompression run."""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass
from typing import Any

from napari_zarr_explorer._html import human_bytes

__all__ = ["ArrayResult", "ProgressEvent", "RecompressReport"]


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress update of a running recompression.

    Attributes
    ----------
    phase
        ``"plan"``, ``"write"`` (also covers verifying), ``"check"`` (resume re-verification),
        ``"finish"`` or ``"done"``.
    array
        Path of the array the last finished task belonged to.
    objects_done, objects_total
        Output objects (shards, or chunks when unsharded) finished and in total.
    bytes_done, bytes_total
        Logical (uncompressed) bytes finished and in total.
    elapsed
        Seconds since the run started.
    rate
        Logical bytes per second so far.
    eta
        Estimated seconds left (None before anything finished).
    message
        Human-readable status line. After a task it names the array (the root array of a store
        by the output store's name) and the output objects the task finished, in the array's
        order: ``"image/0: shard 3 of 16 written and verified"``, ``"out.zarr: chunks 5-8 of 64
        written"``, ``"image/0: shard 2 of 16 already written, verified again"`` (resume;
        ``"image/0: shard 1 of 16 holds only the fill value: nothing stored, checked again"``
        for one whose objects all hold only the fill value).
    """

    phase: str
    array: str = ""
    objects_done: int = 0
    objects_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    elapsed: float = 0.0
    rate: float = 0.0
    eta: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """Fraction of the logical bytes done (0..1)."""
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping."""
        return dict(_json_safe(asdict(self)), fraction=self.fraction)


@dataclass(frozen=True, slots=True)
class ArrayResult:
    """What was done to one array.

    ``bytes_before`` is the stored size of the source array and ``bytes_before_basis`` says
    where it comes from: ``"files"`` (a stat of its files), ``"chunks"`` (the stored size of
    every stored object of the source, counted as the run read them: its chunks, or its whole
    shard files when it is sharded), ``"partial"`` (the objects read by an unfinished run: a
    lower bound), or None (not counted: ``bytes_before`` is None).
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    source_chunks: tuple[int, ...]
    source_shards: tuple[int, ...] | None
    nbytes: int
    bytes_before: int | None
    bytes_after: int
    objects_total: int
    objects_written: int
    objects_empty: int
    chunks_written: int
    objects_verified: int
    chunks_verified: int
    mismatches: tuple[str, ...] = ()
    max_error: float | None = None
    bytes_before_basis: str | None = None
    objects_empty_verified: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping."""
        d: dict[str, Any] = _json_safe(asdict(self))
        return d


@dataclass(frozen=True, slots=True)
class RecompressReport:
    """The outcome of :func:`napari_zarr_explorer.recompress.recompress`.

    Attributes
    ----------
    source, destination
        Where the data was read from and written to (after ``replace``, ``destination`` is the
        source's path, holding the new data).
    compressor
        Canonical compressor label (``"zstd:3"``).
    zarr_format
        Zarr format of the output.
    arrays
        One :class:`ArrayResult` per array written.
    groups
        Paths of the groups written.
    bytes_before, bytes_after
        Stored bytes of the arrays' chunks in the source and in the output (``bytes_before`` is
        None when the source of some array was neither measured nor counted; see
        :attr:`bytes_before_basis` for where it comes from).
    nbytes
        Logical (uncompressed) bytes of all arrays.
    objects_written, chunks_written
        Objects (shards, or chunks when unsharded) and chunks (inner chunks of shards) written.
    objects_verified, chunks_verified
        Objects and chunks verified: the objects read back and compared with the source (on
        resume also those of the tasks already done), and the objects holding only the fill
        value (:attr:`objects_empty`), which are not stored; the chunks read back.
    verified
        True when every output object was read back and matched the source.
    mismatches
        Descriptions of every difference or problem found by verification.
    complete
        True when every task finished (not cancelled, nothing failed).
    cancelled
        True when the run was stopped by its cancel event; continue it with ``resume=True``.
    resumed
        True when this run continued an earlier one.
    tasks_total, tasks_skipped, tasks_rewritten
        Tasks planned; found done and re-verified on resume; rewritten because re-verification
        found them incomplete.
    backup
        Where the original data was moved by ``replace=True`` (None otherwise).
    duration
        Wall-clock seconds.
    max_error
        Largest absolute error of a lossy compressor (None for lossless ones).
    notes
        Metadata conversions and other remarks.
    validation
        The OME-NGFF validator's verdict on the output (None when not an OME dataset).
    """

    source: str
    destination: str
    compressor: str
    zarr_format: int
    arrays: tuple[ArrayResult, ...] = ()
    groups: tuple[str, ...] = ()
    bytes_before: int | None = None
    bytes_after: int = 0
    nbytes: int = 0
    objects_written: int = 0
    chunks_written: int = 0
    objects_verified: int = 0
    chunks_verified: int = 0
    verified: bool = False
    mismatches: tuple[str, ...] = ()
    complete: bool = False
    cancelled: bool = False
    resumed: bool = False
    tasks_total: int = 0
    tasks_skipped: int = 0
    tasks_rewritten: int = 0
    backup: str | None = None
    duration: float = 0.0
    max_error: float | None = None
    notes: tuple[str, ...] = ()
    validation: str | None = None
    scheduler: str = "threads"
    #: What produced the output: ``"Recompress"`` or ``"Save"`` (from napari layers or arrays).
    action: str = "Recompress"

    @property
    def ok(self) -> bool:
        """True when the run completed and verification (if any) found no problem."""
        return self.complete and not self.cancelled and not self.mismatches

    @property
    def verification(self) -> str:
        """What verification compared the written values with.

        ``"exact"``, ``"within tolerance X"`` (a lossy codec's declared error), or
        ``"stored bytes only (...)"`` for a lossy codec that declares no error bound.
        """
        from napari_zarr_explorer.codec_spec import parse_compressor
        from napari_zarr_explorer.errors import ExplorerError

        try:
            return parse_compressor(self.compressor).tolerance().verification
        except ExplorerError:  # pragma: no cover - reports carry canonical labels
            return "exact"

    @property
    def bytes_before_basis(self) -> str | None:
        """Where :attr:`bytes_before` comes from.

        ``"files"``: a stat of every file of the source arrays (stray files included);
        ``"chunks"``: the stored size of every stored object of the source arrays (chunks, or
        whole shard files of sharded arrays), counted as the run read them (the scan of the
        files had not reached the arrays when the run ended, or the source is remote);
        ``"mixed"``: some arrays one way, some the other; ``"partial"``: an unfinished run
        counted only the objects it read (a lower bound of the source's size); None when
        :attr:`bytes_before` is None.
        """
        if self.bytes_before is None:
            return None
        bases = {a.bytes_before_basis for a in self.arrays}
        if "partial" in bases:
            return "partial"
        if bases == {"chunks"}:
            return "chunks"
        if "chunks" in bases:
            return "mixed"
        return "files"

    @property
    def objects_empty(self) -> int:
        """Objects holding only the fill value: not written (nor kept from an earlier run).

        With verification they count among :attr:`objects_verified` (nothing is stored for
        them), so more objects are verified than written; :attr:`objects_empty_verified` says
        how many of them are counted there.
        """
        return sum(a.objects_empty for a in self.arrays)

    @property
    def objects_empty_verified(self) -> int:
        """Of :attr:`objects_empty`, those counted in :attr:`objects_verified`.

        Every one of a task that verified, or that was checked again on resume (whatever
        ``verify`` says); none of a task written without verification. The rest of
        :attr:`objects_verified` was read back.
        """
        return sum(a.objects_empty_verified for a in self.arrays)

    def _written_line(self) -> str:
        """``3 arrays, 1 group, 372 objects (735 chunks) written``, and what else it says."""
        text = (
            f"{_count(self.arrays_written, 'array')}, {_count(len(self.groups), 'group')}, "
            f"{_count(self.objects_written, 'object')} "
            f"({_count(self.chunks_written, 'chunk')}) written"
        )
        if self.objects_empty > self.objects_empty_verified:  # not all said by the verified line
            text += f", {self.objects_empty} only the fill value: not stored"
        if self.resumed:
            text += f", {_count(self.tasks_skipped, 'task')} already done"
        return text

    def _verified_line(self) -> str:
        """Say what was verified: ``verified 384 objects (372 read back, 12 only ...) / ...``.

        The objects holding only the fill value are verified without a read (nothing is stored
        for them): the line says how many, so that more verified than written adds up.
        """
        objects = _verified_objects(
            self.objects_verified, self.objects_empty_verified, self.chunks_verified
        )
        return f"verified {objects}, {_count(len(self.mismatches), 'mismatch')}"

    @property
    def arrays_written(self) -> int:
        """Number of arrays written."""
        return len(self.arrays)

    @property
    def ratio(self) -> float | None:
        """Stored size before divided by stored size after (> 1 means smaller now).

        None until the run is complete: part of the output against the whole source is no ratio.
        """
        if not self.complete or not self.bytes_before or not self.bytes_after:
            return None
        return self.bytes_before / self.bytes_after

    @property
    def compression_ratio(self) -> float | None:
        """Logical bytes divided by stored bytes of the output (None until it is complete)."""
        return self.nbytes / self.bytes_after if self.complete and self.bytes_after else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping of the whole report."""
        d = {
            "ok": self.ok,
            "source": self.source,
            "destination": self.destination,
            "compressor": self.compressor,
            "zarr_format": self.zarr_format,
            "arrays_written": self.arrays_written,
            "groups_written": len(self.groups),
            "bytes_before": self.bytes_before,
            "bytes_before_basis": self.bytes_before_basis,
            "bytes_after": self.bytes_after,
            "nbytes": self.nbytes,
            "ratio": self.ratio,
            "compression_ratio": self.compression_ratio,
            "objects_written": self.objects_written,
            "chunks_written": self.chunks_written,
            "objects_verified": self.objects_verified,
            "chunks_verified": self.chunks_verified,
            "objects_empty": self.objects_empty,
            "objects_empty_verified": self.objects_empty_verified,
            "verified": self.verified,
            "mismatches": list(self.mismatches),
            "complete": self.complete,
            "cancelled": self.cancelled,
            "resumed": self.resumed,
            "tasks_total": self.tasks_total,
            "tasks_skipped": self.tasks_skipped,
            "tasks_rewritten": self.tasks_rewritten,
            "backup": self.backup,
            "duration": self.duration,
            "max_error": self.max_error,
            "verification": self.verification,
            "notes": list(self.notes),
            "validation": self.validation,
            "scheduler": self.scheduler,
            "arrays": [a.to_dict() for a in self.arrays],
            "groups": list(self.groups),
        }
        out: dict[str, Any] = _json_safe(d)
        return out

    def _status(self) -> str:
        if self.cancelled:
            return "CANCELLED (continue with resume)"
        if not self.complete:
            return "INCOMPLETE"
        if self.mismatches:
            return f"FAILED VERIFICATION ({_count(len(self.mismatches), 'problem')})"
        if not self.verified:
            return "OK (not verified)"
        how = self.verification
        return "OK, verified" if how == "exact" else f"OK, verified {how}"

    def done_line(self) -> str:
        """One line on a finished run for status bars: sizes before and after, and the share.

        ``"Done: 12.0 MiB -> 4.1 MiB (34% of the original)"``; the size before is named for
        what it is, as in the report (``"(source chunks read)"``, ``"(source shards read)"``),
        and a run whose source size is unknown says what it wrote. A resumed run with nothing
        left to do says so.
        """
        if self.resumed and self.tasks_skipped >= self.tasks_total:
            return "The output was already complete; checked again"
        after = human_bytes(self.bytes_after)
        before = self.bytes_before
        if before is None:
            return f"Done: {after} written (source size unknown)"
        share = f" ({self.bytes_after / before:.0%} of the original)" if before else ""
        return f"Done: {human_bytes(before)}{self._read_label()} -> {after}{share}"

    def _read_label(self) -> str:
        """Name a size before counted from what the run read: `` (source shards read)``.

        The objects are the source's stored objects: shards of sharded arrays, chunks of the
        others (``chunks and shards`` when the arrays counted have both). Empty when the size
        before is not such a count.
        """
        basis = self.bytes_before_basis
        if basis not in ("chunks", "mixed"):
            return ""
        kinds = {_read_unit(a) for a in self.arrays if a.bytes_before_basis == "chunks"}
        what = " and ".join(sorted(kinds)) or "chunks"
        return f" (source {what} read)" if basis == "chunks" else f" (in part source {what} read)"

    def _stored(self) -> str:
        """Describe the sizes: before -> after when the size before is known, else the output.

        The size before is named for what it is: the source's files, the source chunks (or
        shards) the run read, or (unfinished) a lower bound; "unknown" when nothing was counted.
        """
        logical = f"logical {human_bytes(self.nbytes)}"
        after = human_bytes(self.bytes_after)
        basis = self.bytes_before_basis
        unknown = "; source size unknown" if self.action == "Recompress" else ""
        if not self.complete:  # part of the output: no ratio against the whole source
            if basis == "partial":  # what was read so far: the source holds at least that
                least = human_bytes(self.bytes_before)
                return f"stored {after} so far ({logical}; source at least {least}, not all read)"
            if self.bytes_before is None:
                return f"stored {after} so far ({logical}{unknown})"
            before = human_bytes(self.bytes_before) + self._read_label()
            return f"stored {before} -> {after} so far ({logical})"
        if self.bytes_before:
            # the share of the size before, as the done line says it (not a second "ratio"
            # next to the compression ratio: logical size / stored size)
            share = f"{self.bytes_after / self.bytes_before:.0%} of the original"
            before = human_bytes(self.bytes_before) + self._read_label()
            return f"stored {before} -> {after} ({share}; {logical})"
        made = self.compression_ratio
        tail = logical + (unknown if self.bytes_before is None else "")
        return f"stored {after} (" + (
            f"compression ratio {made:.2f}x; {tail})" if made else f"{tail})"
        )

    def __str__(self) -> str:
        lines = [
            f"{self.action} {self.source} -> {self.destination}: {self._status()}",
            f"  compressor {self.compressor}, Zarr v{self.zarr_format}, scheduler {self.scheduler}",
            f"  {self._written_line()}",
            f"  {self._stored()}",
            f"  {self._verified_line()}",
            f"  took {self.duration:.1f} s",
        ]
        if self.max_error is not None:
            lines.append(f"  lossy: largest absolute error {self.max_error:.6g}")
        if self.backup:
            lines.append(f"  original kept as backup: {self.backup}")
        if self.validation:
            lines.append(f"  OME-NGFF validation: {self.validation}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        for m in self.mismatches[:20]:
            lines.append(f"  mismatch: {m}")
        if len(self.mismatches) > 20:
            lines.append(f"  ... and {len(self.mismatches) - 20} more mismatches")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        has_source = self.action == "Recompress"
        rows = "".join(
            f"<tr><td><code>{e(a.path or '/')}</code></td><td>{e(str(a.shape))}</td>"
            f"<td>{e(a.dtype)}</td><td>{e(str(a.chunks))}</td><td>{e(str(a.shards))}</td>"
            f"<td>{e(_before_cell(a, has_source))}</td><td>{human_bytes(a.bytes_after)}</td>"
            f"<td>{a.objects_written}</td><td>{a.objects_empty}</td>"
            f"<td>{e(_array_verified(a))}</td>"
            f"<td>{len(a.mismatches)}</td></tr>"
            for a in self.arrays
        )
        colour = "green" if self.ok else "red"
        extra = ""
        if self.backup:
            extra += f"<p>Original kept as backup: <code>{e(self.backup)}</code></p>"
        if self.mismatches:
            items = "".join(f"<li>{e(m)}</li>" for m in self.mismatches[:50])
            extra += f"<ul>{items}</ul>"
        return (
            f"<div><p><b>{e(self.action)}</b> <code>{e(self.source)}</code> &rarr; "
            f"<code>{e(self.destination)}</code>: "
            f"<b style='color:{colour}'>{e(self._status())}</b></p>"
            f"<p>{e(self.compressor)}, Zarr v{self.zarr_format}; "
            f"{e(self._stored()).replace('-&gt;', '&rarr;')}; {self.duration:.1f} s</p>"
            f"<p>{e(self._written_line())}; {e(self._verified_line())}</p>"
            "<table><tr><th>array</th><th>shape</th><th>dtype</th><th>chunks</th>"
            "<th>shards</th><th>before</th><th>after</th><th>objects written</th>"
            "<th>only the fill value (not stored)</th>"
            f"<th>verified</th><th>mismatches</th></tr>{rows}</table>{extra}</div>"
        )


def _count(n: int, word: str) -> str:
    """``1 array``, ``2 arrays``, ``2 mismatches``."""
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("ch") else "s")


def _verified_objects(objects: int, empty: int, chunks: int) -> str:
    """Count what was verified: ``384 objects (372 read back, 12 only ...) / 735 chunks``.

    The objects holding only the fill value are verified without a read (nothing is stored for
    them): said apart, so that more verified than written adds up.
    """
    text = _count(objects, "object")
    if empty:
        text += f" ({objects - empty} read back, {empty} only the fill value: not stored)"
    return f"{text} / {_count(chunks, 'chunk')}"


def _array_verified(a: ArrayResult) -> str:
    """Say what was verified of *a*, in the words of the report's verified line."""
    return _verified_objects(a.objects_verified, a.objects_empty_verified, a.chunks_verified)


def _read_unit(a: ArrayResult) -> str:
    """Name what the run read of *a*'s source for its size before: ``shards`` or ``chunks``."""
    return "shards" if a.source_shards is not None else "chunks"


def _before_cell(a: ArrayResult, has_source: bool) -> str:
    """Describe an array's stored size before as known: ``at least`` when only part was read."""
    if a.bytes_before is None:
        return "unknown" if has_source else "?"
    size = human_bytes(a.bytes_before)
    if a.bytes_before_basis == "partial":
        return f"at least {size} (read so far)"
    if a.bytes_before_basis == "chunks":
        return f"{size} ({_read_unit(a)} read)"
    return size
