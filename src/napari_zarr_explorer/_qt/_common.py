"""Helpers shared by the docks: theme colours, notifications, background tasks, recent stores."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import (  # type: ignore[attr-defined]
    QEvent,
    QObject,
    QSize,
    QStandardPaths,
    Qt,
    QTimer,
    Signal,
)
from qtpy.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_zarr_explorer._html import human_bytes
from napari_zarr_explorer.errors import error_message, redact_urls, shown_url

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = [
    "DOCK_PREFIX",
    "ElidedLabel",
    "RecentStores",
    "Task",
    "add_layer_data",
    "camera_of",
    "canvas_size",
    "capitalized",
    "dock_words",
    "error_message",
    "error_text",
    "format_bytes",
    "notify_error",
    "notify_info",
    "notify_warning",
    "scroll_body",
    "tabify_on_show",
    "theme_colors",
    "unwrap",
]

CONFIG_DIR_ENV = "NAPARI_ZARR_EXPLORER_CONFIG_DIR"


# ---------------------------------------------------------------------------------------------
# Look and messages


def theme_colors(viewer: napari.Viewer | None) -> dict[str, str]:
    """Return the current napari theme's colours as ``#rrggbb`` strings, keyed by role."""
    from napari.utils.theme import get_theme

    name = getattr(viewer, "theme", None) or "dark"
    try:
        theme = get_theme(str(name))
    except (KeyError, ValueError):  # a custom theme that went away: fall back to the default
        theme = get_theme("dark")
    out: dict[str, str] = {}
    for role in (
        "background",
        "foreground",
        "primary",
        "secondary",
        "highlight",
        "text",
        "icon",
        "warning",
        "error",
        "current",
        "canvas",
    ):
        value = getattr(theme, role, None)
        if value is not None:
            out[role] = value.as_hex() if hasattr(value, "as_hex") else str(value)
    return out


def capitalized(text: str) -> str:
    """Return *text* starting with a capital letter, as a sentence shown on its own.

    The core's messages start in lower case so they read well after a colon; a dock showing
    one alone capitalises its first letter. Only that letter changes, and only when the first
    word is a plain word: a message starting with a path, a URL or a file name
    (``/data/a.zarr: ...``, ``s3://...``, ``zarr.json ...``) is shown as it is.
    """
    if not text or not text[0].islower():
        return text
    first = text.split(None, 1)[0].rstrip(",;:")
    if not first.isalpha():
        return text
    return text[0].upper() + text[1:]


# The core's messages name command-line flags and Python's keywords; the docks say what to tick
# or choose instead, or what a napari user can do where the docks offer nothing (credentials and
# remote options come from the environment napari starts with). Whole sentences first (where a
# flag alone would not read well, or names something the docks do not offer, such as --replace
# or --storage-options), then the flags alone. Every dock's messages go through this one table.
_SERVER_LOGIN = (
    "For a server that wants a password, put the user name and password in the URL, before "
    "the host (user:PASSWORD@host); a token sent in a header can be given from the command "
    "line or Python, not from napari."
)
_OPTIONS_HOW = "with --storage-options (command line) or storage_options= (Python)"
_DOCK_WORDS: tuple[tuple[str, str], ...] = (
    # remote access (store/remote.py, store/locate.py)
    (
        "For a private bucket set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        'or pass {"key": ..., "secret": ...} or {"profile": ...} ' + _OPTIONS_HOW + ".",
        "For a private bucket, start napari with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(or AWS_PROFILE) set in its environment, or with the credentials in "
        "~/.aws/credentials.",
    ),
    (
        "For a private bucket set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, "
        'run `gcloud auth application-default login`, or pass {"token": ...} ' + _OPTIONS_HOW + ".",
        "For a private bucket, start napari with GOOGLE_APPLICATION_CREDENTIALS set to a "
        "service-account key file, or after `gcloud auth application-default login`.",
    ),
    (
        'Pass credentials, e.g. {"headers": {"Authorization": "Bearer ..."}}, '
        + _OPTIONS_HOW
        + ".",
        _SERVER_LOGIN,
    ),
    (
        "Remove the '?...' part; pass tokens as 'headers' " + _OPTIONS_HOW + ".",
        "Remove the '?...' part. " + _SERVER_LOGIN,
    ),
    (
        "Give a plain URL and pass options " + _OPTIONS_HOW + ".",
        "Give a plain URL (http(s)://, s3:// or gs://).",
    ),
    (
        "raise the limit with NZE_REMOTE_TIMEOUT, or with the option 'explorer_timeout' "
        + _OPTIONS_HOW
        + ".",
        "to wait longer, start napari with NZE_REMOTE_TIMEOUT set to more seconds.",
    ),
    ("Check the URL and the storage options.", "Check the URL."),
    # recompression (Recompress dock)
    ("CANCELLED (continue with resume)", "CANCELLED (tick Resume and run again to continue)"),
    (
        "Finish it with `napari-zarr-explorer recompress ... --resume` or delete it.",
        "Finish it in Recompress with Resume ticked, or delete it.",
    ),
    ("`napari-zarr-explorer recompress ... --resume`", "Recompress with Resume ticked"),
    (
        "Write to a separate folder; use --replace to swap it in afterwards.",
        "Choose another Output folder, outside the source.",
    ),
    ("Write next to it instead, e.g.", "Choose an Output folder outside the source, e.g."),
    ("Choose an output outside the source store.", "Choose an Output outside the source store."),
    ("Choose another output.", "Choose another Output, outside the source."),
    ("fix the cause and continue with --resume.", "fix the cause, tick Resume and run again."),
    (
        "Resume with the same settings, or start again with --overwrite.",
        "Resume with the same settings, or tick Overwrite to start again.",
    ),
    (
        "Continue it with --resume (with the same settings), start it again with --overwrite, "
        "or choose a new output.",
        "Tick Resume to continue it (with the same settings), tick Overwrite to start it again, "
        "or choose a new Output.",
    ),
    (
        "Choose a new output, or replace it with --overwrite.",
        "Choose a new Output, or tick Overwrite to replace it.",
    ),
    # writing to a bucket (the output's storage options are not the docks')
    (
        'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass {"key": ..., '
        '"secret": ...} in the output\'s storage options.',
        "start napari with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) set in "
        "its environment, or with the credentials in ~/.aws/credentials.",
    ),
    (
        "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run `gcloud auth "
        'application-default login`, or pass {"token": ...} in the output\'s storage options.',
        "start napari with GOOGLE_APPLICATION_CREDENTIALS set to a service-account key file, or "
        "after `gcloud auth application-default login`.",
    ),
    (
        "Use a larger --task-size (MiB per task), or recompress a smaller part of the hierarchy.",
        "Recompress a smaller part of the hierarchy (select a node below it in the Explorer).",
    ),
    ("Drop --shards or write Zarr v3 (--zarr-format 3).", "Empty Shards, or choose Zarr v3."),
    ("Write Zarr v3 (--zarr-format 3).", "Choose Zarr v3 in Format."),
    (
        "there; `napari-zarr-explorer chunks --verify` lists every damaged",
        "there; the Chunk map with Verify ticked shows every damaged",
    ),
    (
        "`napari-zarr-explorer chunks --verify` lists every damaged",
        "The Chunk map with Verify ticked shows every damaged",
    ),
    # chunk maps (Chunk map dock)
    (
        "`napari-zarr-explorer inspect` shows its totals; map a smaller multiscale level "
        "(--level) instead.",
        "The Explorer shows its totals; choose a smaller multiscale level in Level instead.",
    ),
    (
        "The listing-based map (without --verify) still works.",
        "The map without Verify still works.",
    ),
    (
        "Fix the dataset path in the metadata, or give the array with --array.",
        "Fix the dataset path in the metadata, or select the array itself in the Explorer.",
    ),
    ("or --shuffle none", "or choose no shuffle"),
    ("Give --sample 1 or more.", "Set Sample to 1 or more."),
    ("Drop --no-verify to use --replace.", "Tick Verify."),
    # saving (the writer's hints name its keyword and its flag; Save dock)
    ("overwrite it (overwrite=True, --overwrite)", "tick Overwrite"),
    # what is left of a remote hint not known above
    (_OPTIONS_HOW, "from the command line or Python (not from napari)"),
)
#: Flags left alone in a sentence, replaced only where they stand as words (never inside a
#: path such as ``scan--resume.zarr``).
_FLAG_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"(?<![\w./-]){re.escape(flag)}(?![\w-])"), words)
    for flag, words in (
        ("--resume", "Resume"),
        ("--overwrite", "Overwrite"),
        ("--no-verify", "unticking Verify"),
    )
)


def dock_words(message: str) -> str:
    """Return *message* in the docks' words.

    Where the core's message names a command-line flag, the docks name what to tick or choose
    instead; where it names ``--storage-options`` or ``storage_options=`` (credentials, remote
    timeouts), the docks name what a napari user can do: a password in the URL, the environment
    variables napari is started with.
    """
    for words, ours in _DOCK_WORDS:
        message = message.replace(words, ours)
    for flag, ours in _FLAG_WORDS:
        message = flag.sub(ours, message)
    return message


def error_text(exc: BaseException | str) -> str:
    """Return the message a dock shows for *exc*: :func:`error_message` in the docks' words.

    It is capitalised, and said with :func:`dock_words`. A URL in it is shown without its
    password and signatures (``user:***@host``).
    """
    text = redact_urls(exc) if isinstance(exc, str) else error_message(exc)
    return capitalized(dock_words(text))


def notify_error(exc: BaseException | str) -> None:
    """Show *exc* as a napari error notification (never a traceback dialog)."""
    from napari.utils.notifications import show_error

    show_error(error_text(exc))


def notify_info(message: str) -> None:
    """Show an information notification."""
    from napari.utils.notifications import show_info

    show_info(dock_words(redact_urls(message)))


def notify_warning(message: str) -> None:
    """Show a warning notification."""
    from napari.utils.notifications import show_warning

    show_warning(dock_words(redact_urls(message)))


def format_bytes(n: float | None) -> str:
    """Human-readable byte count (binary units): ``12.3 KiB``; ``-`` for None."""
    return "-" if n is None else human_bytes(n)


def unwrap(obj: Any) -> Any:
    """Return the object behind napari's public-only proxy (plugin widgets get proxied viewers)."""
    return getattr(obj, "__wrapped__", obj)


# ---------------------------------------------------------------------------------------------
# Layout

DOCK_PREFIX = "napari-zarr-explorer"
"""Object names of this package's dock widgets start with this."""


class ElidedLabel(QLabel):
    """A one-line label that elides long text in the middle and shows all of it as a tooltip.

    Paths and URLs keep their start and their end (the store and the node), never widen the
    dock, and are readable in full on hover.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str | None) -> None:
        """Show *text*, elided to the label's width."""
        self._full = text or ""
        self.setToolTip(self._full)
        self._elide()

    def fullText(self) -> str:
        """Return the whole text (what the tooltip shows)."""
        return self._full

    def _elide(self) -> None:
        width = max(self.contentsRect().width(), 10)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, width)
        super().setText(shown)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._elide()


class VerticalScrollArea(QScrollArea):
    """A scroll area that scrolls up and down only: as wide as its contents need, never less.

    Its minimum height is small, so a dock holding it never makes the window taller; its
    minimum width is the contents' own, so nothing is cut at the right or scrolls sideways.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QWidget | None) -> None:
        """Show *widget*; the area's size hints follow its layout from then on."""
        super().setWidget(widget)
        if widget is not None:
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:
        """Ask the dock for new room when the contents' minimum width changes."""
        if event is not None and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def _extra(self) -> int:
        bar = self.verticalScrollBar()
        return (bar.sizeHint().width() if bar is not None else 0) + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        """Return the contents' minimum width (and a scroll bar) and a few lines of height."""
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 0
        return QSize(width + self._extra(), 4 * self.fontMetrics().height())

    def sizeHint(self) -> QSize:
        """Return the contents' preferred size (and a scroll bar)."""
        inner = self.widget()
        hint = inner.sizeHint() if inner is not None else QSize(0, 0)
        return QSize(hint.width() + self._extra(), hint.height())


def scroll_body(widget: QWidget, margins: int = 6) -> QVBoxLayout:
    """Give *widget* a vertical scroll area filling it; return the layout to fill instead.

    A dock asks the window for no more height than a few lines: when its contents need more
    than the window has (docks stacked on a laptop screen), they scroll instead of making the
    window taller than the screen.
    """
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = VerticalScrollArea(widget)
    area.setObjectName(f"{widget.objectName()} scroll".strip())
    body = QWidget()
    area.setWidget(body)
    outer.addWidget(area)
    layout = QVBoxLayout(body)
    layout.setContentsMargins(margins, margins, margins, margins)
    return layout


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def tabify(widget: QWidget) -> bool:
    """Put *widget*'s dock in tabs with this package's other docks on the same side.

    Three docks stacked on one side need more height than a laptop screen has; as tabs each
    gets the whole height (napari's own docks do the same when asked to ``tabify``).

    Returns False while the widget is not in a dock of a main window yet.
    """
    try:
        dock = _dock_of(widget)
    except RuntimeError:  # deleted meanwhile
        return True
    if dock is None or not isinstance(dock.parentWidget(), QMainWindow):
        return False
    main = dock.parentWidget()
    assert isinstance(main, QMainWindow)
    # tabs show the dock's title: "Explorer", not "Explorer (napari-zarr-explorer)"
    dock.setWindowTitle(dock.windowTitle().split(f" ({DOCK_PREFIX})")[0])
    area = main.dockWidgetArea(dock)
    ours = [
        other
        for other in main.findChildren(QDockWidget)
        if other is not dock
        and not other.isHidden()
        and main.dockWidgetArea(other) == area
        and _is_ours(other)
    ]
    if not ours or any(o in main.tabifiedDockWidgets(dock) for o in ours):
        return True
    # join the group our docks already form, else the first of ours (creation order)
    grouped = [o for o in ours if any(t in ours for t in main.tabifiedDockWidgets(o))]
    anchor = (grouped or ours)[0]
    main.tabifyDockWidget(anchor, dock)
    dock.show()
    dock.raise_()
    return True


def _is_ours(dock: QDockWidget) -> bool:
    inner = dock.widget()
    if inner is None:
        return False
    names = [inner.objectName(), *[w.objectName() for w in inner.findChildren(QWidget)][:20]]
    return any(n.startswith(DOCK_PREFIX) for n in names)


def tabify_on_show(widget: QWidget, attempts: int = 50) -> None:
    """Tabify *widget*'s dock once napari has put it in the window (see :func:`tabify`).

    napari docks a widget after constructing it, and a constructor that starts work may let
    the event loop run first; so this tries again every 20 ms until the dock is there.
    """

    def attempt(left: int) -> None:
        if not tabify(widget) and left > 0:
            QTimer.singleShot(20, lambda: attempt(left - 1))

    QTimer.singleShot(0, lambda: attempt(attempts))


# ---------------------------------------------------------------------------------------------
# Viewer geometry (napari moved the camera under ``viewer.scene`` in 0.9)


def camera_of(viewer: napari.Viewer) -> Any:
    """Return the viewer's camera model."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None) if scene is not None else None
    return camera if camera is not None else viewer.camera


def canvas_size(viewer: napari.Viewer) -> tuple[int, int]:
    """Canvas size in screen pixels as (height, width)."""
    canvas = getattr(viewer, "canvas", None)
    size: Any = getattr(canvas, "size", None)
    if size is None:
        size = getattr(viewer, "_canvas_size", None) or (600, 800)
    return int(size[0]), int(size[1])


# ---------------------------------------------------------------------------------------------
# Layers


def add_layer_data(viewer: napari.Viewer, layer_data: Sequence[Any]) -> list[Any]:
    """Add napari ``LayerData`` tuples (data, kwargs, type) to *viewer*; return the new layers.

    Like napari's reader path, ``viewer.add_<type>(data, **kwargs)`` is used, so a
    ``channel_axis`` splits an image into one layer per channel; each of those layers then
    records its channel index in its provenance.
    """
    from napari_zarr_explorer._qt._provenance import PROVENANCE_KEY

    added: list[Any] = []
    for item in layer_data:
        data = item[0]
        meta = dict(item[1]) if len(item) > 1 and item[1] else {}
        layer_type = item[2] if len(item) > 2 else "image"
        result = getattr(viewer, f"add_{layer_type}")(data, **meta)
        layers = list(result) if isinstance(result, list | tuple) else [result]
        if len(layers) > 1 and meta.get("channel_axis") is not None:
            for index, layer in enumerate(layers):
                md = dict(layer.metadata)
                md["channel"] = index
                prov = md.get(PROVENANCE_KEY)
                if isinstance(prov, dict):
                    md[PROVENANCE_KEY] = {**prov, "channel": index}
                layer.metadata = md
        added.extend(unwrap(layer) for layer in layers)
    return added


# ---------------------------------------------------------------------------------------------
# Background work


class Cancelled(Exception):
    """Raised inside a task's function when the user cancelled it."""


class Task(QObject):
    """Run ``func(progress, cancel)`` in a worker thread with a napari progress bar.

    ``progress`` is a callback the core calls from the worker thread as ``progress(done, total)``
    (or with one object having ``done``/``total`` attributes); ``cancel`` is a
    :class:`threading.Event` the core checks. The result goes to *on_result* and an error to
    *on_error* (default: a napari error notification) in the GUI thread; an exception raised by
    either becomes a notification too. Nothing is delivered after :meth:`cancel` unless
    *deliver_after_cancel* (for work that reports what it did before stopping); an error is
    never delivered once cancelled, but kept in :attr:`error` for a view that says how a
    cancelled task ended (on :attr:`finished`).
    """

    progressed = Signal(object)  # (done, total, message, raw event); ints may exceed 32 bits
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(
        self,
        func: Callable[[Callable[..., None], threading.Event], Any],
        *,
        desc: str,
        parent: QObject | None = None,
        show_progress: bool = True,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        deliver_after_cancel: bool = False,
    ) -> None:
        super().__init__(parent)
        self._deliver_after_cancel = deliver_after_cancel
        self._func = func
        self._on_result = on_result
        self._on_error = on_error
        self.desc = redact_urls(desc)  # the progress bar names stores as they may be shown
        self.cancel_event = threading.Event()
        self._pbar: Any = None
        self._show_progress = show_progress
        self._worker: Any = None
        self.running = False
        #: the error the work ended with (also when it was not delivered, after a cancel)
        self.error: BaseException | None = None
        self.progressed.connect(self._on_progress)

    # -- worker side ----------------------------------------------------------------------
    def _report(self, *args: Any, **kwargs: Any) -> None:
        done, total = _progress_numbers(args, kwargs)
        message = kwargs.get("message")
        if message is None and len(args) >= 3 and isinstance(args[2], str):
            message = args[2]
        if message is None and args:
            message = getattr(args[0], "message", None)
        self.progressed.emit((done, total, message or "", args[0] if args else None))

    def _run(self) -> Any:
        return self._func(self._report, self.cancel_event)

    # -- GUI side ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the work in a thread."""
        from superqt.utils import create_worker

        if self._show_progress:
            from napari.utils import progress

            self._pbar = progress(total=0, desc=self.desc)
        worker = create_worker(self._run, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.running = True
        worker.start()

    def cancel(self) -> None:
        """Ask the work to stop; the core checks the event between steps."""
        self.cancel_event.set()
        if self._worker is not None:
            self._worker.quit()

    def _on_progress(self, update: tuple[int, int, str, Any]) -> None:
        done, total, message, _ = update
        pbar = self._pbar  # updating the bar may process events (and finish the task)
        if pbar is None:
            return
        if message:
            pbar.set_description(redact_urls(f"{self.desc}: {message}"))
        if done < pbar.n:  # a new phase started over
            pbar.reset(total=total or None)
        if total > 0 and pbar.total != total:
            pbar.total = total
        if done > pbar.n:
            pbar.update(done - pbar.n)

    def _on_returned(self, value: Any) -> None:
        if self.cancel_event.is_set() and not self._deliver_after_cancel:
            return
        if self._on_result is not None:
            try:
                self._on_result(value)
            except Exception as exc:  # a view failing to show a result must not take napari down
                notify_error(exc)
        self.returned.emit(value)

    def _on_errored(self, exc: BaseException) -> None:
        if not isinstance(exc, Cancelled):
            self.error = exc
        if self.cancel_event.is_set() or isinstance(exc, Cancelled):
            return
        handler = self._on_error if self._on_error is not None else notify_error
        try:
            handler(exc)
        except Exception as inner:
            notify_error(inner)
        self.errored.emit(exc)

    def _on_finished(self) -> None:
        self.running = False
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._worker = None
        self.finished.emit()


def _progress_numbers(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, int]:
    """Read (done, total) from the arguments of a core progress callback."""
    if len(args) >= 2:
        return int(args[0]), int(args[1])
    obj: Any = args[0] if args else None
    if obj is not None and not isinstance(obj, int | float):
        for d_name, t_name in (
            ("done", "total"),
            ("shards_done", "shards_total"),
            ("bytes_done", "bytes_total"),
            ("n", "total"),
        ):
            d, t = getattr(obj, d_name, None), getattr(obj, t_name, None)
            if d is not None and t is not None:
                return int(d), int(t)
    done = kwargs.get("done", obj if isinstance(obj, int | float) else 0)
    return int(done or 0), int(kwargs.get("total", 0) or 0)


# ---------------------------------------------------------------------------------------------
# Recently opened stores


class RecentStores:
    """The stores opened recently, most recent first, kept in a small JSON file.

    The file lives in the user configuration folder (``$NAPARI_ZARR_EXPLORER_CONFIG_DIR`` when
    set, otherwise Qt's generic configuration location + ``napari-zarr-explorer``). URLs are
    kept as they may be shown (:func:`~napari_zarr_explorer.errors.shown_url`): a password or a
    signature is never written, and one a file from an earlier version holds is dropped.
    """

    def __init__(self, limit: int = 12) -> None:
        self.limit = limit

    @property
    def path(self) -> Path:
        """The JSON file."""
        base = os.environ.get(CONFIG_DIR_ENV)
        if not base:
            loc = QStandardPaths.StandardLocation.GenericConfigLocation
            base = str(Path(QStandardPaths.writableLocation(loc)) / "napari-zarr-explorer")
        return Path(base) / "recent.json"

    def load(self) -> list[str]:
        """Return the recent stores (an unreadable file counts as empty)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        items = data.get("recent", []) if isinstance(data, dict) else []
        shown: list[str] = []
        for item in items:
            if isinstance(item, str) and shown_url(item) not in shown:
                shown.append(shown_url(item))
        return shown[: self.limit]

    def add(self, url: str) -> list[str]:
        """Put *url* first (as it may be shown); return the new list.

        Failing to save is not an error.
        """
        url = shown_url(url)
        items = [url] + [s for s in self.load() if s != url]
        items = items[: self.limit]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"recent": items}, indent=1), encoding="utf-8")
        except OSError:
            pass
        return items
