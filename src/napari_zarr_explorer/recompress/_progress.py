"""A ready-made progress display for terminals and notebooks (rich)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from napari_zarr_explorer.recompress._report import ProgressEvent

__all__ = ["RichProgress"]


class RichProgress:
    """Render :class:`ProgressEvent` updates as a rich progress bar.

    Use it as the ``progress`` callback of :func:`napari_zarr_explorer.recompress.recompress`,
    inside a ``with`` block (``recompress(..., progress=True)`` does this for you). Works in a
    terminal and in Jupyter.

    Parameters
    ----------
    console
        A ``rich.console.Console`` (default: a new one on standard error).
    disable
        Show nothing (the callback still accepts events).
    label
        What the bar says while writing (``"recompress"``, ``"save"``).
    """

    def __init__(
        self, console: Any = None, *, disable: bool = False, label: str = "recompress"
    ) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[objects]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=disable,
        )
        self._task: Any = None
        self.label = label

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        """Update the bar from one event."""
        if self._task is None:
            if event.phase == "plan":
                return
            self._task = self.progress.add_task(
                self.label, total=event.bytes_total or None, objects=""
            )
        self.progress.update(
            self._task,
            total=event.bytes_total or None,
            completed=event.bytes_done,
            objects=f"{event.objects_done}/{event.objects_total} objects",
            description="verifying" if event.phase == "check" else self.label,
        )
