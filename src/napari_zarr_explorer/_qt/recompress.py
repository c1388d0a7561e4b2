"""The Recompress dock: estimate, then rewrite the selected node with new codecs and layout.

A thin view of :func:`napari_zarr_explorer.estimate.estimate` and
:func:`napari_zarr_explorer.recompress.recompress`, run in worker threads with napari progress
and a cancel button. It acts on the node selected in the Explorer dock (or, without it, on the
selected layer's node).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, Signal  # type: ignore[attr-defined]
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_zarr_explorer._qt._common import (
    Task,
    add_layer_data,
    format_bytes,
    notify_error,
    notify_info,
    unwrap,
)
from napari_zarr_explorer._qt._icons import icon
from napari_zarr_explorer._qt._provenance import is_overlay, provenance_of

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["COMPRESSORS", "RecompressWidget"]

# compressor -> (levels (min, max, default) or None, shuffles)
COMPRESSORS: dict[str, tuple[tuple[int, int, int] | None, bool]] = {
    "zstd": ((1, 22, 3), False),
    "blosc-zstd": ((0, 9, 5), True),
    "blosc-lz4": ((0, 9, 5), True),
    "blosc-lz4hc": ((0, 9, 5), True),
    "gzip": ((0, 9, 6), False),
    "none": (None, False),
}
_ALTERNATIVES = ("zstd:3", "blosc-zstd:5", "blosc-lz4:5", "gzip:6")


def _shape_text(shape: Any) -> str:
    return ",".join(str(int(s)) for s in shape) if shape else ""


def _parse_shape(text: str, what: str) -> tuple[int, ...] | str | None:
    from napari_zarr_explorer.errors import ExplorerError

    text = text.strip().lower()
    if not text or text == "keep":
        return None
    if text == "none":
        return "none"
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ExplorerError(
            f"{what} {text!r} is not a list of integers.", hint="Write e.g. 1,1,256,256."
        ) from None
    return values


class RecompressWidget(QWidget):
    """Rewrite a dataset with another compressor, chunk and shard shape or Zarr format.

    Parameters
    ----------
    napari_viewer
        The viewer whose Explorer selection (or selected layer) is the source.
    """

    finished = Signal(object)
    """Emitted with the :class:`~napari_zarr_explorer.recompress.RecompressReport`."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.source_url: str | None = None  # store of the source node
        self.source_path: str = ""
        self.level0_shape: tuple[int, ...] | None = None
        self.estimate_report: Any = None
        self.report: Any = None
        self._tasks: list[Task] = []
        self._run_task: Task | None = None
        self._explorer: Any = None
        self.setObjectName("napari-zarr-explorer recompress")
        self.setMinimumWidth(360)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setSpacing(4)
        self.source_label = QLabel("Select a node in the Explorer, or a layer.")
        self.source_label.setWordWrap(True)
        form.addRow("Source", self.source_label)
        dst_row = QHBoxLayout()
        self.destination_edit = QLineEdit()
        self.destination_edit.setPlaceholderText("new .zarr folder (or s3://, gs:// URL)")
        self.destination_button = QToolButton()
        self.destination_button.setIcon(icon("browse"))
        self.destination_button.setToolTip("Choose where to write")
        dst_row.addWidget(self.destination_edit, 1)
        dst_row.addWidget(self.destination_button)
        form.addRow("Output", dst_row)

        codec_row = QHBoxLayout()
        self.compressor_combo = QComboBox()
        for name in COMPRESSORS:
            self.compressor_combo.addItem(name, name)
        self.level_spin = QSpinBox()
        self.level_spin.setToolTip("Compression level")
        self.shuffle_combo = QComboBox()
        for value, label in (
            ("auto", "auto shuffle"),
            ("none", "no shuffle"),
            ("byte", "byte shuffle"),
            ("bit", "bit shuffle"),
        ):
            self.shuffle_combo.addItem(label, value)
        codec_row.addWidget(self.compressor_combo, 1)
        codec_row.addWidget(self.level_spin)
        codec_row.addWidget(self.shuffle_combo, 1)
        form.addRow("Compressor", codec_row)
        self.chunks_edit = QLineEdit()
        self.chunks_edit.setPlaceholderText("keep")
        self.chunks_edit.setToolTip(
            "Chunk shape for the full rank, e.g. 1,1,256,256 (clipped to each level); empty keeps"
        )
        form.addRow("Chunks", self.chunks_edit)
        self.shards_edit = QLineEdit()
        self.shards_edit.setPlaceholderText("keep")
        self.shards_edit.setToolTip(
            "Shard shape (Zarr v3), e.g. 1,1,2048,2048; 'none' for no shards; empty keeps"
        )
        form.addRow("Shards", self.shards_edit)
        self.format_combo = QComboBox()
        self.format_combo.addItem("Zarr v3 (OME-NGFF 0.5)", 3)
        self.format_combo.addItem("Zarr v2 (OME-NGFF 0.4)", 2)
        form.addRow("Format", self.format_combo)
        options = QHBoxLayout()
        self.verify_box = QCheckBox("Verify")
        self.verify_box.setChecked(True)
        self.verify_box.setToolTip("Read every written shard back and compare it with the source")
        self.overwrite_box = QCheckBox("Overwrite")
        self.overwrite_box.setToolTip("Delete an existing output first")
        self.resume_box = QCheckBox("Resume")
        self.resume_box.setToolTip("Continue an interrupted run into the same output")
        for box in (self.verify_box, self.overwrite_box, self.resume_box):
            options.addWidget(box)
        options.addStretch(1)
        form.addRow("", options)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.estimate_button = QPushButton("Estimate")
        self.estimate_button.setToolTip(
            "Encode a sample of chunks with this and other compressors; nothing is written"
        )
        self.run_button = QPushButton("Recompress")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        for button in (self.estimate_button, self.run_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        self.estimate_table = QTableWidget(0, 5)
        self.estimate_table.setHorizontalHeaderLabels(
            ["Encoding", "Ratio", "Projected", "Encode MB/s", "Decode MB/s"]
        )
        vertical = self.estimate_table.verticalHeader()
        assert vertical is not None
        vertical.setVisible(False)
        self.estimate_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.estimate_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.estimate_table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.estimate_table.setMaximumHeight(150)
        self.estimate_table.setMinimumHeight(60)
        layout.addWidget(self.estimate_table)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        layout.addWidget(self.estimate_label)

        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        layout.addWidget(self.progress_label)
        self.report_view = QTextBrowser()
        self.report_view.setMinimumHeight(40)
        layout.addWidget(self.report_view, 1)
        self.open_result_button = QPushButton("Open the result next to the original")
        self.open_result_button.setEnabled(False)
        layout.addWidget(self.open_result_button)

        self.compressor_combo.currentIndexChanged.connect(self._on_compressor)
        self.format_combo.currentIndexChanged.connect(self._on_format)
        self.destination_button.clicked.connect(self._browse)
        self.estimate_button.clicked.connect(self.estimate)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_result_button.clicked.connect(self.open_result)
        self.estimate_table.cellDoubleClicked.connect(self._use_estimate_row)
        self._on_compressor()

        self._connections: list[tuple[Any, Any]] = [
            (napari_viewer.layers.selection.events.active, self._on_active_layer),
        ]
        for emitter, callback in self._connections:
            emitter.connect(callback)
        self.destroyed.connect(self._disconnect_model)
        self._follow_explorer()
        if self.source_url is None:
            self._on_active_layer()
        self._update_enabled()

    # ------------------------------------------------------------------ source
    def _disconnect_model(self, *_: Any) -> None:
        for emitter, callback in self._connections:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                emitter.disconnect(callback)
        self._connections = []

    def closeEvent(self, event: Any) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._disconnect_model()
        super().closeEvent(event)

    def _follow_explorer(self) -> None:
        from napari_zarr_explorer._qt.explorer import explorer_for

        explorer = explorer_for(unwrap(self.viewer))
        if explorer is None or explorer is self._explorer:
            return
        self._explorer = explorer
        explorer.node_selected.connect(self._on_explorer_node)
        if explorer.url is not None and explorer.selected_path is not None:
            self._on_explorer_node(explorer.selected_path)

    def _on_explorer_node(self, path: str) -> None:
        explorer = self._explorer
        if explorer is None or explorer.url is None:
            return
        node = explorer.nodes.get(path)
        shape = node.shape if node is not None else None
        self.set_source(explorer.url, path, shape)

    def _on_active_layer(self, event: Any = None) -> None:
        self._follow_explorer()
        if self._explorer is not None and self._explorer.url is not None:
            return  # the Explorer's selection leads (it follows the layer list itself)
        layer = unwrap(self.viewer.layers.selection.active)
        if layer is None or is_overlay(layer):
            return
        prov = provenance_of(layer)
        if prov is None or any("{" in lv for lv in prov.levels):
            return
        self.set_source(prov.url, prov.path, None)

    def set_source(self, url: str, path: str = "", shape: tuple[int, ...] | None = None) -> None:
        """Use the node at *path* of the store *url* as the source."""
        from napari_zarr_explorer.store import parse_location

        try:
            location = parse_location(url)
        except Exception as exc:
            notify_error(exc)
            return
        self.source_url = location.url
        self.source_path = path.strip("/")
        self.level0_shape = shape
        self.source_label.setText(self.source)
        self.source_label.setToolTip(self.source)
        if location.is_local:
            base = Path(location.child(self.source_path).url if self.source_path else location.url)
            stem = base.name
            for suffix in (".ome.zarr", ".zarr"):
                if stem.endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            ext = ".ome.zarr" if base.name.endswith(".ome.zarr") else ".zarr"
            self.destination_edit.setText(str(base.parent / f"{stem}-recompressed{ext}"))
        if shape:
            from napari_zarr_explorer.recompress import suggest_layout

            chunks, shards = suggest_layout(shape)
            self.chunks_edit.setText(_shape_text(chunks))
            self.shards_edit.setText(_shape_text(shards) if self.zarr_format == 3 else "")
        self.estimate_table.setRowCount(0)
        self.estimate_label.setText("")
        self._update_enabled()

    @property
    def source(self) -> str:
        """The source node as a path or URL."""
        if self.source_url is None:
            return ""
        if not self.source_path:
            return self.source_url
        from napari_zarr_explorer.store import parse_location

        return parse_location(self.source_url).child(self.source_path).url

    # ------------------------------------------------------------------ choices
    @property
    def zarr_format(self) -> int:
        """2 or 3."""
        return int(self.format_combo.currentData() or 3)

    def compressor_text(self) -> str:
        """Return the chosen compressor as a string (``"zstd:5"``)."""
        name = str(self.compressor_combo.currentData())
        levels, _ = COMPRESSORS[name]
        return f"{name}:{self.level_spin.value()}" if levels is not None else name

    def shuffle(self) -> str | None:
        """Return the chosen blosc shuffle, or None for automatic."""
        value = str(self.shuffle_combo.currentData())
        return None if value == "auto" or not self.shuffle_combo.isEnabled() else value

    def set_compressor(self, text: str) -> None:
        """Choose a compressor given as ``name[:level]``."""
        name, _, level = text.partition(":")
        index = self.compressor_combo.findData(name)
        if index < 0:
            raise ValueError(f"unknown compressor {name!r}")
        self.compressor_combo.setCurrentIndex(index)
        if level:
            self.level_spin.setValue(int(level))

    def _on_compressor(self, *_: Any) -> None:
        name = str(self.compressor_combo.currentData())
        levels, shuffles = COMPRESSORS[name]
        self.level_spin.setEnabled(levels is not None)
        if levels is not None:
            self.level_spin.setRange(levels[0], levels[1])
            self.level_spin.setValue(levels[2])
        self.shuffle_combo.setEnabled(shuffles)

    def _on_format(self, *_: Any) -> None:
        v3 = self.zarr_format == 3
        self.shards_edit.setEnabled(v3)
        if not v3:
            self.shards_edit.setText("")
        elif self.level0_shape and not self.shards_edit.text():
            from napari_zarr_explorer.recompress import suggest_layout

            self.shards_edit.setText(_shape_text(suggest_layout(self.level0_shape)[1]))

    def _browse(self) -> None:
        folder = QFileDialog.getSaveFileName(
            self, "Write the recompressed data to", self.destination_edit.text()
        )[0]
        if folder:
            self.destination_edit.setText(folder)

    def _use_estimate_row(self, row: int, column: int) -> None:
        item = self.estimate_table.item(row, 0)
        if item is None:
            return
        compressor = str(item.data(Qt.ItemDataRole.UserRole) or "")
        with contextlib.suppress(ValueError):
            self.set_compressor(compressor)

    @property
    def busy(self) -> bool:
        """True while estimating or recompressing."""
        return any(t.running for t in self._tasks)

    def _update_enabled(self) -> None:
        running = self._run_task is not None and self._run_task.running
        has_source = self.source_url is not None
        self.estimate_button.setEnabled(has_source and not self.busy)
        self.run_button.setEnabled(has_source and not running)
        self.cancel_button.setEnabled(self.busy)

    def _start(self, func: Any, desc: str, on_result: Any, on_error: Any = None) -> Task:
        # a cancelled run still reports what it did (and how to resume)
        task = Task(
            func,
            desc=desc,
            parent=self,
            on_result=on_result,
            on_error=on_error,
            deliver_after_cancel=True,
        )
        task.finished.connect(lambda: self._finished_task(task))
        self._tasks.append(task)
        task.start()
        self._update_enabled()
        return task

    def _finished_task(self, task: Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        if task is self._run_task:
            self._run_task = None
        self._update_enabled()

    def cancel(self) -> None:
        """Stop the estimate or the run (a cancelled run can be resumed)."""
        for task in list(self._tasks):
            task.cancel_event.set()
        if self._run_task is not None:
            self.progress_label.setText("Cancelling: running tasks finish, then the run stops...")

    # ------------------------------------------------------------------ estimate
    def _layout_args(self) -> tuple[Any, Any]:
        chunks = _parse_shape(self.chunks_edit.text(), "Chunks")
        shards: Any = None
        if self.zarr_format == 3:
            shards = _parse_shape(self.shards_edit.text(), "Shards")
        else:
            shards = "none"
        if chunks == "none":
            chunks = None
        return chunks, shards

    def estimate(self) -> None:
        """Estimate the chosen encoding and a few others on sampled chunks (in the background)."""
        if self.source_url is None:
            return
        try:
            chunks, shards = self._layout_args()
        except Exception as exc:
            notify_error(exc)
            return
        chosen = self.compressor_text()
        names = [chosen] + [c for c in _ALTERNATIVES if c != chosen]
        shuffle = self.shuffle()
        candidates = [
            {
                "compressor": c,
                "shuffle": shuffle if c == chosen else None,
                "chunks": chunks,
                "shards": shards,
            }
            for c in names
        ]
        url, path = self.source_url, self.source_path

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.estimate import estimate

            return estimate(url, _estimate_path(url, path), candidates)

        self.estimate_label.setText("Estimating on sampled chunks...")
        self._start(work, f"Estimating {path or url}", self._show_estimate, self._estimate_failed)

    def _estimate_failed(self, exc: BaseException) -> None:
        self.estimate_label.setText("The estimate failed (see the notification).")
        notify_error(exc)

    def _show_estimate(self, report: Any) -> None:
        self.estimate_report = report
        self.estimate_table.setRowCount(0)
        for cand in report.candidates:
            row = self.estimate_table.rowCount()
            self.estimate_table.insertRow(row)
            first = QTableWidgetItem(cand.compressor)
            first.setData(Qt.ItemDataRole.UserRole, cand.compressor)
            first.setToolTip("; ".join(cand.problems) or cand.label)
            cells = [
                first,
                QTableWidgetItem(f"{cand.ratio:.2f}x" if cand.ratio else "-"),
                QTableWidgetItem(format_bytes(cand.projected_bytes)),
                QTableWidgetItem(_speed(cand.encode_mbps)),
                QTableWidgetItem(_speed(cand.decode_mbps)),
            ]
            for col, item in enumerate(cells):
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.estimate_table.setItem(row, col, item)
        now = f"now {format_bytes(report.bytes_stored)}"
        if report.ratio:
            now += f" (ratio {report.ratio:.2f}x)"
        best = report.best
        text = f"{report.path or '/'}: {now}; sampled {report.sample} chunks"
        if report.candidates:
            first = report.candidates[0]
            layout = first.label[len(first.compressor) :].strip()
            text += f" ({layout})" if layout else ""
        text += "."
        if best is not None:
            text += f" Smallest: {best.compressor}, {format_bytes(best.projected_bytes)}."
        text += " Double-click a row to use it."
        self.estimate_label.setText(text)

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        """Recompress the source into the output (in the background, with progress)."""
        if self.source_url is None:
            return
        destination = self.destination_edit.text().strip()
        if not destination:
            notify_error("Choose where to write the recompressed data (Output).")
            return
        try:
            chunks, shards = self._layout_args()
        except Exception as exc:
            notify_error(exc)
            return
        source = self.source
        kwargs: dict[str, Any] = {
            "compressor": self.compressor_text(),
            "shuffle": self.shuffle(),
            "chunks": chunks,
            "shards": shards,
            "zarr_format": self.zarr_format,
            "verify": self.verify_box.isChecked(),
            "overwrite": self.overwrite_box.isChecked(),
            "resume": self.resume_box.isChecked(),
        }

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.recompress import recompress

            return recompress(source, destination, progress=progress, cancel=cancel, **kwargs)

        self.report = None
        self.open_result_button.setEnabled(False)
        self.report_view.setPlainText("")
        self.progress_label.setText(f"Recompressing {source} into {destination}...")
        task = self._start(
            work, f"Recompressing {Path(source).name}", self._show_report, self._run_failed
        )
        task.progressed.connect(self._on_progress)
        self._run_task = task
        self._update_enabled()

    def _on_progress(self, update: tuple[int, int, str, Any]) -> None:
        event = update[3]
        if event is None or not hasattr(event, "bytes_done"):
            return
        eta = getattr(event, "eta", None)
        left = f", {eta:.0f} s left" if eta is not None and math.isfinite(eta) else ""
        self.progress_label.setText(
            f"{event.phase}: {event.objects_done}/{event.objects_total} objects, "
            f"{format_bytes(event.bytes_done)} of {format_bytes(event.bytes_total)}, "
            f"{format_bytes(event.rate)}/s{left}"
        )

    def _run_failed(self, exc: BaseException) -> None:
        self.progress_label.setText(
            "The run failed (see the notification); the output is marked "
            "incomplete and can be resumed."
        )
        notify_error(exc)

    def _show_report(self, report: Any) -> None:
        self.report = report
        self.report_view.setPlainText(str(report))
        if report.cancelled:
            self.progress_label.setText("Cancelled. Tick Resume and run again to continue.")
        elif report.ok:
            before, after = report.bytes_before, report.bytes_after
            share = f" ({after / before:.0%} of the original)" if before else ""
            self.progress_label.setText(
                f"Done: {format_bytes(before)} -> {format_bytes(after)}{share}"
                + (", verified." if report.verified else ".")
            )
            notify_info(f"Recompressed into {report.destination}.")
        else:
            self.progress_label.setText("Finished with problems: see the report.")
            notify_error("; ".join(report.mismatches[:3]) or "The recompression did not verify.")
        self.open_result_button.setEnabled(bool(report.complete))
        self.finished.emit(report)

    def open_result(self) -> None:
        """Open the output as layers next to the original, for comparison."""
        report = self.report
        if report is None:
            return
        destination = report.destination

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.layers import open_layers

            return open_layers(destination)

        def done(layer_data: list[Any]) -> None:
            renamed = []
            for data, kwargs, layer_type in layer_data:
                kwargs = dict(kwargs)
                name = kwargs.get("name")
                if isinstance(name, list | tuple):
                    kwargs["name"] = [f"{n} (recompressed)" for n in name]
                elif name:
                    kwargs["name"] = f"{name} (recompressed)"
                renamed.append((data, kwargs, layer_type))
            add_layer_data(self.viewer, renamed)

        self._start(work, f"Opening {destination}", done)


def _estimate_path(url: str, path: str) -> str:
    """Return the array to sample: the node, level 0 of an image, or the first array below."""
    from napari_zarr_explorer.store import open_url, read_node

    store, where = open_url(url)
    node = read_node(store, path, where=where)
    if node is None or node.kind == "array":
        return path
    from napari_zarr_explorer.ome.model import parse_ome

    ome = parse_ome(node.attributes, zarr_format=node.zarr_format)
    if ome is not None and ome.multiscales:
        return path  # estimate() follows an image group to its level 0
    from napari_zarr_explorer.report import inspect

    report = inspect(url, path=path, max_nodes=200)
    for array in report.arrays:
        return str(array.path)
    return path


def _speed(value: float | None) -> str:
    return f"{value:.0f}" if value else "-"
