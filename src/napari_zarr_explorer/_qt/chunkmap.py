"""The Chunk map dock: which chunks are stored, missing or corrupt, drawn over the image itself.

The per-chunk map is computed by :func:`napari_zarr_explorer.chunks.chunk_map` in a worker
thread. It is shown as a small image layer with one pixel per chunk, scaled to the chunk size in
world units so that it lines up with the image at any zoom (cheap for millions of chunks), and
the chunk and shard boundaries near the view are drawn as lines when they are far enough apart
on screen to be seen.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QRectF, Qt, QTimer
from qtpy.QtGui import QColor, QLinearGradient, QPainter
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_zarr_explorer._qt._common import (
    ElidedLabel,
    Task,
    camera_of,
    canvas_size,
    dock_words,
    error_text,
    format_bytes,
    notify_error,
    tabify_on_show,
    theme_colors,
    unwrap,
)
from napari_zarr_explorer._qt._provenance import OVERLAY_KEY, Provenance, is_overlay, provenance_of
from napari_zarr_explorer.errors import redact_urls, shown_url
from napari_zarr_explorer.forms import COLOR_MODES as _FORM_MODES
from napari_zarr_explorer.forms import ChunkMapForm

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_zarr_explorer.chunks import ChunkMap

__all__ = ["COLOR_MODES", "STATE_COLORS", "ChunkMapWidget", "LevelGeometry"]

COLOR_MODES = tuple(_FORM_MODES)
# state value -> (name, RGBA); missing is see-through so the image shows where nothing is stored
STATE_COLORS: dict[int, tuple[str, tuple[float, float, float, float]]] = {
    0: ("missing", (0.55, 0.55, 0.60, 0.85)),
    1: ("present", (0.20, 0.75, 0.35, 0.30)),
    2: ("corrupt", (1.00, 0.10, 0.10, 1.0)),
    3: ("unknown", (0.95, 0.75, 0.10, 0.85)),
}
_MAX_LINES_PER_AXIS = 400
_SWATCH = 14  # side of a legend's colour swatch, in pixels
_MIN_LINE_SPACING_PX = 6.0


@dataclass(frozen=True, slots=True)
class LevelGeometry:
    """How one pyramid level of a layer maps to world coordinates.

    Attributes
    ----------
    layer_axes
        For each axis of the stored array, the layer's axis showing it (None for the channel
        axis that napari split into separate layers).
    fixed
        ``{array axis: index}`` for the axes the layer does not show (the channel).
    scale, translate
        Per layer axis: world = scale * level pixel coordinate + translate (napari's 2-D
        convention for pyramid levels: a level-k pixel centre sits at ``k``-times-downsampled
        level-0 pixel centres).
    """

    layer_axes: tuple[int | None, ...]
    fixed: dict[int, int]
    scale: tuple[float, ...]
    translate: tuple[float, ...]

    def chunk_layer_transform(self, chunk_shape: Sequence[int]) -> tuple[list[float], list[float]]:
        """Scale and translate of a layer with one pixel per chunk, along the layer's axes."""
        per_layer_chunk = {
            la: chunk_shape[a] for a, la in enumerate(self.layer_axes) if la is not None
        }
        scale, translate = [], []
        for la, (s, t) in enumerate(zip(self.scale, self.translate, strict=True)):
            c = per_layer_chunk.get(la, 1)
            scale.append(s * c)
            translate.append(t + s * (c / 2 - 0.5))
        return scale, translate

    def world_bounds(
        self, chunk_shape: Sequence[int], index: Sequence[int]
    ) -> tuple[list[float], list[float]]:
        """World coordinates of the outer edges of chunk *index* (array axes), per layer axis."""
        lo = [0.0] * len(self.scale)
        hi = [0.0] * len(self.scale)
        for a, la in enumerate(self.layer_axes):
            if la is None:
                continue
            c = chunk_shape[a]
            s, t = self.scale[la], self.translate[la]
            lo[la] = t + s * (index[a] * c - 0.5)
            hi[la] = t + s * ((index[a] + 1) * c - 0.5)
        return lo, hi


def geometry_for(layer: Any, prov: Provenance, level: int, array_ndim: int) -> LevelGeometry:
    """Work out the :class:`LevelGeometry` of *level* of *layer*."""
    ndim = int(layer.ndim)
    layer_axes: list[int | None] = []
    fixed: dict[int, int] = {}
    if array_ndim == ndim + 1 and prov.channel_axis is not None:
        la = 0
        for a in range(array_ndim):
            if a == prov.channel_axis:
                layer_axes.append(None)
                fixed[a] = int(prov.channel or 0)
            else:
                layer_axes.append(la)
                la += 1
    elif array_ndim == ndim:
        layer_axes = list(range(ndim))
    else:
        raise ValueError(
            f"the layer has {ndim} axes but the array of level {level} has {array_ndim}"
        )
    scale = np.asarray(layer.scale, dtype=float)
    translate = np.asarray(layer.translate, dtype=float)
    if getattr(layer, "multiscale", False) and level > 0:
        factors = np.asarray(layer.downsample_factors[level], dtype=float)
        scale = scale * factors
    return LevelGeometry(
        layer_axes=tuple(layer_axes),
        fixed=fixed,
        scale=tuple(float(s) for s in scale),
        translate=tuple(float(t) for t in translate),
    )


def colour_values(cmap: ChunkMap, mode: str) -> tuple[np.ndarray, float, float]:
    """Return the per-chunk values shown for *mode* and their (low, high) range for the legend.

    For ``state`` the values are the states. For ``bytes`` and ``ratio`` the values are
    normalised to ``0.02..1`` for stored chunks and ``0`` (see-through) otherwise.
    """
    from napari_zarr_explorer.chunks import PRESENT

    state = cmap.state
    if mode == "state":
        return state.astype(np.float32), 0.0, 3.0
    present = (state == PRESENT) & (cmap.nbytes > 0)
    if mode == "bytes":
        raw = cmap.nbytes.astype(np.float64)
    else:
        logical = _logical_chunk_bytes(cmap)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(present, logical / np.maximum(cmap.nbytes, 1), 0.0)
    if not present.any():
        return np.zeros(state.shape, np.float32), 0.0, 0.0
    lo, hi = float(raw[present].min()), float(raw[present].max())
    span = hi - lo if hi > lo else 1.0
    norm = np.where(present, 0.02 + 0.98 * (raw - lo) / span, 0.0)
    return norm.astype(np.float32), lo, hi


def _logical_chunk_bytes(cmap: ChunkMap) -> np.ndarray:
    """Bytes in memory of each chunk (edge chunks are smaller), in chunk-grid shape."""
    extents = []
    for n, c, g in zip(cmap.shape, cmap.chunk_shape, cmap.grid_shape, strict=True):
        e = np.full(g, c, dtype=np.float64)
        if g:
            e[-1] = n - c * (g - 1)
        extents.append(e)
    out = np.ones(cmap.grid_shape, dtype=np.float64) * max(cmap.itemsize, 1)
    for axis, e in enumerate(extents):
        shape = [1] * len(extents)
        shape[axis] = len(e)
        out = out * e.reshape(shape)
    return out


def _state_colormap() -> Any:
    from napari.utils.colormaps import Colormap

    colors = [STATE_COLORS[i][1] for i in range(4)]
    return Colormap(
        colors=colors,
        controls=np.linspace(0, 1, 5),
        interpolation="zero",
        name="zarr chunk states",
    )


def _heat_colormap() -> Any:
    from napari.utils.colormaps import Colormap, ensure_colormap

    base = ensure_colormap("viridis")
    samples = base.map(np.linspace(0, 1, 32))
    colors = np.vstack([[0, 0, 0, 0], samples])
    controls = np.concatenate([[0.0], np.linspace(0.01, 1, 32)])
    return Colormap(colors=colors, controls=controls, name="zarr chunk heat")


class _Legend(QWidget):
    """Colour swatches (states) or a gradient bar with its range (bytes, ratio)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = "state"
        self.low = 0.0
        self.high = 0.0
        self.counts: dict[int, int] = {}
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_state(self, mode: str, low: float, high: float, counts: dict[int, int]) -> None:
        self.mode, self.low, self.high, self.counts = mode, low, high, counts
        self._fit_height()
        self.update()

    def _swatches(self, width: int) -> list[tuple[int, int, int, str]]:
        """``(x, y, state, label)`` of the state swatches, in rows that fit *width*."""
        metrics = self.fontMetrics()
        out = []
        x, y = 2, 4
        for k in range(4):
            if k == 3 and not self.counts.get(k):
                continue
            label = f"{STATE_COLORS[k][0]} {self.counts.get(k, 0)}"
            advance = _SWATCH + 4 + metrics.horizontalAdvance(label)
            if x > 2 and x + advance > width:  # the next row rather than cut at the edge
                x, y = 2, y + _SWATCH + 6
            out.append((x, y, k, label))
            x += advance + 16
        return out

    def _fit_height(self) -> None:
        rows = {y for _, y, _, _ in self._swatches(self.width())} if self.mode == "state" else {4}
        self.setMinimumHeight(max(34, max(rows) + _SWATCH + 8))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def text(self) -> str:
        """Return the legend as text (also its tooltip)."""
        if self.mode == "state":
            return ", ".join(
                f"{STATE_COLORS[k][0]}: {self.counts.get(k, 0)}"
                for k in range(4)
                if k < 3 or self.counts.get(k)
            )
        fmt = _format_value(self.mode)
        return f"{_FORM_MODES[self.mode]}: {fmt(self.low)} .. {fmt(self.high)}"

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        try:
            fg = self.palette().windowText().color()
            painter.setPen(fg)
            h = _SWATCH
            if self.mode == "state":
                for x, y, k, label in self._swatches(self.width()):
                    rgba = STATE_COLORS[k][1]
                    painter.fillRect(QRectF(x, y, h, h), QColor.fromRgbF(*rgba[:3], 1.0))
                    painter.drawText(x + h + 4, y + h - 3, label)
            else:
                w = max(self.width() - 4, 10)
                grad = QLinearGradient(2, 0, 2 + w, 0)
                from napari.utils.colormaps import ensure_colormap

                cm = ensure_colormap("viridis")
                for pos in np.linspace(0, 1, 9):
                    r, g, b, _ = cm.map(np.array([pos]))[0]
                    grad.setColorAt(float(pos), QColor.fromRgbF(float(r), float(g), float(b), 1.0))
                painter.fillRect(QRectF(2, 2, w, h), grad)
                fmt = _format_value(self.mode)
                painter.drawText(2, 2 + h + 13, fmt(self.low))
                hi = fmt(self.high)
                painter.drawText(
                    2 + w - painter.fontMetrics().horizontalAdvance(hi), 2 + h + 13, hi
                )
        finally:
            painter.end()
        self.setToolTip(self.text())


def _format_value(mode: str) -> Any:
    if mode == "bytes":
        return format_bytes
    return lambda v: f"{v:.2f}x"


class ChunkMapWidget(QWidget):
    """Chunk and shard grid of the selected layer, coloured by state, bytes or ratio.

    Parameters
    ----------
    napari_viewer
        The viewer whose selected layer is mapped.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.source: Any = None  # the image layer being mapped
        self.provenance: Provenance | None = None
        self.cmap: ChunkMap | None = None
        self.level_geometry: LevelGeometry | None = None
        self.overlay: Any = None  # Image layer, one pixel per chunk
        self.grid_layer: Any = None  # Shapes layer, chunk/shard lines and the view's extent
        self.task: Task | None = None
        self.touched: tuple[tuple[int, int], ...] | None = None  # per array axis (lo, hi)
        self._recent_maps: dict[tuple[str, str, bool], ChunkMap] = {}
        self._map_verify = False  # whether the map shown was made with Verify ticked

        self.setObjectName("napari-zarr-explorer chunk map")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layer_row = QHBoxLayout()
        layer_row.addWidget(QLabel("Layer"))
        self.layer_label = ElidedLabel("Select an image layer opened from a Zarr store.")
        self.layer_label.setTextFormat(Qt.TextFormat.PlainText)
        layer_row.addWidget(self.layer_label, 1)
        layout.addLayout(layer_row)
        self.form = ChunkMapForm()
        # the controls never shrink below their size, even when docks stack
        self.form.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.form.native)
        self.level_combo: Any = self.form.level.native
        self.mode_combo: Any = self.form.mode.native
        self.chunk_lines_box: Any = self.form.chunk_lines.native
        self.shard_lines_box: Any = self.form.shard_lines.native
        self.verify_box: Any = self.form.verify.native
        self.compute_button: Any = self.form.compute_button.native
        self.cancel_button: Any = self.form.cancel_button.native

        self.legend = _Legend()
        layout.addWidget(self.legend)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.view_label = QLabel("")
        self.view_label.setWordWrap(True)
        self.mouse_label = QLabel("")
        self.mouse_label.setWordWrap(True)
        self.mouse_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.summary_label, self.view_label, self.mouse_label):
            label.setTextFormat(Qt.TextFormat.PlainText)  # node names and paths, as typed
            layout.addWidget(label)
        layout.addStretch(1)

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(80)
        self._redraw_timer.timeout.connect(self._update_view)

        self.form.compute_button.clicked.connect(lambda: self.compute())
        self.form.cancel_button.clicked.connect(self.cancel)
        self.form.mode.changed.connect(self._on_mode_changed)
        self.form.level.changed.connect(self._on_level_changed)
        self.form.chunk_lines.changed.connect(self._schedule_redraw)
        self.form.shard_lines.changed.connect(self._schedule_redraw)
        tabify_on_show(self)

        camera = camera_of(napari_viewer)
        self._connections: list[tuple[Any, Any]] = [
            (napari_viewer.layers.selection.events.active, self._on_active_layer),
            (napari_viewer.layers.events.removed, self._on_layer_removed),
            (camera.events.zoom, self._schedule_redraw),
            (camera.events.center, self._schedule_redraw),
            (napari_viewer.dims.events.current_step, self._schedule_redraw),
            (napari_viewer.dims.events.order, self._schedule_redraw),
            (napari_viewer.dims.events.ndisplay, self._schedule_redraw),
        ]
        for emitter, callback in self._connections:
            emitter.connect(callback)
        napari_viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self.destroyed.connect(self._disconnect_model)
        self._update_enabled()
        self.set_layer(napari_viewer.layers.selection.active)

    # ------------------------------------------------------------------ viewer wiring
    def _disconnect_model(self, *_: Any) -> None:
        for emitter, callback in self._connections:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                emitter.disconnect(callback)
        self._connections = []
        if self._on_mouse_move in self.viewer.mouse_move_callbacks:
            self.viewer.mouse_move_callbacks.remove(self._on_mouse_move)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        self._disconnect_model()
        super().closeEvent(event)

    def _on_active_layer(self, event: Any = None) -> None:
        layer = unwrap(self.viewer.layers.selection.active)
        if layer is None or is_overlay(layer) or layer is self.source:
            return
        self.set_layer(layer)

    def _on_layer_removed(self, event: Any) -> None:
        removed = unwrap(event.value)
        if removed is self.overlay:
            self.overlay = None
        elif removed is self.grid_layer:
            self.grid_layer = None
        elif removed is self.source:
            self.cancel()
            self.source = None
            self.provenance = None
            self.cmap = None
            self._remove_overlays()
            self.layer_label.setText("Select an image layer opened from a Zarr store.")
            self.summary_label.setText("")
            self.view_label.setText("")
            self._update_enabled()

    # ------------------------------------------------------------------ source layer and level
    def set_layer(self, layer: Any) -> None:
        """Map *layer* (an image or labels layer opened from a Zarr store)."""
        layer = unwrap(layer)
        prov = provenance_of(layer) if layer is not None else None
        if layer is not None and prov is None:
            if layer is not self.source and not is_overlay(layer):
                self.layer_label.setText(
                    f"{layer.name}: not opened from a Zarr store; select another layer."
                )
            return
        if layer is None or layer is self.source:
            return
        assert prov is not None
        if any("{" in level for level in prov.levels):
            self.layer_label.setText(
                f"{layer.name}: a plate mosaic has no single chunk grid; open a well's field "
                "from the Explorer to map its chunks."
            )
            return
        if prov.channel_axis is not None and prov.channel is None:
            prov = replace(prov, channel=self._channel_index(layer, prov))
        self.cancel()
        self._remove_overlays()
        self.source = layer
        self.provenance = prov
        self.cmap = None
        self.level_geometry = None
        assert prov is not None
        self.layer_label.setText(
            f"{layer.name}  ({shown_url(prov.url)}{'/' + prov.path if prov.path else ''})"
        )
        self.level_combo.blockSignals(True)
        with self.form.level.changed.blocked():
            self.form.set_levels(prov.levels)
        self.level_combo.blockSignals(False)
        self.summary_label.setText("")
        self.view_label.setText("")
        self.mouse_label.setText("")
        self._update_enabled()
        self.compute(reuse=True)

    def _channel_index(self, layer: Any, prov: Provenance) -> int:
        """Which channel a split layer shows: napari adds channel layers in channel order."""
        siblings = []
        for other in self.viewer.layers:
            p = provenance_of(other)
            if (
                p is not None
                and type(other) is type(layer)
                and other.ndim == layer.ndim
                and (p.url, p.path, p.levels) == (prov.url, prov.path, prov.levels)
            ):
                siblings.append(other)
        return siblings.index(layer) if layer in siblings else 0

    @property
    def level(self) -> int:
        """The pyramid level shown."""
        value = self.form.level.value
        return int(value) if value is not None else 0

    @property
    def mode(self) -> str:
        """``"state"``, ``"bytes"`` or ``"ratio"``."""
        return str(self.form.mode.value or "state")

    def set_mode(self, mode: str) -> None:
        """Colour the chunks by *mode* (one of :data:`COLOR_MODES`)."""
        self.form.mode.value = mode

    def set_level(self, level: int) -> None:
        """Map pyramid *level*."""
        self.form.level.value = level

    def _on_level_changed(self, *_: Any) -> None:
        if self.source is not None:
            self.compute(reuse=True)

    def _on_mode_changed(self, *_: Any) -> None:
        self._render_overlay()

    def _update_enabled(self) -> None:
        busy = self.task is not None and self.task.running
        self.form.compute_button.enabled = self.source is not None and not busy
        self.form.cancel_button.enabled = busy

    # ------------------------------------------------------------------ computing
    @property
    def busy(self) -> bool:
        """True while a chunk map is being computed."""
        return self.task is not None and self.task.running

    def compute(self, *, reuse: bool = False) -> None:
        """Compute the chunk map of the current layer and level in a worker thread.

        With *reuse*, a map of the same array computed moments ago (another channel of the
        same image) is shown again instead.
        """
        if self.source is None or self.provenance is None:
            return
        self.cancel()
        prov = self.provenance
        level = self.level
        path = prov.levels[level] if level < len(prov.levels) else prov.path
        verify = bool(self.form.verify.value)
        key = (prov.url, path, verify)
        cached = self._recent_maps.get(key)
        if reuse and cached is not None:
            self._on_map(cached, verify=verify)
            return

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.chunks import chunk_map

            return chunk_map(prov.url, path, verify=verify, progress=progress, cancel=cancel)

        task = Task(
            work,
            desc=f"Chunk map of {path or prov.url}",
            parent=self,
            on_result=functools.partial(self._on_map, verify=verify),
            on_error=self._on_error,
        )
        task.finished.connect(self._on_task_finished)
        self.task = task
        self.summary_label.setText(f"Mapping the chunks of {path or '/'}...")
        task.start()
        self._update_enabled()

    def cancel(self) -> None:
        """Stop the computation in progress, if any."""
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.summary_label.setText("Cancelled.")
        self._update_enabled()

    def _on_task_finished(self) -> None:
        self._update_enabled()

    def _on_error(self, exc: BaseException | str) -> None:
        """Say why the map failed, in the dock as in a notification; show no map meanwhile.

        A map left from before (another level, or before Verify was ticked) would not be the
        one the dock's Layer and Level name.
        """
        message = error_text(exc)
        notify_error(message)
        self._clear_map()
        self.summary_label.setText(f"Could not map the chunks. {message}")

    def _clear_map(self) -> None:
        """Remove the map shown: its layers, legend, totals and the view's and mouse's lines."""
        self.cmap = None
        self.level_geometry = None
        self._remove_overlays()
        self.legend.set_state(self.mode, 0.0, 0.0, {})
        for label in (self.summary_label, self.view_label, self.mouse_label):
            label.setText("")

    def _on_map(self, cmap: ChunkMap, *, verify: bool = False) -> None:
        """Show *cmap*, made with Verify ticked when *verify*."""
        if self.source is None or self.provenance is None:
            return
        if not cmap.cancelled and not cmap.unanswered:  # a map with gaps is asked for again
            self._recent_maps[(self.provenance.url, cmap.path, cmap.verified)] = cmap
            while len(self._recent_maps) > 4:
                self._recent_maps.pop(next(iter(self._recent_maps)))
        try:
            geometry = geometry_for(self.source, self.provenance, self.level, len(cmap.shape))
        except ValueError as exc:
            from napari_zarr_explorer.store.locate import node_where

            at = node_where(cmap.url, cmap.path)
            self._on_error(f"{at}: cannot line the chunks up with the layer: {exc}")
            return
        self.cmap = cmap
        self._map_verify = verify
        self.level_geometry = geometry
        self._render_overlay()
        self._update_summary()
        self._update_view()

    def _update_summary(self) -> None:
        """Say the map's totals and whether it was verified, then its warnings.

        Whether it was verified is said as the notebook and the command line say it
        (:meth:`ChunkMap.verified_text`); a map made without Verify says so.
        """
        cmap = self.cmap
        if cmap is None:
            return
        chunks = "x".join(map(str, cmap.chunk_shape))
        parts = [
            f"{cmap.chunks_total} chunks of {chunks}"
            + (
                f" in {cmap.shards_total} shards of {'x'.join(map(str, cmap.shard_shape))}"
                if cmap.shard_shape is not None
                else ""
            ),
            f"{cmap.chunks_present} present, {cmap.chunks_missing} missing, "
            f"{cmap.chunks_corrupt} corrupt"
            + (f", {cmap.chunks_unknown} unknown" if cmap.chunks_unknown else ""),
        ]
        stored = cmap.bytes_stored
        if stored is None:
            parts.append(f"stored size unknown; {format_bytes(cmap.logical_bytes)} logical")
        else:
            ratio = f", compression ratio {cmap.logical_bytes / stored:.2f}x" if stored else ""
            parts.append(
                f"{format_bytes(stored)} stored of {format_bytes(cmap.logical_bytes)}{ratio}"
            )
        verified = (
            cmap.verified_text()
            if cmap.verified or self._map_verify
            else "no (listing only; tick Verify to decode)"
        )
        parts.append(f"Verified: {verified}")
        if cmap.cancelled:
            parts.append("cancelled: some states are unknown")
        parts.extend(dock_words(redact_urls(w)) for w in cmap.warnings)
        parts.extend(f"corrupt: {k}" for k in cmap.corrupt_keys[:5])
        self.summary_label.setText("\n".join(parts))

    # ------------------------------------------------------------------ drawing
    def _overlay_values(self) -> tuple[np.ndarray, float, float]:
        assert self.cmap is not None and self.level_geometry is not None
        values, lo, hi = colour_values(self.cmap, self.mode)
        # take the channel shown by the layer and order the axes like the layer's
        sel: list[Any] = [slice(None)] * values.ndim
        for axis, index in self.level_geometry.fixed.items():
            sel[axis] = min(index // self.cmap.chunk_shape[axis], values.shape[axis] - 1)
        return values[tuple(sel)], lo, hi

    def _render_overlay(self) -> None:
        if self.cmap is None or self.level_geometry is None or self.source is None:
            return
        values, lo, hi = self._overlay_values()
        scale, translate = self.level_geometry.chunk_layer_transform(self.cmap.chunk_shape)
        if self.mode == "state":
            colormap, limits = _state_colormap(), (-0.5, 3.5)
        else:
            colormap, limits = _heat_colormap(), (0.0, 1.0)
        name = f"{self.source.name} chunk map"
        if self.overlay is None or self.overlay not in self.viewer.layers:
            from napari.layers import Image

            layer = Image(
                values,
                name=name,
                scale=scale,
                translate=translate,
                affine=self.source.affine,
                units=self.source.units,
                axis_labels=self.source.axis_labels,
                colormap=colormap,
                contrast_limits=limits,
                interpolation2d="nearest",
                opacity=0.6,
                blending="translucent",
                metadata={OVERLAY_KEY: True},
            )
            self.overlay = self._add_overlay_layer(layer)
        else:
            self.overlay.data = values
            self.overlay.scale = scale
            self.overlay.translate = translate
            self.overlay.colormap = colormap
            self.overlay.contrast_limits = limits
        counts = {
            int(k): int(v)
            for k, v in zip(*np.unique(self.cmap.state, return_counts=True), strict=True)
        }
        self.legend.set_state(self.mode, lo, hi, counts)
        self._schedule_redraw()

    def _add_overlay_layer(self, layer: Any) -> Any:
        """Add an overlay above the source layer, keeping the source selected."""
        source = self.source
        self.viewer.add_layer(layer)
        if source is not None and source in self.viewer.layers:
            self.viewer.layers.selection.active = source
        return layer

    def _remove_overlays(self) -> None:
        for attr in ("overlay", "grid_layer"):
            layer = getattr(self, attr)
            setattr(self, attr, None)
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.touched = None

    def _schedule_redraw(self, *_: Any) -> None:
        self._redraw_timer.start()

    # ------------------------------------------------------------------ view extent and lines
    def _array_point(self) -> list[float] | None:
        """Return the current dims position in level pixel coordinates, per array axis."""
        if self.level_geometry is None or self.source is None:
            return None
        world = np.asarray(self.viewer.dims.point, dtype=float)
        offset = len(world) - int(self.source.ndim)
        out: list[float] = []
        for a, la in enumerate(self.level_geometry.layer_axes):
            if la is None:
                out.append(float(self.level_geometry.fixed.get(a, 0)))
                continue
            w = world[offset + la] if offset + la >= 0 else 0.0
            out.append((w - self.level_geometry.translate[la]) / self.level_geometry.scale[la])
        return out

    def visible_chunk_ranges(self) -> tuple[tuple[int, int], ...] | None:
        """Per array axis, the inclusive range of chunk indices the current 2-D view touches."""
        cmap, geo = self.cmap, self.level_geometry
        if cmap is None or geo is None or self.source is None:
            return None
        if self.viewer.dims.ndisplay != 2:
            return None
        camera = camera_of(self.viewer)
        h, w = canvas_size(self.viewer)
        zoom = float(camera.zoom) or 1.0
        center = list(camera.center)[-2:]
        displayed = list(self.viewer.dims.displayed)
        offset = self.viewer.dims.ndim - int(self.source.ndim)
        half = (h / 2 / zoom, w / 2 / zoom)
        point = self._array_point()
        assert point is not None
        ranges: list[tuple[int, int]] = []
        for a, la in enumerate(geo.layer_axes):
            c, g = cmap.chunk_shape[a], cmap.grid_shape[a]
            if la is not None and (offset + la) in displayed:
                k = displayed.index(offset + la)
                lo_w, hi_w = center[k] - half[k], center[k] + half[k]
                s, t = geo.scale[la], geo.translate[la]
                p0, p1 = sorted(((lo_w - t) / s, (hi_w - t) / s))
                i0 = math.floor((p0 + 0.5) / c)
                i1 = math.floor((p1 + 0.5) / c)
                i0, i1 = max(i0, 0), min(i1, g - 1)
                if i1 < i0:
                    return ()
                ranges.append((i0, i1))
            else:
                p = math.floor(point[a] + 0.5)
                i = min(max(p // c, 0), g - 1)
                ranges.append((i, i))
        return tuple(ranges)

    def _update_view(self) -> None:
        cmap, geo = self.cmap, self.level_geometry
        if cmap is None or geo is None:
            return
        ranges = self.visible_chunk_ranges()
        self.touched = ranges
        if self.viewer.dims.ndisplay != 2:
            self.view_label.setText("3-D view: the chunk grid and the view's chunks show in 2-D.")
            self._draw_lines([], [], None)
            return
        if not ranges:
            self.view_label.setText(
                "The view shows no chunk of this array." if ranges == () else ""
            )
            self._draw_lines([], [], None)
            return
        n = math.prod(hi - lo + 1 for lo, hi in ranges)
        sel = tuple(slice(lo, hi + 1) for lo, hi in ranges)
        from napari_zarr_explorer.chunks import CORRUPT, MISSING, PRESENT, UNKNOWN

        sub = cmap.state[sel]
        stored = cmap.nbytes[sel]
        unknown = int((sub == UNKNOWN).sum())
        text = (
            f"View touches {n} chunk{'s' if n != 1 else ''}: "
            f"{int((sub == PRESENT).sum())} present, {int((sub == MISSING).sum())} missing, "
            f"{int((sub == CORRUPT).sum())} corrupt"
            + (f", {unknown} unknown; at least " if unknown else "; ")
            + f"{format_bytes(int(stored[stored > 0].sum()))} to read"
        )
        if cmap.shard_shape is not None:
            per = [s // c for s, c in zip(cmap.shard_shape, cmap.chunk_shape, strict=True)]
            n_shards = math.prod(
                hi // p - lo // p + 1 for (lo, hi), p in zip(ranges, per, strict=True)
            )
            text += f" in {n_shards} shard{'s' if n_shards != 1 else ''}"
        self.view_label.setText(text)
        self._draw_lines(*self._grid_lines(ranges), ranges)

    def _grid_lines(
        self, ranges: tuple[tuple[int, int], ...]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """World-coordinate line segments of the chunk and shard boundaries near the view."""
        cmap, geo = self.cmap, self.level_geometry
        assert cmap is not None and geo is not None and self.source is not None
        displayed = list(self.viewer.dims.displayed)
        offset = self.viewer.dims.ndim - int(self.source.ndim)
        axes = [
            a
            for a, la in enumerate(geo.layer_axes)
            if la is not None and (offset + la) in displayed
        ]
        if len(axes) != 2 or displayed != [self.viewer.dims.ndim - 2, self.viewer.dims.ndim - 1]:
            return [], []
        zoom = float(camera_of(self.viewer).zoom) or 1.0
        ay, ax = axes
        ly, lx = geo.layer_axes[ay], geo.layer_axes[ax]
        assert ly is not None and lx is not None
        sy, sx = geo.scale[ly], geo.scale[lx]
        ty, tx = geo.translate[ly], geo.translate[lx]
        ny, nx = cmap.shape[ay], cmap.shape[ax]
        (y0, y1), (x0, x1) = ranges[ay], ranges[ax]

        def lines_for(cy: int, cx: int) -> list[np.ndarray]:
            if min(abs(sy) * cy, abs(sx) * cx) * zoom < _MIN_LINE_SPACING_PX:
                return []
            # the touched chunks' pixel extent -> cell boundaries inside it, clipped to the array
            py0, py1 = y0 * cmap.chunk_shape[ay], min((y1 + 1) * cmap.chunk_shape[ay], ny)
            px0, px1 = x0 * cmap.chunk_shape[ax], min((x1 + 1) * cmap.chunk_shape[ax], nx)
            ys = [min(j * cy, ny) - 0.5 for j in range(py0 // cy, -(-py1 // cy) + 1)]
            xs = [min(i * cx, nx) - 0.5 for i in range(px0 // cx, -(-px1 // cx) + 1)]
            ys = sorted(set(ys))
            xs = sorted(set(xs))
            if len(ys) > _MAX_LINES_PER_AXIS or len(xs) > _MAX_LINES_PER_AXIS:
                return []
            wy = [ty + sy * y for y in ys]
            wx = [tx + sx * x for x in xs]
            out = [np.array([[y, wx[0]], [y, wx[-1]]]) for y in wy]
            out += [np.array([[wy[0], x], [wy[-1], x]]) for x in wx]
            return out

        chunk_lines: list[np.ndarray] = []
        shard_lines: list[np.ndarray] = []
        if self.form.chunk_lines.value:
            chunk_lines = lines_for(cmap.chunk_shape[ay], cmap.chunk_shape[ax])
        if self.form.shard_lines.value and cmap.shard_shape is not None:
            shard_lines = lines_for(cmap.shard_shape[ay], cmap.shard_shape[ax])
        return chunk_lines, shard_lines

    def _draw_lines(
        self,
        chunk_lines: list[np.ndarray],
        shard_lines: list[np.ndarray],
        ranges: tuple[tuple[int, int], ...] | None,
    ) -> None:
        """Replace the grid layer's shapes (2-D, in world coordinates)."""
        cmap, geo = self.cmap, self.level_geometry
        rect: list[np.ndarray] = []
        if ranges and cmap is not None and geo is not None and self.source is not None:
            displayed = list(self.viewer.dims.displayed)
            offset = self.viewer.dims.ndim - int(self.source.ndim)
            lo_idx = [r[0] for r in ranges]
            hi_idx = [r[1] for r in ranges]
            lo, _ = geo.world_bounds(cmap.chunk_shape, lo_idx)
            _, hi = geo.world_bounds(cmap.chunk_shape, hi_idx)
            layer_disp = [d - offset for d in displayed if d - offset >= 0]
            if len(layer_disp) == 2 and displayed == [
                self.viewer.dims.ndim - 2,
                self.viewer.dims.ndim - 1,
            ]:
                (a, b) = layer_disp
                # clip the rectangle to the array's extent
                rect = [np.array([[lo[a], lo[b]], [hi[a], hi[b]]])]
                rect = [self._clip_to_array(rect[0], a, b)]
        if not (chunk_lines or shard_lines or rect):
            if self.grid_layer is not None:
                self.grid_layer.visible = False
            return
        zoom = float(camera_of(self.viewer).zoom) or 1.0
        colors = theme_colors(self.viewer)
        data = chunk_lines + shard_lines + rect
        types = ["line"] * (len(chunk_lines) + len(shard_lines)) + ["rectangle"] * len(rect)
        edge_colors = (
            [(1.0, 1.0, 1.0, 0.55)] * len(chunk_lines)
            + [(1.0, 0.8, 0.1, 0.95)] * len(shard_lines)
            + [QColor(colors.get("current", "#4560c4")).getRgbF()] * len(rect)
        )
        widths = (
            [1.0 / zoom] * len(chunk_lines)
            + [2.0 / zoom] * len(shard_lines)
            + [2.5 / zoom] * len(rect)
        )
        name = f"{self.source.name} chunk grid" if self.source is not None else "chunk grid"
        if self.grid_layer is None or self.grid_layer not in self.viewer.layers:
            from napari.layers import Shapes

            layer = Shapes(
                data,
                ndim=2,
                units=tuple(self.source.units)[-2:] if self.source is not None else None,
                axis_labels=tuple(self.source.axis_labels)[-2:]
                if self.source is not None
                else None,
                shape_type=types,
                edge_color=edge_colors,
                edge_width=widths,
                face_color=[(0, 0, 0, 0)] * len(data),
                name=name,
                metadata={OVERLAY_KEY: True},
            )
            self.grid_layer = self._add_overlay_layer(layer)
        else:
            layer = self.grid_layer
            layer.visible = True
            layer.selected_data = set()
            layer.data = []
            layer.add(
                data,
                shape_type=types,
                edge_color=edge_colors,
                edge_width=widths,
                face_color=[(0, 0, 0, 0)] * len(data),
            )

    def _clip_to_array(self, rect: np.ndarray, a: int, b: int) -> np.ndarray:
        cmap, geo = self.cmap, self.level_geometry
        assert cmap is not None and geo is not None
        out = rect.copy()
        for col, la in ((0, a), (1, b)):
            axis = geo.layer_axes.index(la)
            s, t = geo.scale[la], geo.translate[la]
            lo, hi = sorted((t - 0.5 * s, t + s * (cmap.shape[axis] - 0.5)))
            out[:, col] = np.clip(out[:, col], lo, hi)
        return out

    # ------------------------------------------------------------------ mouse
    def chunk_info_at(self, world: Sequence[float]) -> str | None:
        """Describe the chunk under the world position *world* (key, shard, bytes, state)."""
        cmap, geo = self.cmap, self.level_geometry
        if cmap is None or geo is None or self.source is None:
            return None
        world = list(world)
        offset = len(world) - int(self.source.ndim)
        index: list[int] = []
        for a, la in enumerate(geo.layer_axes):
            if la is None:
                p = float(geo.fixed.get(a, 0))
            else:
                p = (world[offset + la] - geo.translate[la]) / geo.scale[la]
            pix = math.floor(p + 0.5)
            if not 0 <= pix < cmap.shape[a]:
                return None
            index.append(pix // cmap.chunk_shape[a])
        from napari_zarr_explorer.chunks import STATE_NAMES

        state = STATE_NAMES.get(int(cmap.state[tuple(index)]), "?")
        nbytes = int(cmap.nbytes[tuple(index)])
        key = cmap.key_for(index)
        text = f"chunk {tuple(index)}  key {cmap.path}/{key}"
        if cmap.shard_shape is not None:
            per = [s // c for s, c in zip(cmap.shard_shape, cmap.chunk_shape, strict=True)]
            shard = tuple(i // p for i, p in zip(index, per, strict=True))
            text = f"chunk {tuple(index)} in shard {shard}  key {cmap.path}/{key}"
        size = format_bytes(nbytes) if nbytes >= 0 else "unknown size"
        return f"{text}  ·  {state}, {size}"

    def _on_mouse_move(self, viewer: Any, event: Any) -> None:
        try:
            text = self.chunk_info_at(event.position)
        except RuntimeError:  # the widget is gone
            return
        self.mouse_label.setText(text or "")
