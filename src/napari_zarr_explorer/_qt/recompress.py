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
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from napari_zarr_explorer._qt._common import (
    ElidedLabel,
    Task,
    add_layer_data,
    format_bytes,
    notify_error,
    notify_info,
    notify_warning,
    tabify_on_show,
    unwrap,
)
from napari_zarr_explorer._qt._icons import icon
from napari_zarr_explorer._qt._provenance import is_overlay, provenance_of
from napari_zarr_explorer.forms import COMPRESSORS, RecompressForm, shape_text

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["COMPRESSORS", "RecompressWidget", "gui_words"]

# command-line words in the core's messages, and what the dock calls them
_GUI_WORDS = (
    ("`napari-zarr-explorer recompress ... --resume`", "Recompress with Resume ticked"),
    ("--resume", "Resume"),
    ("--overwrite", "Overwrite"),
    ("--replace", "replace"),
    ("--no-verify", "unticking Verify"),
)


def gui_words(message: str) -> str:
    """Say the check boxes' names where the core's message names command-line flags."""
    for flag, words in _GUI_WORDS:
        message = message.replace(flag, words)
    return message


class RecompressWidget(QWidget):
    """Rewrite a dataset with another compressor, chunk and shard shape or Zarr format.

    The options are a magicgui form (:class:`napari_zarr_explorer.forms.RecompressForm`), the
    same one the Jupyter explorer shows; what the user typed there stays when the selection
    changes.

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
        self._cancelling = False
        self.setObjectName("napari-zarr-explorer recompress")
        tabify_on_show(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        source_row = QHBoxLayout()
        source_title = QLabel("Source")
        self.source_label = ElidedLabel("Select a node in the Explorer, or a layer.")
        source_row.addWidget(source_title)
        source_row.addWidget(self.source_label, 1)
        layout.addLayout(source_row)

        self.form = RecompressForm()
        # the form never shrinks below its fields, even when docks stack
        self.form.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.form.native)
        # the native widgets, for the view's own wiring
        self.destination_edit: Any = self.form.output.native
        self.chunks_edit: Any = self.form.chunks.native
        self.shards_edit: Any = self.form.shards.native
        self.format_combo: Any = self.form.zarr_format.native
        self.compressor_combo: Any = self.form.compressor.native
        self.level_spin: Any = self.form.level.native
        self.shuffle_combo: Any = self.form.shuffle.native
        self.verify_box: Any = self.form.verify.native
        self.overwrite_box: Any = self.form.overwrite.native
        self.resume_box: Any = self.form.resume.native
        self.estimate_button: Any = self.form.estimate_button.native
        self.run_button: Any = self.form.run_button.native
        self.cancel_button: Any = self.form.cancel_button.native
        # a folder chooser next to the output field (Qt only; the form itself stays portable)
        self.destination_button = QToolButton()
        self.destination_button.setIcon(icon("browse"))
        self.destination_button.setToolTip("Choose where to write")
        output_row = self.destination_edit.parentWidget().layout()
        index = output_row.indexOf(self.destination_edit) if output_row is not None else -1
        if output_row is not None and index >= 0 and hasattr(output_row, "getItemPosition"):
            row, _, _, _ = output_row.getItemPosition(index)
            holder = QWidget()
            inner = QHBoxLayout(holder)
            inner.setContentsMargins(0, 0, 0, 0)
            inner.setSpacing(2)
            output_row.removeWidget(self.destination_edit)
            inner.addWidget(self.destination_edit, 1)
            inner.addWidget(self.destination_button)
            output_row.addWidget(holder, row, 1)

        self.estimate_table = QTableWidget(0, 5)
        self.estimate_table.setHorizontalHeaderLabels(
            ["Encoding", "Ratio", "Projected", "Enc MB/s", "Dec MB/s"]
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

        self.form.zarr_format.changed.connect(self._on_format)
        self.destination_button.clicked.connect(self._browse)
        self.form.estimate_button.clicked.connect(self.estimate)
        self.form.run_button.clicked.connect(self.run)
        self.form.cancel_button.clicked.connect(self.cancel)
        self.open_result_button.clicked.connect(self.open_result)
        self.estimate_table.cellDoubleClicked.connect(self._use_estimate_row)

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
        if self.report is not None and explorer.url == _normal(self.report.destination):
            return  # the result of the last run, opened to look at it: keep the source
        if explorer.incomplete:
            # an unfinished output is something to resume or delete, not a source
            if explorer.url != self.source_url:
                self.progress_label.setText(
                    f"{explorer.url} is an unfinished output, so it is not used as the source."
                )
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
        """Use the node at *path* of the store *url* as the source.

        The output, chunks and shards get defaults for it unless the user typed their own.
        """
        from napari_zarr_explorer.recompress import default_output
        from napari_zarr_explorer.store import parse_location

        try:
            location = parse_location(url)
        except Exception as exc:
            notify_error(exc)
            return
        same = (location.url, path.strip("/")) == (self.source_url, self.source_path)
        self.source_url = location.url
        self.source_path = path.strip("/")
        self.level0_shape = shape or self.level0_shape if same else shape
        self.source_label.setText(self.source)
        try:
            output = default_output(self.source)
        except Exception:
            output = ""
        suggestions: dict[str, str] = {"output": output}
        if shape:
            from napari_zarr_explorer.recompress import suggest_layout

            chunks, shards = suggest_layout(shape)
            suggestions["chunks"] = shape_text(chunks)
            suggestions["shards"] = shape_text(shards) if self.zarr_format == 3 else ""
        self.form.suggest(**suggestions)
        if not same:
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
        return int(self.form.zarr_format.value or 3)

    def compressor_text(self) -> str:
        """Return the chosen compressor as a string (``"zstd:5"``)."""
        return self.form.compressor_text()

    def shuffle(self) -> str | None:
        """Return the chosen blosc shuffle, or None for automatic."""
        return self.form.shuffle_value()

    def set_compressor(self, text: str) -> None:
        """Choose an encoding given as a codec spec (``"zstd:5"``, ``"lerc:maxerror=0.01"``)."""
        self.form.set_compressor(text)

    def _on_format(self, *_: Any) -> None:
        if self.zarr_format != 3:
            return
        if self.level0_shape and not str(self.form.shards.value):
            from napari_zarr_explorer.recompress import suggest_layout

            self.form.put(shards=shape_text(suggest_layout(self.level0_shape)[1]))

    def _browse(self) -> None:
        folder = QFileDialog.getSaveFileName(
            self, "Write the recompressed data to", str(self.form.output.value)
        )[0]
        if folder:
            self.form.output.value = folder

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
        self.form.estimate_button.enabled = has_source and not self.busy
        self.form.run_button.enabled = has_source and not running
        self.form.cancel_button.enabled = self.busy

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
            self._cancelling = False
        self._update_enabled()

    def cancel(self) -> None:
        """Stop the estimate or the run (a cancelled run can be resumed)."""
        for task in list(self._tasks):
            task.cancel_event.set()
        if self._run_task is not None:
            self._cancelling = True
            self.progress_label.setText("Cancelling: running tasks finish, then the run stops...")

    # ------------------------------------------------------------------ estimate
    def estimate(self) -> None:
        """Estimate the chosen encoding and a few others on sampled chunks (in the background)."""
        if self.source_url is None:
            return
        try:
            candidates = self.form.candidates()
        except Exception as exc:
            notify_error(exc)
            return
        url, path = self.source_url, self.source_path
        sample = int(self.form.sample.value)

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.estimate import estimate

            return estimate(url, _estimate_path(url, path), candidates, sample=sample)

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
                QTableWidgetItem(f"{cand.projected_ratio:.2f}x" if cand.projected_ratio else "-"),
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
        self.estimate_label.setText(estimate_summary(report) + " Double-click a row to use it.")

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        """Recompress the source into the output (in the background, with progress)."""
        if self.source_url is None:
            return
        destination = str(self.form.output.value).strip()
        if not destination:
            notify_error("Choose where to write the recompressed data (Output).")
            return
        try:
            kwargs = self.form.run_kwargs()
        except Exception as exc:
            notify_error(exc)
            return
        source = self.source

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.recompress import recompress

            return recompress(source, destination, progress=progress, cancel=cancel, **kwargs)

        self.report = None
        self._cancelling = False
        self.open_result_button.setEnabled(False)
        self.report_view.setPlainText("")
        self.progress_label.setText(f"Recompressing {source} into {destination}...")
        task = self._start(
            work,
            f"Recompressing {Path(source).name}",
            self._show_report,
            lambda exc: self._run_failed(exc, destination),
        )
        task.progressed.connect(self._on_progress)
        self._run_task = task
        self._update_enabled()

    def _on_progress(self, update: tuple[int, int, str, Any]) -> None:
        event = update[3]
        if self._cancelling or event is None or not hasattr(event, "bytes_done"):
            return
        eta = getattr(event, "eta", None)
        left = f", {eta:.0f} s left" if eta is not None and math.isfinite(eta) else ""
        self.progress_label.setText(
            f"{event.phase}: {event.objects_done}/{event.objects_total} objects, "
            f"{format_bytes(event.bytes_done)} of {format_bytes(event.bytes_total)}, "
            f"{format_bytes(event.rate)}/s{left}"
        )

    def _run_failed(self, exc: BaseException, destination: str) -> None:
        from napari_zarr_explorer._qt._common import error_message

        state = output_state(destination)
        if state == "incomplete":
            text = (
                "The run stopped (see the notification); the output is marked incomplete: tick "
                "Resume and run again to continue, or Overwrite to start over."
            )
        elif state == "complete":
            text = (
                "Nothing was written (see the notification): the output already exists and is "
                "complete. Choose another Output, or tick Overwrite."
            )
        else:
            text = "Nothing was written (see the notification)."
        self.progress_label.setText(text)
        notify_error(gui_words(error_message(exc)))

    def _show_report(self, report: Any) -> None:
        self.report = report
        self.report_view.setPlainText(gui_words(str(report)))
        if report.cancelled:
            self.progress_label.setText(
                "Cancelled; the output is marked incomplete. Tick Resume and run again to continue."
            )
            notify_warning(f"Recompression cancelled; {report.destination} is incomplete.")
        elif report.ok:
            done = report.done_line()
            how = "" if report.verification == "exact" else f" {report.verification}"
            self.progress_label.setText(done + (f", verified{how}." if report.verified else "."))
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


def estimate_summary(report: Any) -> str:
    """One paragraph about an estimate: the store now, the sample, the smallest candidate."""
    now = f"now {format_bytes(report.bytes_stored)}"
    if report.ratio:
        now += f" (ratio {report.ratio:.2f}x)"
    n = report.chunks_sampled
    text = f"{report.path or '/'}: {now}; sampled {n} chunk{'' if n == 1 else 's'}"
    if report.candidates:
        first = report.candidates[0]
        layout = first.label[len(first.compressor) :].strip()
        text += f" ({layout})" if layout else ""
    text += "."
    best = report.best
    if best is not None:
        text += f" Smallest: {best.compressor}, {format_bytes(best.projected_bytes)}."
    return text


def output_state(destination: str) -> str:
    """``"absent"``, ``"incomplete"`` (marked by an unfinished run) or ``"complete"``."""
    from napari_zarr_explorer.recompress import JOURNAL_NAME, MARKER_KEY
    from napari_zarr_explorer.store import open_url, read_node

    try:
        store, where = open_url(destination)
        node = read_node(store, "", where=where)
    except Exception:
        return "absent"
    if node is None:
        return "absent"
    marker = node.attributes.get(MARKER_KEY)
    if isinstance(marker, dict) and marker.get("incomplete"):
        return "incomplete"
    try:
        from napari_zarr_explorer.store import parse_location

        loc = parse_location(destination)
        if loc.is_local and (loc.path / JOURNAL_NAME).exists():
            return "incomplete"
    except Exception:  # not a local path: the marker above was the only sign
        return "complete"
    return "complete"


def _normal(url: str) -> str:
    from napari_zarr_explorer.store import parse_location

    try:
        return parse_location(url).url
    except Exception:
        return url


def _speed(value: float | None) -> str:
    return f"{value:.0f}" if value else "-"
