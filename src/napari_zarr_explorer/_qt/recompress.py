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

from qtpy.QtCore import QSize, Qt, QTimer, Signal  # type: ignore[attr-defined]
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QWidget,
)

from napari_zarr_explorer._html import plural
from napari_zarr_explorer._qt._common import (
    ElidedLabel,
    Task,
    add_layer_data,
    dock_words,
    error_text,
    format_bytes,
    notify_error,
    notify_info,
    notify_warning,
    scroll_body,
    tabify_on_show,
    theme_colors,
    unwrap,
)
from napari_zarr_explorer._qt._icons import icon
from napari_zarr_explorer._qt._provenance import is_overlay, provenance_of
from napari_zarr_explorer.errors import redact_urls, shown_url
from napari_zarr_explorer.estimate import growth_warning
from napari_zarr_explorer.forms import COMPRESSORS, RecompressForm, shape_text

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_zarr_explorer.estimate import RunEstimate

__all__ = ["COMPRESSORS", "RecompressWidget"]

#: Lines of text the report box shows without scrolling (the report of a run is 6 to 10).
REPORT_LINES = 8


#: The engine's progress phases as the dock names them.
_PHASE_WORDS = {
    "plan": "Planning",
    "write": "Writing",
    "check": "Checking what is written",
    "validate": "Validating",
    "done": "Done",
}


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
        self.run_estimate: RunEstimate | None = None
        self._estimated_choice = ""
        # the settings the estimate was made with: (candidates, plan_kwargs)
        self._estimated_settings: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
        self._estimate_text = ""  # the summary of the estimate shown
        self.report: Any = None
        self._tasks: list[Task] = []
        self._run_task: Task | None = None
        self._estimate_task: Task | None = None
        # bumped by each estimate started and each other node selected: only the estimate of
        # the latest number may draw or speak (an older one ending only frees the buttons)
        self._estimate_generation = 0
        self._explorer: Any = None
        self._cancelling = False
        self.setObjectName("napari-zarr-explorer recompress")
        self.setMinimumWidth(400)  # the estimate table's five columns, uncut (as the Explorer)
        tabify_on_show(self)

        # the contents scroll rather than make the window taller than a laptop screen
        layout = scroll_body(self)
        layout.setSpacing(4)
        source_row = QHBoxLayout()
        source_title = QLabel("Source")
        self.source_label = ElidedLabel("Select a node in the Explorer, or a layer.")
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)  # a path, never markup
        source_row.addWidget(source_title)
        source_row.addWidget(self.source_label, 1)
        layout.addLayout(source_row)

        self.form = RecompressForm()
        # the form never shrinks below its fields, even when docks stack
        self.form.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.form.native)
        # how chunk values fewer than the dimensions apply: a sentence, wrapped, never markup
        note: Any = self.form.layout_note.native
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
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
        self._run_tip = str(self.run_button.toolTip())
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
            ["Encoding", "Compression\nratio", "Projected\nsize", "Enc.\nMB/s", "Dec.\nMB/s"]
        )
        for col, tip in enumerate(_ESTIMATE_COLUMN_TIPS):
            header_item = self.estimate_table.horizontalHeaderItem(col)
            if header_item is not None:
                header_item.setToolTip(tip)
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
        self.estimate_table.setMaximumHeight(170)  # the two-line header and four rows
        self.estimate_table.setMinimumHeight(60)
        layout.addWidget(self.estimate_table)
        # data-derived text (node names, messages): shown as typed, never as markup
        self.estimate_label = QLabel("")
        self.estimate_label.setTextFormat(Qt.TextFormat.PlainText)
        self.estimate_label.setWordWrap(True)
        layout.addWidget(self.estimate_label)
        # shown when the estimate predicts an output larger than the source (a run stays allowed)
        self.estimate_warning = QLabel("")
        self.estimate_warning.setTextFormat(Qt.TextFormat.PlainText)
        self.estimate_warning.setWordWrap(True)
        warning_colour = theme_colors(napari_viewer).get("warning", "#e3b617")
        self.estimate_warning.setStyleSheet(f"color: {warning_colour}; font-weight: bold")
        self.estimate_warning.hide()
        layout.addWidget(self.estimate_warning)

        self.progress_label = QLabel("")
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_label.setWordWrap(True)
        layout.addWidget(self.progress_label)
        self.report_view = ReportView(REPORT_LINES)
        layout.addWidget(self.report_view, 1)
        self.open_result_button = QPushButton("Open the result next to the original")
        self.open_result_button.setEnabled(False)
        layout.addWidget(self.open_result_button)

        self.form.changed.connect(self._on_choice)
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
        unfinished = explorer.unfinished_at(path)
        if unfinished is not None:
            # an unfinished output (the store, or one inside it) is something to resume or
            # delete, not a source
            from napari_zarr_explorer.store.locate import node_where

            if (explorer.url, unfinished) != (self.source_url, self.source_path):
                where = node_where(explorer.shown_url or "", unfinished)
                self.progress_label.setText(
                    f"{where} is an unfinished output, so it is not used as the source."
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
            notify_error(error_text(exc))
            return
        same = (location.url, path.strip("/")) == (self.source_url, self.source_path)
        if self.source_url is not None and location.url != self.source_url:
            # another store: an Output typed for the last one, and Overwrite or Resume ticked
            # for it, must not replace anything of this one
            self.form.forget("output", "overwrite", "resume")
            self.form.put(overwrite=False, resume=False)
            if not self.busy:  # what was said of the last store's run goes (a run says its end)
                self.report = None
                self.progress_label.setText("")
                self.report_view.setPlainText("")
                self.open_result_button.setEnabled(False)
        self.source_url = location.url
        self.source_path = path.strip("/")
        self.level0_shape = shape or self.level0_shape if same else shape
        self.source_label.setText(self.shown_source)
        try:
            output = default_output(self.source)
        except Exception:
            output = ""
        suggestions: dict[str, str] = {"output": output}
        if shape:
            from napari_zarr_explorer.recompress import suggest_layout

            suggestions["chunks"] = shape_text(suggest_layout(shape)[0])
        self.form.suggest(**suggestions)
        # the shards follow the chunks shown (the user's own, or those just suggested)
        self.form.set_source_shape(self.level0_shape)
        if not same:
            self._estimate_generation += 1  # an estimate still running is no longer shown
            estimating = self._estimate_task if self.estimating else None
            if estimating is not None:  # the estimate of the node left stops, and is not shown
                estimating.cancel_event.set()
            self.estimate_table.setRowCount(0)
            self.estimate_label.setText("")
            self.run_estimate = None
            self._estimate_text = ""
            self._show_growth(None)
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

    @property
    def shown_source(self) -> str:
        """The source node as it may be shown: a password or signature in its URL reads ``***``."""
        return shown_url(self.source)

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

    def _browse(self) -> None:
        folder = QFileDialog.getSaveFileName(
            self, "Write the recompressed data to", str(self.form.output.value)
        )[0]
        if folder:
            self.form.output.value = folder

    def _choice_complete(self) -> bool:
        try:
            self.compressor_text()
        except Exception:  # a lossy codec without its setting yet
            return False
        return True

    def _on_choice(self, *_: Any) -> None:
        if self.run_estimate is not None and self._estimate_text:
            self._show_growth(self.run_estimate)
            if self._estimate_current():
                self.estimate_label.setText(self._estimate_text)
            else:
                self.estimate_label.setText(
                    "This estimate is for other settings (Estimate again for these): "
                    + self._estimate_text
                )

    def _settings(self) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        """Return the settings an estimate is made with: the candidates, the run's settings."""
        try:
            candidates = self.form.candidates()
            plan_kwargs = self.form.plan_kwargs()
        except Exception:  # a lossy codec without its setting yet, a shape being typed
            return None
        return candidates, plan_kwargs

    def _estimate_current(self) -> bool:
        """Return True when the form still has the settings the estimate was made with.

        Choosing another encoding of the table keeps it current (the table covers it); any
        other change (shuffle, chunks, shards, format) does not.
        """
        made, now = self._estimated_settings, self._settings()
        if made is None or now is None:
            return False
        if now == made:
            return True

        def layout(kwargs: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in kwargs.items() if k != "compressor"}

        run = self.run_estimate
        chosen = now[1]["compressor"]
        return (
            run is not None
            and chosen != self._estimated_choice
            and chosen in run.compressors
            and layout(now[1]) == layout(made[1])
        )

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
        has_source = self.source_url is not None
        self.form.estimate_button.enabled = has_source and not self.busy
        # one thing at a time: a run waits for the estimate to end (or to be cancelled)
        self.form.run_button.enabled = has_source and not self.busy
        self.run_button.setToolTip(
            "Wait for the estimate to end, or Cancel it" if self.estimating else self._run_tip
        )
        self.form.cancel_button.enabled = self.busy

    @property
    def estimating(self) -> bool:
        """True while an estimate runs."""
        return self._estimate_task is not None and self._estimate_task.running

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
        if task is self._estimate_task:
            self._estimate_task = None
        self._update_enabled()

    def cancel(self) -> None:
        """Stop the estimate or the run (a cancelled run can be resumed)."""
        for task in list(self._tasks):
            task.cancel_event.set()
        if self._run_task is not None:
            self._cancelling = True
            self.progress_label.setText("Cancelling: running tasks finish, then the run stops...")
        if self.estimating:
            self.estimate_label.setText(
                "Cancelling the estimate: the chunk being read finishes, then it stops..."
            )

    # ------------------------------------------------------------------ estimate
    def estimate(self) -> None:
        """Estimate the chosen encoding and a few others on sampled chunks (in the background).

        Every array the run would write is sampled (up to
        :data:`~napari_zarr_explorer.estimate.ESTIMATE_ARRAYS`), so the
        table and the summary are about the whole run: all levels of a pyramid, its labels.
        """
        if self.source_url is None:
            return
        try:
            candidates = self.form.candidates()
            plan_kwargs = self.form.plan_kwargs()
        except Exception as exc:
            notify_error(error_text(exc))
            return
        url, path, source = self.source_url, self.source_path, self.source
        sample = int(self.form.sample.value)
        self._estimated_choice = self.compressor_text()
        self._estimated_settings = (candidates, plan_kwargs)
        self._estimate_text = ""

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.estimate import estimate_run

            return estimate_run(
                url, path, source, candidates, plan_kwargs, sample, cancel, progress=progress
            )

        self.estimate_label.setText("Estimating on sampled chunks...")
        self._show_growth(None)
        what = path or shown_url(url)
        shown: list[bool] = []  # whether the estimate's figures came
        self._estimate_generation += 1
        generation = self._estimate_generation

        def current() -> bool:
            # the latest estimate, of the node still selected: comparing the node alone would
            # take an estimate stopped by leaving the node for one cancelled here on coming back
            return generation == self._estimate_generation

        def done(run: RunEstimate) -> None:
            if not current():
                return
            shown.append(True)
            # a cancel that came once every chunk was read changes nothing: say so
            self._show_estimate(run, late=task.cancel_event.is_set() and not run.cancelled)

        def failed(exc: BaseException) -> None:
            if current():
                self._estimate_failed(exc)

        task = self._start(work, f"Estimating {what}", done, failed)
        self._estimate_task = task
        self._update_enabled()

        def progressed(update: tuple[int, int, str, Any]) -> None:
            if current():
                self._estimate_progress(task, update)

        task.progressed.connect(progressed)

        def ended() -> None:
            # a cancelled estimate that then fails reports no error: say it was cancelled anyway
            if current():
                self._estimate_ended(task, bool(shown))

        task.finished.connect(ended)

    def _estimate_progress(self, task: Task, update: tuple[int, int, str, Any]) -> None:
        """Say how many of the run's arrays are sampled (a cancel's word stays until the end)."""
        done, total = update[0], update[1]
        if task.cancel_event.is_set() or not task.running or total <= 0:
            return
        self.estimate_label.setText(
            f"Estimating on sampled chunks: {done} of {plural(total, 'array')} sampled..."
        )

    def _estimate_ended(self, task: Task, shown: bool) -> None:
        if task.cancel_event.is_set() and not shown:
            self.estimate_label.setText("Estimate cancelled.")

    def _estimate_failed(self, exc: BaseException) -> None:
        self.estimate_label.setText("The estimate failed (see the notification).")
        notify_error(error_text(exc))

    def _show_estimate(self, run: RunEstimate, *, late: bool = False) -> None:
        self.run_estimate = run
        self.estimate_report = run.arrays[0].report
        self.estimate_table.setRowCount(0)
        # the speeds measured on the first array sampled (one storing nothing measures none)
        speeds = next(
            (
                a.report.candidates
                for a in run.arrays
                if any(c.encode_mbps or c.decode_mbps for c in a.report.candidates)
            ),
            run.arrays[0].report.candidates,
        )
        for index, compressor in enumerate(run.compressors):
            row = self.estimate_table.rowCount()
            self.estimate_table.insertRow(row)
            first = QTableWidgetItem(compressor)
            first.setData(Qt.ItemDataRole.UserRole, compressor)
            problems = run.problems(index)
            first.setToolTip("; ".join(problems) or speeds[index].label)
            projected = run.projected(index)
            ratio = run.nbytes / projected if projected else None
            cells = [
                first,
                QTableWidgetItem(f"{ratio:.2f}x" if ratio else "-"),
                QTableWidgetItem(format_bytes(projected)),
                QTableWidgetItem(_speed(speeds[index].encode_mbps)),
                QTableWidgetItem(_speed(speeds[index].decode_mbps)),
            ]
            for col, item in enumerate(cells):
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.estimate_table.setItem(row, col, item)
        before = "The estimate finished before the cancel took effect. " if late else ""
        use = " Double-click a row to use it." if run.chunks_sampled else ""
        self._estimate_text = before + estimate_summary(run) + use
        self._on_choice()  # the summary and the warning, as for the settings shown now
        shown = self.estimate_warning if self.estimate_warning.isVisibleTo(self) else None
        self._bring_into_view(self.estimate_label, *([shown] if shown is not None else []))

    def _bring_into_view(self, *widgets: QWidget) -> None:
        """Scroll the dock to show *widgets* (the last one whole), once laid out again."""
        area = self.findChild(QScrollArea)
        if area is None:
            return

        def scroll() -> None:
            with contextlib.suppress(RuntimeError):  # the dock was closed meanwhile
                for widget in widgets:
                    area.ensureWidgetVisible(widget)

        QTimer.singleShot(0, scroll)

    def _show_growth(self, run: RunEstimate | None) -> None:
        """Warn when the estimate predicts the chosen encoding writes more than the source holds.

        The warning follows the choice: another encoding of the table chosen afterwards is
        warned about by its own figures; one the estimate did not cover hides it, as does any
        other setting changed since the estimate (shuffle, chunks, shards, format).
        """
        text = None
        if run is not None and self._estimate_current():
            chosen = self.compressor_text()
            # the summary above says why the run cannot be planned, when it cannot: not again
            if chosen == self._estimated_choice:
                text = growth_warning(run, 0, plan_note=False)
            elif chosen in run.compressors:
                text = growth_warning(run, run.compressors.index(chosen), plan_note=False)
        self.estimate_warning.setText(dock_words(text) if text else "")
        self.estimate_warning.setVisible(bool(text))

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        """Recompress the source into the output (in the background, with progress)."""
        if self.source_url is None or self.busy:
            return  # a run waits for the estimate to end (its button says so)
        destination = str(self.form.output.value).strip()
        if not destination:
            notify_error("Choose where to write the recompressed data (Output).")
            return
        try:
            kwargs = self.form.run_kwargs()
        except Exception as exc:
            notify_error(error_text(exc))
            return
        source = self.source

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.recompress import recompress

            return recompress(source, destination, progress=progress, cancel=cancel, **kwargs)

        self.report = None
        self._cancelling = False
        self.open_result_button.setEnabled(False)
        self.report_view.setPlainText("")
        # the Output as it may be shown: a password or a key in its URL reads ***
        self.progress_label.setText(
            f"Recompressing {self.shown_source} into {shown_url(destination)}..."
        )
        reported: list[bool] = []  # whether the run's report came

        def done(report: Any) -> None:
            reported.append(True)
            self._show_report(report)

        task = self._start(
            work, f"Recompressing {Path(self.shown_source).name}", done, self._run_failed
        )
        task.progressed.connect(self._on_progress)
        self._run_task = task
        self._update_enabled()
        # a cancelled run whose running task then fails reports nothing: say how it ended
        task.finished.connect(lambda: self._run_ended(task, bool(reported)))

    def _run_ended(self, task: Task, reported: bool) -> None:
        """Say how a cancelled run ended when it gave no report (as the estimate says it)."""
        if not task.cancel_event.is_set() or reported:
            return
        if task.error is None:
            self.progress_label.setText("Cancelled; the run ended before it reported.")
            return
        self._run_failed(task.error)
        self.progress_label.setText(
            "Cancelled, then a task still running failed. " + self.progress_label.text()
        )

    def _on_progress(self, update: tuple[int, int, str, Any]) -> None:
        event = update[3]
        if self._cancelling or event is None or not hasattr(event, "bytes_done"):
            return
        eta = getattr(event, "eta", None)
        left = f", {eta:.0f} s left" if eta is not None and math.isfinite(eta) else ""
        phase = _PHASE_WORDS.get(event.phase, str(event.phase).capitalize())
        self.progress_label.setText(
            f"{phase}: {event.objects_done}/{event.objects_total} objects, "
            f"{format_bytes(event.bytes_done)} of {format_bytes(event.bytes_total)}, "
            f"{format_bytes(event.rate)}/s{left}"
        )

    def _run_failed(self, exc: BaseException) -> None:
        """Say what became of the output; advise Resume only where Resume would help.

        Resume continues a run that stopped partway with the same settings: it helps after a
        failure while writing (the engine's :class:`RunFailedError`) and for an existing
        unfinished output. A settings error, or an output refused as it is, writes nothing, and
        ticking Resume would not change that.
        """
        from napari_zarr_explorer.errors import OutputExistsError, RunFailedError

        if isinstance(exc, RunFailedError):
            text = (
                "The run stopped (see the message below); the output is marked incomplete: once "
                "the cause is fixed, tick Resume and run again to continue, or Overwrite to "
                "start over."
            )
        elif isinstance(exc, OutputExistsError) and exc.incomplete:
            text = (
                "Nothing was written (see the message below): the output is an interrupted "
                "run's. Tick Resume to continue it with the same settings, or Overwrite to "
                "start over."
            )
        elif isinstance(exc, OutputExistsError):
            text = (
                "Nothing was written (see the message below): the output already exists and is "
                "complete. Choose another Output, or tick Overwrite."
            )
        else:
            text = "Nothing was written (see the message below)."
        self.progress_label.setText(text)
        message = error_text(exc)
        self.report_view.setPlainText(message)  # stays when the notification goes
        notify_error(message)
        # what became of the output, then the message (as a finished run's report)
        self._bring_into_view(self.report_view, self.progress_label)

    def _show_report(self, report: Any) -> None:
        self.report = report
        self.report_view.setPlainText(redact_urls(dock_words(str(report))))
        # Cancel stops the tasks not started yet: a run whose tasks were all running finishes
        late = self._cancelling and not report.cancelled
        before = "The run finished before the cancel took effect. " if late else ""
        if report.cancelled:
            self.progress_label.setText(
                "Cancelled; the output is marked incomplete. Tick Resume and run again to continue."
            )
            notify_warning(f"Recompression cancelled; {report.destination} is incomplete.")
        elif report.ok:
            done = report.done_line()
            how = "" if report.verification == "exact" else f" {report.verification}"
            self.progress_label.setText(
                before + done + (f", verified{how}." if report.verified else ".")
            )
            notify_info(f"Recompressed into {report.destination}.")
        else:
            self.progress_label.setText(before + "Finished with problems: see the report.")
            notify_error("; ".join(report.mismatches[:3]) or "The recompression did not verify.")
        self.open_result_button.setEnabled(bool(report.complete))
        self._bring_into_view(self.open_result_button, self.report_view)
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

        self._start(work, f"Opening {shown_url(destination)}", done)


def _share(after: float, before: float | None) -> str:
    return f" ({after / before:.0%} of now)" if before else ""


def estimate_summary(run: RunEstimate) -> str:
    """One paragraph about an estimate: the run's total now and projected, level by level.

    The totals are of the chosen encoding (the table's first row) over every array the run
    writes; the largest arrays are named with their own figures when there are several. A
    cancelled estimate starts by saying how much it sampled before it stopped (never that it
    sampled everything); a run that cannot be planned as set says why, and that the figures
    are of one array. Sizes are compared as a compression ratio (logical size / stored size)
    and as a share of what is stored now. When the size stored now is unknown (a store that
    cannot list, such as plain HTTP) the summary says so in words and gives the projected size
    alone: ``"0: stored size now unknown; projected about 11.4 KiB with zstd:3."``.
    """
    first = run.arrays[0].report
    count = len(run.arrays) + run.unsampled
    now_total = run.bytes_now
    projected = run.projected(0)
    chosen = run.compressors[0]
    in_all = " in all" if count > 1 else ""
    if now_total is None:  # a store that cannot list (plain HTTP): said, never shown as "-"
        now = "stored size now unknown"
    else:
        now = f"now {format_bytes(now_total)}{in_all}"
    if count == 1:
        what = f"{run.arrays[0].path or first.path or '/'}: {now}"
    else:
        what = f"The run writes {count} arrays: {now}"
    ratio = first.ratio if count == 1 else (run.nbytes / now_total if now_total else None)
    if ratio:
        what += f" (compression ratio {ratio:.2f}x)"
    if projected is not None and now_total is None:
        what += f"; projected about {format_bytes(projected)}{in_all} with {chosen}"
    elif projected is not None:
        what += f" -> about {format_bytes(projected)} with {chosen}"
        what += _share(projected, now_total)
    text = what + "."
    if count > 1:
        parts = []
        for a in sorted(run.arrays, key=lambda a: -(a.bytes_now or 0))[:4]:
            after = run.projected_of(a, 0)
            before = "unknown now" if a.bytes_now is None else format_bytes(a.bytes_now)
            figure = f"{a.path or '/'}: {before}"
            if after is not None:
                figure += f" -> {format_bytes(after)}"
            parts.append(figure)
        more = count - len(parts)
        text += " Per array: " + "; ".join(parts) + (f"; {more} more" if more > 0 else "")
        text += "."
        if run.unsampled_text:
            text += " " + run.unsampled_text
    sampled = run.sampled_text(seed=False)
    if not run.cancelled:
        layout = first.candidates[0].label[len(first.candidates[0].compressor) :].strip()
        if layout:
            sampled = sampled.removesuffix(".") + f" ({layout})."
        text += " " + sampled
    best = run.best
    if best is not None:
        size = run.projected(best) or 0
        text += f" Smallest: {run.compressors[best]}, {format_bytes(size)}."
    note = run.plan_note
    if note is not None:
        text = f"{dock_words(note)} {text}"
    return f"{sampled} {text}" if run.cancelled else text


#: What each column of the estimate table shows (its header's tooltip).
_ESTIMATE_COLUMN_TIPS = (
    "The encoding (double-click a row to use it)",
    "Compression ratio of the output: logical size / projected stored size (higher is smaller)",
    "Projected stored size of everything the run writes",
    "Encoding speed on this machine, one thread (MB of raw data per second)",
    "Decoding speed on this machine, one thread (MB of raw data per second)",
)


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


class ReportView(QTextBrowser):
    """A text box at least *lines* lines of its current font tall (the theme sets the font)."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines = lines

    def minimumSizeHint(self) -> QSize:
        """Room for :attr:`lines` lines, in the font the box has now."""
        document = self.document()
        margin = document.documentMargin() if document is not None else 4.0
        text = self.lines * self.fontMetrics().lineSpacing() + 2 * margin
        height = math.ceil(text) + 2 * self.frameWidth()
        return QSize(super().minimumSizeHint().width(), height)
