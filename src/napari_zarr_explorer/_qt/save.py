"""The Save as OME-Zarr dock: the magicgui save form in napari.

It shows :class:`~napari_zarr_explorer.save_form.SaveForm` and runs
:func:`napari_zarr_explorer.writer.save` in a worker thread with progress and a Cancel button.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, Qt, QTimer, Signal  # type: ignore[attr-defined]
from qtpy.QtWidgets import QApplication, QScrollArea, QWidget

from napari_zarr_explorer._qt._common import (
    DOCK_PREFIX,
    Task,
    capitalized,
    error_text,
    notify_info,
    scroll_body,
    tabify_on_show,
)
from napari_zarr_explorer.errors import redact_urls, shown_url
from napari_zarr_explorer.save_form import SaveForm

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["SaveWidget"]


class _DockSaveForm(SaveForm):
    """The save form, its preview's messages shown as sentences (as the dock's errors are)."""

    def _capitalise_estimate(self) -> None:
        text = str(self.estimate.value or "")
        if capitalized(text) != text:
            self.estimate.value = capitalized(text)

    def update_estimate(self, *args: Any) -> None:
        super().update_estimate(*args)
        self._capitalise_estimate()

    def _set_defaults(self) -> None:
        super()._set_defaults()
        self._capitalise_estimate()


class SaveWidget(QWidget):
    """Save the chosen image and labels layers as one OME-Zarr image."""

    finished = Signal()

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.form = _DockSaveForm(self._layers)
        self.status = self.form.status
        self.task: Task | None = None
        self._reported = False  # whether the save going gave its report
        self.setObjectName(f"{DOCK_PREFIX} save")
        # a tab with the other docks, its form scrolling when the window is short
        tabify_on_show(self)
        lay = scroll_body(self, margins=0)
        lay.addWidget(self.form.native)
        lay.addStretch(1)
        # long lines wrap instead of widening the dock past the screen; layer names and
        # paths show as typed, never as markup
        for label in (self.form.estimate, self.status):
            label.native.setWordWrap(True)
            label.native.setTextFormat(Qt.TextFormat.PlainText)
        self.status.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self.form.save_button.clicked.connect(self.start)
        self.form.cancel_button.clicked.connect(self.cancel)
        events = napari_viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._refresh)
        self._refresh()

    def _layers(self) -> dict[str, Any]:
        """Return the image and labels layers a user may save (not the Chunk map's overlays)."""
        from napari.layers import Image, Labels

        from napari_zarr_explorer._qt._provenance import OVERLAY_KEY

        return {
            layer.name: layer
            for layer in self.viewer.layers
            if isinstance(layer, Image | Labels) and not layer.metadata.get(OVERLAY_KEY)
        }

    def _refresh(self, *_: Any) -> None:
        self.form.refresh_layers()

    def start(self, *_: Any) -> None:
        if self.task is not None and self.task.running:
            return
        path = self.form.output_text()  # as typed: a URL stays a URL
        layers = self.form.selected_layers()
        if not path or path == "." or not layers:
            self.status.value = "Choose an output folder and at least one layer."
            self.finished.emit()
            return
        try:
            opts = self.form.save_options()
        except Exception as exc:  # a lossy setting that is not a number: say so, write nothing
            self.status.value = error_text(exc)
            self.finished.emit()
            return
        from napari_zarr_explorer.writer import save

        def work(progress: Any, cancel: Any) -> Any:
            return save(layers, path, progress=progress, cancel=cancel, **opts)

        self.task = Task(
            work,
            desc="Saving OME-Zarr",
            parent=self,
            on_result=self._done,
            on_error=self._failed,
            deliver_after_cancel=True,
        )
        self.task.finished.connect(self._finished)
        self._reported = False
        self.form.save_button.enabled = False
        self.form.cancel_button.enabled = True
        # the Output as it may be shown: a password or a key in its URL reads ***
        self.status.value = f"Saving to {shown_url(path)}..."
        self.task.start()

    def cancel(self, *_: Any) -> None:
        # only the event: the save stops between tasks, removes what it wrote and reports it
        # (or, cancelled once every task was written, reports a saved output); quitting the
        # worker would drop that report and the dock would say "Cancelled." either way
        if self.task is not None and self.task.running:
            self.task.cancel_event.set()

    def _done(self, report: Any) -> None:
        self._reported = True
        if report.cancelled:
            self.status.value = "Cancelled: nothing was kept."
            return
        how = "" if report.verification == "exact" else f" {report.verification}"
        self.status.value = redact_urls(f"OK, verified{how}: {report.destination}")
        notify_info(f"Saved {report.destination}")

    def _failed(self, exc: BaseException) -> None:
        self.status.value = error_text(exc)

    def _finished(self) -> None:
        task = self.task
        if task is not None and task.cancel_event.is_set() and not self._reported:
            # cancelled, then the work failed (an error is not delivered after a cancel)
            error = task.error
            self.status.value = "Cancelled" + (f": {error_text(error)}" if error else ".")
        self.form.save_button.enabled = True
        self.form.cancel_button.enabled = False
        self._show_status()
        self.finished.emit()

    def _fit_status(self) -> None:
        """Make the status as tall as its wrapped lines (a long error is several lines).

        The form's layout sizes a wrapped label for its first lines only; the dock scrolls
        instead of cutting the rest off.
        """
        with contextlib.suppress(RuntimeError):  # the dock was closed meanwhile
            label = self.status.native
            needed = label.heightForWidth(label.width()) if label.isVisible() else -1
            label.setMinimumHeight(max(needed, 0))

    def _show_status(self) -> None:
        """Scroll the dock to show the status whole, once laid out again."""
        area = self.findChild(QScrollArea)
        if area is None:
            return

        def scroll() -> None:
            with contextlib.suppress(RuntimeError):  # the dock was closed meanwhile
                # the pending layout first: the scroll range of the new height
                for _ in range(8):  # each layout posts its parent's request
                    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
                area.ensureWidgetVisible(self.status.native)

        def fit() -> None:  # once laid out with the text, at the label's width
            self._fit_status()
            QTimer.singleShot(0, scroll)  # once laid out for the new height

        QTimer.singleShot(0, fit)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self._fit_status)  # once the label has its new width
