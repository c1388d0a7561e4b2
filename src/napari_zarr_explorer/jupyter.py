"""The explorer in a notebook: ``nze.explore(url)`` shows the store as interactive widgets.

The tree, the node panels, the chunk map (drawn as an image with its legend) and the estimate
and recompress forms with a progress bar, built from ipywidgets and the magicgui forms of
:mod:`napari_zarr_explorer.forms` (drawn by magicgui's ipywidgets backend). Nothing beyond
ipywidgets is needed in the browser. Importing this module imports ipywidgets; importing
``napari_zarr_explorer`` does not.
"""

from __future__ import annotations

import contextlib
import html
import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_zarr_explorer._html import STATE_COLORS, human_bytes, plural
from napari_zarr_explorer._tree import NodeView, build_nodes, short_kind
from napari_zarr_explorer.errors import error_message, redact_urls, shown_url
from napari_zarr_explorer.store import parse_location

if TYPE_CHECKING:  # pragma: no cover
    from napari_zarr_explorer.chunks import ChunkMap
    from napari_zarr_explorer.forms import ChunkMapForm, OpenForm, RecompressForm
    from napari_zarr_explorer.report import StoreReport

__all__ = ["NotebookExplorer", "explore", "png_of_states"]

# the Recompress button's tooltip while an estimate runs (the Recompress dock's words)
_WAIT_FOR_ESTIMATE = "Wait for the estimate to end, or Cancel it"


@contextlib.contextmanager
def _ipywidgets_backend() -> Iterator[None]:
    """Build magicgui widgets with its ipywidgets backend, then restore the previous backend."""
    from magicgui.application import Application, use_app

    previous = Application._instance  # magicgui keeps its current backend here
    use_app("ipynb")
    try:
        yield
    finally:
        Application._instance = previous


def png_of_states(state: np.ndarray, *, max_px: int = 280) -> bytes:
    """Draw a 2-D grid of chunk states as a PNG, one square per cell, with grid lines.

    Parameters
    ----------
    state
        Chunk states (see :mod:`napari_zarr_explorer.chunks`), 1-D or 2-D.
    max_px
        Longest side of the picture.
    """
    grid = np.atleast_2d(np.asarray(state))
    rows, cols = grid.shape[-2], grid.shape[-1]
    cell = max(1, min(32, max_px // max(rows, cols, 1)))
    palette = np.zeros((256, 3), dtype=np.uint8)
    for value, color in STATE_COLORS.items():
        palette[value] = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    rgb = palette[grid.astype(np.uint8)]
    image = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    if cell >= 6:  # white lines between chunks
        image[::cell, :, :] = 255
        image[:, ::cell, :] = 255
    return _png(image)


def _png(rgb: np.ndarray) -> bytes:
    """Encode an ``(h, w, 3)`` uint8 image as PNG (no imaging library needed)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _legend(cmap: ChunkMap) -> str:
    counts = {
        0: ("missing", cmap.chunks_missing),
        1: ("present", cmap.chunks_present),
        2: ("corrupt", cmap.chunks_corrupt),
        3: ("unknown", cmap.chunks_unknown),
    }
    items = "".join(
        f"<span style='display:inline-block;width:11px;height:11px;background:"
        f"{STATE_COLORS[k]};margin:0 4px 0 10px;vertical-align:middle'></span>"
        f"{name} {n}"
        for k, (name, n) in counts.items()
    )
    return f"<div style='font-size:12px'>{items}</div>"


def _error_html(exc: BaseException) -> str:
    """Show *exc* as the docks do (:func:`~napari_zarr_explorer.errors.error_message`), in red."""
    return f"<span style='color:#c62828'>{_esc(error_message(exc))}</span>"


def _background(work: Callable[[], None], name: str, *, wait: bool) -> threading.Thread:
    """Run *work* on a daemon thread named *name*, so that the kernel stays free.

    With *wait*, return once it has ended.
    """
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    if wait:
        thread.join()
    return thread


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _rows(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td style='padding-right:10px;color:#777'>{_esc(k)}</td><td>{_esc(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:12px'>{cells}</table>"


class NotebookExplorer:
    """An interactive view of one store in a notebook (see :func:`explore`).

    Attributes
    ----------
    widget
        The ipywidgets box shown in the notebook.
    tree
        The hierarchy (an ``ipywidgets.Select``; its value is the selected node's path).
    open_form, chunk_form, recompress_form
        The magicgui forms, as in the napari docks.
    chunk_image, chunk_legend, chunk_summary
        The chunk map picture, its legend and its summary (its progress while it is made, or
        why it failed).
    cmap
        The chunk map shown (a :class:`~napari_zarr_explorer.chunks.ChunkMap`), or None
        (while a map is made, or when it failed).
    progress
        The progress bar of runs.
    estimate_view
        The estimate: its progress while it samples, then its table (or why it failed).
    estimate_report
        The last estimate (a :class:`~napari_zarr_explorer.estimate.RunEstimate`), or None
        (while an estimate is made, or when it failed).
    recompress_report
        The report of the last run, or None.

    Chunk maps, estimates and runs are made on threads of their own, as the docks make them in
    the background: a click returns at once, and the kernel stays free for the next cell and for
    **Cancel**. :meth:`wait` waits for them.
    """

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        import ipywidgets as widgets

        from napari_zarr_explorer.forms import ChunkMapForm, OpenForm, RecompressForm

        self.storage_options = storage_options
        self.url: str | None = None
        self.report: StoreReport | None = None
        self.nodes: dict[str, NodeView] = {}
        self.cmap: ChunkMap | None = None
        self.estimate_report: Any = None
        self.recompress_report: Any = None
        self.error: str | None = None
        self._cancel = threading.Event()  # the run's
        self._thread: threading.Thread | None = None
        self._estimate_cancel = threading.Event()
        self._estimate_thread: threading.Thread | None = None
        # what is going on (set before a thread starts, cleared by the thread as it ends),
        # and the lock under which the buttons and the views follow it
        self._running = False
        self._estimating = False
        # reentrant: a widget value set under it calls the user's observers, which may call
        # cancel() or map_chunks() in turn (on the same thread)
        self._lock = threading.RLock()
        # the estimate's: another node selected makes the estimate going stale (it stops and
        # shows nothing)
        self._estimate_generation = 0
        # the chunk map's: a map asked for replaces the one going (older generations are
        # cancelled and show nothing)
        self._map_cancel = threading.Event()
        self._map_threads: list[threading.Thread] = []
        self._map_generation = 0
        self._mapping = False
        self._map_key: tuple[str, str] | None = None  # (store, array) of the last map asked
        # the node shown, (store, path): another one drops the map of the one left
        self._shown_node: tuple[str | None, str] | None = None
        self._showing = False  # a node is being shown: its Level list is set, not chosen

        with _ipywidgets_backend():
            self.open_form: OpenForm = OpenForm()
            self.chunk_form: ChunkMapForm = ChunkMapForm()
            self.recompress_form: RecompressForm = RecompressForm()
        self._run_tip = str(self.recompress_form.run_button.tooltip or "")
        self.status = widgets.HTML()
        self.tree = widgets.Select(options=[], rows=14, layout=widgets.Layout(width="100%"))
        self.panels = {
            name: widgets.HTML() for name in ("Array", "Codecs", "Attributes", "OME", "Problems")
        }
        self.tabs = widgets.Tab(children=list(self.panels.values()))
        self.tabs.titles = tuple(self.panels)
        self.chunk_image = widgets.Image(format="png", layout=widgets.Layout(max_width="300px"))
        self.chunk_legend = widgets.HTML()
        self.chunk_summary = widgets.HTML()
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="", layout=widgets.Layout(width="100%")
        )
        self.progress_label = widgets.HTML()
        self.estimate_view = widgets.HTML()
        self.report_view = widgets.HTML()
        chunk_box = widgets.VBox(
            [self.chunk_form.native, self.chunk_image, self.chunk_legend, self.chunk_summary]
        )
        recompress_box = widgets.VBox(
            [
                self.recompress_form.native,
                self.progress,
                self.progress_label,
                self.estimate_view,
                self.report_view,
            ]
        )
        right = widgets.Tab(children=[chunk_box, recompress_box])
        right.titles = ("Chunk map", "Recompress")
        left = widgets.VBox([self.open_form.native, self.status, self.tree, self.tabs])
        left.layout = widgets.Layout(width="50%", min_width="360px")
        right.layout = widgets.Layout(width="50%", min_width="360px")
        self.widget = widgets.HBox([left, right], layout=widgets.Layout(width="100%"))

        self.open_form.open_button.changed.connect(lambda *_: self.open(self._typed()))
        self.tree.observe(self._on_tree, names="value")
        self.chunk_form.compute_button.changed.connect(lambda *_: self.map_chunks())
        self.chunk_form.level.changed.connect(lambda *_: self._on_level())
        self.chunk_form.cancel_button.changed.connect(lambda *_: self.cancel_map())
        self.recompress_form.estimate_button.changed.connect(lambda *_: self.estimate())
        self.recompress_form.run_button.changed.connect(lambda *_: self.run())
        self.recompress_form.cancel_button.changed.connect(lambda *_: self.cancel())
        self.open(url)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _typed(self) -> str:
        return str(self.open_form.location.value).strip()

    # ------------------------------------------------------------------ store and tree
    def open(self, url: str) -> bool:
        """Show the store at *url*; on failure the status says why. Return True when shown."""
        from napari_zarr_explorer.errors import ExplorerError
        from napari_zarr_explorer.report import inspect

        self.open_form.put(location=str(url))
        try:
            location = parse_location(url, self.storage_options)
            report = inspect(location)
        except (ExplorerError, OSError, ValueError) as exc:
            return self._failed(error_message(exc))
        # inspect() raises when no node has metadata, so a report has nodes; a root without
        # metadata of its own (an implicit root) is missing from them, its children are shown
        root = next((n for n in report.nodes if n.path == report.path), None)
        if root is not None and root.kind == "error":  # an error node always says why
            return self._failed(str([*root.errors, *report.errors][0]))
        self.error = None
        self.url = location.url
        self.report = report
        self.nodes = build_nodes(report)
        options = []
        for path, node in self.nodes.items():
            depth = 0 if path == report.path else path.count("/") + 1 - report.path.count("/")
            name = location.name if path == report.path else node.name
            shape = "\u00d7".join(str(v) for v in node.shape) if node.shape else ""
            size = human_bytes(node.stored) if node.stored is not None else ""
            indent = "\u00a0\u00a0\u00a0" * depth  # kept by the browser, unlike spaces
            label = f"{indent}{name}  [{short_kind(node)}]  {shape} {node.dtype or ''} {size}"
            options.append((label.rstrip(), path))
        self.tree.options = options
        n_arrays = len(report.arrays)
        self.status.value = (
            f"<b>{_esc(shown_url(self.url))}</b>: {len(report.nodes)} nodes, {n_arrays} arrays, "
            + (
                "stored size unknown"
                if report.bytes_stored is None
                else f"{_esc(human_bytes(report.bytes_stored))} stored"
            )
        )
        self.recompress_form.suggest(output=_default_output(self.url))
        self.select(report.path if root is not None else next(iter(self.nodes)))
        return True

    def _failed(self, message: str) -> bool:
        self.error = message
        self.status.value = f"<span style='color:#c62828'>Could not read: {_esc(message)}</span>"
        return False

    def select(self, path: str) -> None:
        """Select the node at *path* (as a click in the tree does)."""
        if path not in self.nodes:
            raise KeyError(f"no node {path!r} in {shown_url(self.url or '')}")
        if self.tree.value == path:
            self._show(path)
        else:
            self.tree.value = path

    @property
    def selected_path(self) -> str | None:
        """Store-relative path of the selected node."""
        value = self.tree.value
        return None if value is None else str(value)

    def _on_tree(self, change: Any) -> None:
        if change.get("new") is not None:
            self._show(str(change["new"]))

    def _show(self, path: str) -> None:
        node = self.nodes[path]
        report = node.report
        levels = self._levels(node)
        follow = False
        if self._shown_node != (self.url, path):
            self._shown_node = (self.url, path)
            follow = self._leave_map(levels)
            self._leave_estimate()
        self.panels["Array"].value = (
            report._repr_html_() if hasattr(report, "_repr_html_") else _esc(report)
        )
        codecs = getattr(report, "codecs", ())
        self.panels["Codecs"].value = (
            "<ol style='font-size:12px'>"
            + "".join(
                f"<li><b>{_esc(c.name)}</b> ({_esc(c.role)}) {_esc(c.short)}</li>" for c in codecs
            )
            + "</ol>"
            if codecs
            else "<i>Select an array to see its codec pipeline.</i>"
        )
        attributes = getattr(report, "attributes", {}) or {}
        self.panels["Attributes"].value = (
            "<pre style='font-size:11px;max-height:260px;overflow:auto'>"
            + _esc(json.dumps(_jsonable(attributes), indent=1)[:20000])
            + "</pre>"
        )
        ome = getattr(report, "ome", None)
        self.panels["OME"].value = (
            _rows(
                [
                    ("Kind", ome.kind),
                    ("Version", ome.version or "unknown"),
                    ("Levels", ", ".join(lv.path for lv in ome.levels) or "-"),
                    ("Channels", ", ".join(str(c.get("label", "")) for c in ome.channels) or "-"),
                ]
            )
            if ome is not None
            else "<i>No OME-NGFF metadata on this node.</i>"
        )
        problems = [*getattr(report, "errors", ()), *getattr(report, "warnings", ())]
        self.panels["Problems"].value = (
            "".join(f"<div style='color:#b26a00'>{_esc(p)}</div>" for p in problems)
            or "<i>No problems on this node.</i>"
        )
        self._showing = True  # no map for a Level the program sets
        try:
            self.chunk_form.set_levels(levels)
        finally:
            self._showing = False
        if follow:  # the map shown (or being made) was of the node left: this node's instead
            self.map_chunks()
        if node.shape:
            from napari_zarr_explorer.forms import shape_text
            from napari_zarr_explorer.recompress import suggest_layout

            self.recompress_form.suggest(chunks=shape_text(suggest_layout(node.shape)[0]))
            # the shards follow the chunks shown (the user's own, or those just suggested)
            self.recompress_form.set_source_shape(node.shape)

    def _levels(self, node: NodeView) -> list[str]:
        if node.report.kind == "array":
            return [node.path]
        ome = getattr(node.report, "ome", None)
        if ome is not None and ome.levels:
            return ["/".join(p for p in (node.path, lv.path) if p) for lv in ome.levels]
        return []

    def _on_level(self) -> None:
        if not self._showing and (self.cmap is not None or self._mapping):
            self.map_chunks()

    def _leave_map(self, levels: list[str]) -> bool:
        """Drop the map of the node left, unless it is the map of the node shown now.

        As the Chunk map dock cancels the map of the layer left: the map going stops and shows
        nothing, the map shown goes away. *levels* are the arrays of the node shown now; return
        True when a map was shown or being made (the node shown now is then mapped), False
        when there was none or it is this node's own (its level 0: an image and its first
        level).
        """
        with self._lock:
            following = self._mapping or self.cmap is not None
            if following and levels and self._map_key == (self.url, levels[0]):
                return False
            self._drop_map()
            return following

    def _leave_estimate(self) -> None:
        """Stop the estimate of the node left: it ends without showing anything.

        As the Recompress dock stops the estimate of the source left, the estimate's table and
        summary are never drawn under another node. Until it has stopped, Estimate and
        Recompress stay off (one thing at a time).
        """
        with self._lock:
            if self._estimating:
                self._estimate_cancel.set()
                self._estimate_generation += 1
                self.estimate_view.value = ""

    def _drop_map(self) -> None:
        """Stop the map going and show none (call with :attr:`_lock` held).

        A map going ends without showing anything (a newer generation is current).
        """
        self._map_cancel.set()
        self._map_generation += 1
        self._mapping = False
        self._map_key = None
        self.cmap = None
        self.chunk_image.value = b""
        self.chunk_legend.value = ""
        self.chunk_summary.value = ""
        self._update_map_buttons()

    # ------------------------------------------------------------------ chunk map
    def _update_map_buttons(self) -> None:
        """Map chunks while no map is made, Cancel while one is (call with :attr:`_lock` held)."""
        self.chunk_form.compute_button.enabled = not self._mapping
        self.chunk_form.cancel_button.enabled = self._mapping

    def map_chunks(self, *, wait: bool = False) -> ChunkMap | None:
        """Compute and draw the chunk map of the selected array or image level.

        The map is made on a thread of its own, as the Chunk map dock makes it: the view says
        how far it is, and **Cancel** (:meth:`cancel_map`) stops it (the chunks not reached are
        drawn as unknown and the view starts with "Chunk map cancelled."). A map asked for
        while one is made (another Level chosen) replaces it: the one going stops and shows
        nothing. While a map is shown or made, selecting another node maps that node, as the
        dock maps the layer selected: the map of the node left is never drawn over it.

        Parameters
        ----------
        wait
            Block until the map is made and return it.

        Returns
        -------
        ChunkMap or None
            With ``wait=True``, the map (kept in :attr:`cmap`); None when there is no store or
            nothing to map, or the map failed (the view says why). Always None without
            ``wait``.
        """
        from napari_zarr_explorer.chunks import chunk_map

        with self._lock:
            path = self.selected_path
            if self.url is None or path is None:
                return None
            levels = self._levels(self.nodes[path])
            if not levels:
                # the map going, or shown, is of a node no longer selected: it stops, or goes
                self._drop_map()
                self.chunk_summary.value = "<i>Select an array or an image to map its chunks.</i>"
                return None
            level = int(self.chunk_form.level.value or 0)
            target = levels[min(level, len(levels) - 1)]
            url, verify = self.url, bool(self.chunk_form.verify.value)
            self._map_cancel.set()  # a map going is replaced: it stops and shows nothing
            cancel = self._map_cancel = threading.Event()
            self._map_generation += 1
            generation = self._map_generation
            self.cmap = None
            self._mapping = True
            self._map_key = (url, target)
            self._update_map_buttons()
            self.chunk_image.value = b""
            self.chunk_legend.value = ""
            what = f"/{_esc(target)}"
            self.chunk_summary.value = f"<small>Mapping the chunks of {what}...</small>"

        def progress(done: int, total: int, message: str) -> None:
            with self._lock:
                # a cancel's word stays until the map ends; a map replaced says nothing
                if generation == self._map_generation and not cancel.is_set():
                    self.chunk_summary.value = (
                        f"<small>Mapping the chunks of {what}: {_esc(message)}, {done} of "
                        f"{total}...</small>"
                    )

        def work() -> None:
            cmap = None
            error: BaseException | None = None
            try:
                cmap = chunk_map(
                    url,
                    target,
                    verify=verify,
                    storage_options=self.storage_options,
                    progress=progress,
                    cancel=cancel,
                )
            except Exception as exc:
                error = exc
            finally:
                with self._lock:
                    if generation == self._map_generation:
                        if cmap is not None:
                            self._draw_map(cmap, target, verify=verify)
                        elif error is not None:
                            self.chunk_summary.value = (
                                "<span style='color:#c62828'>Could not map the chunks. "
                                f"{_esc(error_message(error))}</span>"
                            )
                        self._mapping = False
                        self._update_map_buttons()

        thread = _background(work, "nze-chunk-map", wait=wait)
        self._map_threads = [t for t in self._map_threads if t.is_alive()] + [thread]
        return self.cmap if wait else None

    def _draw_map(self, cmap: ChunkMap, target: str, *, verify: bool) -> None:
        """Show *cmap*: its picture, legend and summary (call with :attr:`_lock` held).

        The summary says whether the map was verified (:meth:`ChunkMap.verified_text`, as the
        command line and the map's HTML say it); a map made without **Verify** says so.
        """
        self.cmap = cmap
        blocks, factor = cmap.aggregated(96)
        self.chunk_image.value = png_of_states(blocks)
        self.chunk_legend.value = _legend(cmap)
        grid = "\u00d7".join(str(g) for g in cmap.grid_shape)
        note = (
            f" (blocks of {'x'.join(map(str, factor))} chunks)"
            if any(f > 1 for f in factor)
            else ""
        )
        stored = cmap.bytes_stored
        size = "stored size unknown" if stored is None else f"{human_bytes(stored)} stored"
        head = (
            "<div><b>Chunk map cancelled:</b> the chunks not reached are unknown.</div>"
            if cmap.cancelled
            else ""
        )
        warnings = "".join(
            f"<div style='color:#b26a00'>{_esc(redact_urls(w))}</div>" for w in cmap.warnings
        )
        verified = (
            cmap.verified_text()
            if cmap.verified or verify
            else "no (listing only; tick Verify to decode)"
        )
        self.chunk_summary.value = (
            f"{head}<div style='font-size:12px'>/{_esc(target)}: {grid} chunks{_esc(note)}, "
            f"{_esc(size)}</div><div style='font-size:12px'>Verified: {_esc(verified)}</div>"
            f"{warnings}"
        )

    def cancel_map(self) -> None:
        """Stop the chunk map being made (the chunks not reached are drawn as unknown)."""
        with self._lock:
            if self._mapping:
                self._map_cancel.set()
                self.chunk_summary.value = "<small>Cancelling the chunk map...</small>"

    # ------------------------------------------------------------------ estimate and recompress
    def _source(self) -> str:
        assert self.url is not None
        path = self.selected_path or ""
        return parse_location(self.url).child(path).url if path else self.url

    def _progress(self, *args: Any) -> None:
        event = args[0] if args else None
        done = getattr(event, "objects_done", None)
        total = getattr(event, "objects_total", None)
        if done is None and len(args) >= 2:
            done, total = args[0], args[1]
        with self._lock:
            if total:
                self.progress.max = int(total)
                self.progress.value = int(done or 0)
            phase = getattr(event, "phase", "")
            # "Cancelling..." stays while the running tasks finish (as in the dock)
            if phase and done is not None and not self._cancel.is_set():
                self.progress_label.value = f"<small>{_esc(phase)}: {done}/{total}</small>"

    def _update_buttons(self) -> None:
        """Enable the buttons as the Recompress dock does (call with :attr:`_lock` held).

        One thing at a time: an estimate or a run, and Cancel while either goes. A run waits
        for the estimate to end (or to be cancelled), and its button's tooltip says so.
        """
        form = self.recompress_form
        busy = self._estimating or self._running
        form.estimate_button.enabled = not busy
        form.run_button.enabled = not busy
        form.run_button.tooltip = _WAIT_FOR_ESTIMATE if self._estimating else self._run_tip
        form.cancel_button.enabled = busy

    def estimate(self, *, wait: bool = False) -> Any:
        """Estimate the chosen encoding and others on sampled chunks of the whole run.

        Every array a recompression of the selected node writes (each level of an image, its
        labels; up to :data:`~napari_zarr_explorer.estimate.ESTIMATE_ARRAYS`) is sampled at
        the chunks and shards the run gives it, as the Recompress dock does, on a thread of its
        own: the view says how many arrays are sampled, and **Cancel** (:meth:`cancel`) stops
        at the chunk being read (the figures are projected from the chunks sampled, the
        arrays not reached at the compression ratio of those sampled, and the view says how
        much was sampled). The view then
        shows the :class:`~napari_zarr_explorer.estimate.RunEstimate` (kept in
        :attr:`estimate_report`), with a warning when the chosen encoding is projected to
        write more than the source stores now.

        Parameters
        ----------
        wait
            Block until the estimate ends and return it.

        Returns
        -------
        RunEstimate or None
            With ``wait=True``, the estimate; None when there is no store, an estimate or a
            run is going, or the estimate failed (the view says why). Always None without
            ``wait``.
        """
        from napari_zarr_explorer.estimate import estimate_run

        with self._lock:
            if self.url is None or self._estimating or self._running:
                return None
            try:
                candidates = self.recompress_form.candidates()
                plan_kwargs = self.recompress_form.plan_kwargs()
            except Exception as exc:
                self.estimate_view.value = _error_html(exc)
                return None
            url, path, source = self.url, self.selected_path or "", self._source()
            sample = int(self.recompress_form.sample.value)
            cancel = self._estimate_cancel = threading.Event()
            self._estimate_generation += 1
            generation = self._estimate_generation
            self.estimate_report = None
            self._estimating = True
            self._update_buttons()
            what = _esc(shown_url(source))
            self.estimate_view.value = f"<small>Estimating {what} on sampled chunks...</small>"

        def progress(done: int, total: int) -> None:
            with self._lock:
                # a cancel's word stays until the estimate ends; a stale one says nothing
                if not cancel.is_set() and generation == self._estimate_generation:
                    self.estimate_view.value = (
                        f"<small>Estimating {what} on sampled chunks: {done} of "
                        f"{_esc(plural(total, 'array'))} sampled...</small>"
                    )

        def work() -> None:
            run = None
            shown = ""
            try:
                run = estimate_run(
                    url,
                    path,
                    source,
                    candidates,
                    plan_kwargs,
                    sample,
                    cancel,
                    storage_options=self.storage_options,
                    progress=progress,
                )
                shown = run._repr_html_()
            except Exception as exc:
                shown = _error_html(exc)
            finally:
                with self._lock:
                    # the estimate of a node no longer selected is never drawn under the one
                    # selected now
                    if generation == self._estimate_generation:
                        head = ""
                        if cancel.is_set() and run is None:  # cancelled, then failed
                            head = "<div><b>Estimate cancelled.</b></div>"
                        elif cancel.is_set() and run is not None and not run.cancelled:
                            # every chunk was read before the cancel
                            head = (
                                "<div><b>The estimate finished before the cancel took "
                                "effect.</b></div>"
                            )
                        # a cancelled estimate says itself, first, how much it sampled
                        self.estimate_report = run
                        self.estimate_view.value = head + shown
                    self._estimating = False
                    self._update_buttons()

        self._estimate_thread = _background(work, "nze-estimate", wait=wait)
        return self.estimate_report if wait else None

    def run(self, *, wait: bool = False) -> Any:
        """Recompress the selected node into the form's Output, in a thread with progress.

        As in the Recompress dock, a run waits for the estimate going to end (or to be
        cancelled): **Recompress** is off meanwhile.

        Parameters
        ----------
        wait
            Block until the run ends and return its report.

        Returns
        -------
        RecompressReport or None
            With ``wait=True``, the report (kept in :attr:`recompress_report`); None when there
            is no store, an estimate or a run is going, or the run failed (the view says why).
            Always None without ``wait``.
        """
        from napari_zarr_explorer.recompress import recompress

        with self._lock:
            if self.url is None or self._running or self._estimating:
                return None
            destination = str(self.recompress_form.output.value).strip()
            try:
                kwargs = self.recompress_form.run_kwargs()
            except Exception as exc:
                self.progress_label.value = _error_html(exc)
                return None
            source = self._source()
            self.recompress_report = None
            cancel = self._cancel = threading.Event()
            self._running = True
            self._update_buttons()
            self.progress.value = 0
            self.progress_label.value = f"<small>Recompressing {_esc(shown_url(source))}...</small>"

        def work() -> None:
            report = None
            shown = ""
            try:
                report = recompress(
                    source, destination, progress=self._progress, cancel=cancel, **kwargs
                )
            except Exception as exc:
                shown = _error_html(exc)
            else:
                self.report_view.value = report._repr_html_()
                shown = (
                    "<small>Cancelled; continue with Resume ticked.</small>"
                    if report.cancelled
                    else f"<small>{_esc(report.done_line())}.</small>"
                )
            finally:
                with self._lock:
                    self.recompress_report = report
                    if shown:
                        self.progress_label.value = shown
                    self._running = False
                    self._update_buttons()

        self._thread = _background(work, "nze-recompress", wait=wait)
        return self.recompress_report if wait else None

    def cancel(self) -> None:
        """Stop the estimate (the arrays not sampled yet are projected) and the run (resumable).

        The Recompress form's **Cancel**; the chunk map has its own (:meth:`cancel_map`).
        """
        with self._lock:
            if self._estimating:
                self._estimate_cancel.set()
                self.estimate_view.value = (
                    "<small>Cancelling the estimate: the chunk being read finishes, then it "
                    "stops...</small>"
                )
            if self._running:
                self._cancel.set()
                self.progress_label.value = "<small>Cancelling...</small>"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the chunk map, the estimate and the run going (if any) end.

        Parameters
        ----------
        timeout
            The most seconds to wait for each (None: no limit).

        Returns
        -------
        bool
            True when none is going any more.
        """
        threads = [*self._map_threads, self._estimate_thread, self._thread]
        for thread in threads:
            if thread is not None:
                thread.join(timeout)
        return not any(t is not None and t.is_alive() for t in threads)


def _jsonable(value: Any) -> Any:
    from napari_zarr_explorer.codecs import jsonable

    return jsonable(value)


def _default_output(url: str) -> str:
    from napari_zarr_explorer.recompress import default_output

    try:
        return default_output(url)
    except Exception:
        return ""


def explore(url: str, *, storage_options: dict[str, Any] | None = None) -> NotebookExplorer:
    """Explore a Zarr / OME-Zarr store in a notebook: tree, panels, chunk map, recompress.

    Parameters
    ----------
    url
        Local path or URL (``http(s)://``, ``s3://``, ``gs://``) of the store.
    storage_options
        Options for a remote store.

    Returns
    -------
    NotebookExplorer
        Shown as an interactive widget when it is the last value of a cell. Needs ipywidgets
        (``pip install "napari-zarr-explorer[jupyter]"``).
    """
    return NotebookExplorer(url, storage_options=storage_options)
