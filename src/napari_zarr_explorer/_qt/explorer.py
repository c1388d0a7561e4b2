"""The Explorer dock: the hierarchy of a Zarr / OME-Zarr store, its arrays, codecs and metadata.

A thin view of :func:`napari_zarr_explorer.report.inspect` and
:func:`napari_zarr_explorer.ome.validate.validate`, both run in worker threads. Any node opens
as napari layers through :func:`napari_zarr_explorer.layers.open_layers` (the reader's own
function), so the layers are the same as with drag-and-drop or File > Open.
"""

from __future__ import annotations

import contextlib
import html
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, Signal  # type: ignore[attr-defined]
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_zarr_explorer._qt._common import (
    ElidedLabel,
    RecentStores,
    Task,
    add_layer_data,
    dock_words,
    error_text,
    format_bytes,
    notify_error,
    notify_warning,
    tabify_on_show,
    theme_colors,
    unwrap,
)
from napari_zarr_explorer._qt._icons import icon
from napari_zarr_explorer._qt._provenance import (
    PROVENANCE_KEY,
    Provenance,
    is_overlay,
    provenance_of,
)
from napari_zarr_explorer._qt._reader_offer import offer_default_reader
from napari_zarr_explorer._tree import NodeView, build_nodes, join_path, parent_path, short_kind
from napari_zarr_explorer.errors import AccessDeniedError, shown_url
from napari_zarr_explorer.forms import OpenForm

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_zarr_explorer.report import StoreReport

__all__ = ["ExplorerWidget", "NodeView", "build_nodes", "explorer_for"]

_PATH_ROLE = Qt.ItemDataRole.UserRole
TIMES = " \u00d7 "  # multiplication sign between the dimensions of a shape
_EXPLORERS: weakref.WeakKeyDictionary[Any, ExplorerWidget] = weakref.WeakKeyDictionary()


def explorer_for(viewer: Any) -> ExplorerWidget | None:
    """Return the Explorer dock open in *viewer*, if any (Recompress acts on its selection)."""
    widget = _EXPLORERS.get(viewer)
    try:
        if widget is not None:
            widget.objectName()  # raises RuntimeError once Qt deleted it
    except RuntimeError:
        return None
    return widget


# ------------------------------------------------------------------------------------------------
# The tree model: what each node is, derived from the report only


# ------------------------------------------------------------------------------------------------
# Panels


def _html_table(rows: Sequence[tuple[str, str]], colors: Mapping[str, str]) -> str:
    cells = "".join(
        f"<tr><td style='color:{colors.get('icon', '#aaa')};padding-right:8px'>"
        f"{html.escape(k)}</td><td>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='0' cellpadding='1'>{cells}</table>"


def _shape_text(shape: Sequence[int] | None) -> str:
    return TIMES.join(str(int(s)) for s in shape) if shape is not None else "-"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def array_rows(report: Any) -> list[tuple[str, str]]:
    """Rows of the Array panel for an array report."""
    import math

    rows: list[tuple[str, str]] = [
        ("Path", _esc("/" + report.path)),
        ("Zarr format", _esc(report.zarr_format)),
        ("Shape", _esc(_shape_text(report.shape))),
        ("Data type", _esc(report.dtype)),
        ("Chunks", _esc(_shape_text(report.chunk_shape))),
    ]
    grid = [-(-s // c) if c else 0 for s, c in zip(report.shape, report.chunk_shape, strict=False)]
    rows.append(("Chunk grid", _esc(f"{_shape_text(grid)} = {report.chunks_total} chunks")))
    if report.shard_shape is not None:
        per = [s // c for s, c in zip(report.shard_shape, report.chunk_shape, strict=False)]
        rows.append(("Shards", _esc(_shape_text(report.shard_shape))))
        rows.append(
            (
                "Shard grid",
                _esc(
                    f"{report.shards_total} shards of {math.prod(per)} chunks ({_shape_text(per)})"
                ),
            )
        )
    objects = (
        "unknown (the store cannot list)"
        if report.objects_stored is None
        else (f"{report.objects_stored} of {report.shards_total or report.chunks_total}")
    )
    rows.append(("Objects stored", _esc(objects)))
    rows.append(("Bytes stored", _esc(format_bytes(report.bytes_stored))))
    rows.append(("Bytes logical", _esc(format_bytes(report.logical_bytes))))
    ratio = report.ratio
    rows.append(("Compression ratio", _esc(f"{ratio:.2f}x" if ratio else "-")))
    rows.append(("Fill value", _esc(report.fill_value)))
    if report.dimension_names:
        rows.append(("Dimensions", _esc(", ".join(str(d) for d in report.dimension_names))))
    rows.append(("Order", _esc(report.order)))
    if report.endianness:
        rows.append(("Byte order", _esc(report.endianness)))
    name, sep = report.key_encoding
    rows.append(("Chunk keys", _esc(f"{name}, separator '{sep}'")))
    return rows


def group_rows(node: NodeView, nodes: Mapping[str, NodeView]) -> list[tuple[str, str]]:
    """Rows of the Array panel for a group: what it holds."""
    below = [
        n
        for p, n in nodes.items()
        if n.report.kind == "array" and (node.path == "" or p.startswith(node.path + "/"))
    ]
    logical = sum(int(getattr(n.report, "logical_bytes", 0)) for n in below)
    stored = node.stored
    rows = [
        ("Path", _esc("/" + node.path)),
        ("Kind", _esc(node.label)),
        ("Arrays below", _esc(len(below))),
        ("Bytes stored", _esc(format_bytes(stored))),
        ("Bytes logical", _esc(format_bytes(logical))),
        ("Compression ratio", _esc(f"{logical / stored:.2f}x" if stored else "-")),
    ]
    if node.shape is not None:
        rows.insert(2, ("Level 0", _esc(f"{_shape_text(node.shape)} {node.dtype or ''}")))
    return rows


def ome_html(ome: Any, colors: Mapping[str, str]) -> str:
    """Render the OME panel: axes, levels with scale/translation, channels, children, warnings."""
    if ome is None:
        return "<i>No OME-NGFF metadata on this node.</i>"
    parts = [
        _html_table(
            [
                ("Kind", _esc("label image" if ome.label_image else ome.kind)),
                ("Version", _esc(ome.version or "unknown")),
                ("Name", _esc(ome.name or "-")),
            ],
            colors,
        )
    ]
    if ome.axes:
        cells = "".join(
            f"<tr><td>{_esc(a.get('name'))}</td><td>{_esc(a.get('type') or '')}</td>"
            f"<td>{_esc(a.get('unit') or '')}</td></tr>"
            for a in ome.axes
        )
        parts.append(
            "<h4>Axes</h4><table cellpadding='2'><tr><th align='left'>name</th>"
            f"<th align='left'>type</th><th align='left'>unit</th></tr>{cells}</table>"
        )
    if ome.levels:

        def fmt(values: Sequence[float] | None) -> str:
            if values is None:
                return "-"
            return ", ".join(f"{v:g}" for v in values)

        cells = "".join(
            f"<tr><td>{_esc(lvl.path)}</td><td>{_esc(_shape_text(lvl.shape))}</td>"
            f"<td>{_esc(fmt(lvl.scale))}</td><td>{_esc(fmt(lvl.translation))}</td></tr>"
            for lvl in ome.levels
        )
        parts.append(
            "<h4>Levels</h4><table cellpadding='2'><tr><th align='left'>path</th>"
            "<th align='left'>shape</th><th align='left'>scale</th>"
            f"<th align='left'>translation</th></tr>{cells}</table>"
        )
    if ome.channels:
        rows = []
        for i, ch in enumerate(ome.channels):
            color = str(ch.get("color") or "").lstrip("#")
            swatch = (
                f"<span style='background-color:#{_esc(color[:6])}'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"
                if len(color) in (6, 8)
                else ""
            )
            window = ch.get("window") or [None, None]
            win = " .. ".join("-" if w is None else f"{w:g}" for w in window)
            active = "" if ch.get("active") in (None, True) else " (hidden)"
            rows.append(
                f"<tr><td>{i}</td><td>{swatch} {_esc(ch.get('label') or '')}{active}</td>"
                f"<td>{_esc(win)}</td></tr>"
            )
        parts.append(
            "<h4>Channels</h4><table cellpadding='2'><tr><th align='left'>#</th>"
            "<th align='left'>label</th><th align='left'>window</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    if getattr(ome, "coordinate_systems", ()) or getattr(ome, "transforms", ()):
        from napari_zarr_explorer._html import coordinates_html

        parts.append(coordinates_html(ome))
    if ome.children:
        parts.append(
            "<h4>Lists</h4>"
            + ", ".join(_esc(c) for c in ome.children[:200])
            + (" ..." if len(ome.children) > 200 else "")
        )
    if ome.warnings:
        warn = colors.get("warning", "#e3b617")
        parts.append(
            "<h4>Tolerated problems</h4>"
            + "".join(f"<div style='color:{warn}'>{_esc(w)}</div>" for w in ome.warnings)
        )
    return "".join(parts)


def codec_items(codecs: Sequence[Any]) -> list[QTreeWidgetItem]:
    """Tree items for a codec pipeline: each codec, its configuration, sharding's sub-chains."""
    items = []
    for position, codec in enumerate(codecs):
        title = f"{position + 1}. {codec.name}"
        if getattr(codec, "implied", False):
            title += " (implied)"
        item = QTreeWidgetItem([title, str(codec.role)])
        item.setToolTip(0, codec.short)
        if codec.name == "sharding_indexed":
            cfg = codec.configuration
            shape = _shape_text(cfg.get("chunk_shape"))
            item.addChild(QTreeWidgetItem(["inner chunk shape", shape]))
            item.addChild(
                QTreeWidgetItem(["index location", str(cfg.get("index_location", "end"))])
            )
            inner = QTreeWidgetItem(["inner codecs", f"{len(codec.inner)}"])
            inner.addChildren(codec_items(codec.inner))
            item.addChild(inner)
            index = QTreeWidgetItem(["index codecs", f"{len(codec.index)}"])
            index.addChildren(codec_items(codec.index))
            item.addChild(index)
        else:
            for key, value in codec.configuration.items():
                item.addChild(QTreeWidgetItem([str(key), _value_text(value)]))
        items.append(item)
    return items


def _value_text(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


# ------------------------------------------------------------------------------------------------
# The widget


class ExplorerWidget(QWidget):
    """Browse a Zarr / OME-Zarr store and open any of its nodes as napari layers.

    Parameters
    ----------
    napari_viewer
        The viewer layers are opened in and followed.
    """

    node_selected = Signal(str)
    """Emitted with the store-relative path of the node selected in the tree."""
    loaded = Signal(str)
    """Emitted with the store URL once its report is shown (with its credentials: see
    :attr:`url`)."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.url: str | None = None
        """The store shown, as it connects (a password in it included); text shows
        :attr:`shown_url`."""
        self.report: StoreReport | None = None
        self.nodes: dict[str, NodeView] = {}
        self.validation: Any = None
        self._items: dict[str, QTreeWidgetItem] = {}
        self._tasks: list[Task] = []
        self._recent = RecentStores()
        self._attr_tree: QWidget | None = None
        self._opening: str | None = None
        self.setObjectName("napari-zarr-explorer explorer")
        self.setMinimumWidth(400)  # the tree's five columns and the five tabs, uncut
        self._pending_layer: Any = None
        self._reading: str | None = None
        self.incomplete = False  # the store shown is itself an unfinished recompression output
        self.incomplete_paths: tuple[str, ...] = ()  # the nodes that are, the store or below
        _EXPLORERS[napari_viewer] = self
        colors = theme_colors(napari_viewer)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)

        row = QHBoxLayout()
        row.setSpacing(2)
        self.open_form = OpenForm()
        self.location_edit: Any = self.open_form.location.native
        self.open_button: Any = self.open_form.open_button.native
        self._completer = QCompleter(self._recent.load(), self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.location_edit.setCompleter(self._completer)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent \u25be")
        self.recent_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0 }")
        self.recent_button.setToolTip("Stores opened recently")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self.recent_button)
        self.recent_button.setMenu(self.recent_menu)
        self._fill_recent(self._recent.load())
        self.browse_button = QToolButton()
        self.browse_button.setIcon(icon("browse"))
        self.browse_button.setToolTip("Choose a local .zarr folder")
        row.addWidget(self.open_form.native, 1)
        row.addWidget(self.recent_button)
        row.addWidget(self.browse_button)
        layout.addLayout(row)

        self.status_label = ElidedLabel("Open a store to explore it.")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # paths and messages, as typed
        layout.addWidget(self.status_label)
        # why the last open failed and what to do, in full (it stays when the notification goes)
        self.problem_label = QLabel("")
        self.problem_label.setObjectName("napari-zarr-explorer explorer problem")
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label.hide()
        layout.addWidget(self.problem_label)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Name", "Kind", "Shape", "Type", "Stored"])
        self.tree.setUniformRowHeights(True)
        self.tree.setMinimumHeight(120)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAlternatingRowColors(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setIndentation(12)
        header = self.tree.header()
        assert header is not None
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(24)
        # Name and Kind share what is left; Shape, Type and Stored fit their contents
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        splitter.addWidget(self.tree)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.array_view = QTextBrowser()
        self.codec_tree = QTreeWidget()
        self.codec_tree.setHeaderLabels(["Codec", "Role / value"])
        self.codec_tree.setUniformRowHeights(True)
        self.summary_codecs = QLabel("")
        self.summary_codecs.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_codecs.setWordWrap(True)
        codec_page = QWidget()
        codec_layout = QVBoxLayout(codec_page)
        codec_layout.setContentsMargins(0, 0, 0, 0)
        codec_layout.addWidget(self.summary_codecs)
        codec_layout.addWidget(self.codec_tree)
        self.attr_page = QWidget()
        self._attr_layout = QVBoxLayout(self.attr_page)
        self._attr_layout.setContentsMargins(0, 0, 0, 0)
        self.ome_view = QTextBrowser()
        self.validation_tree = QTreeWidget()
        self.validation_tree.setHeaderLabels(["Node", "Message"])
        self.validation_tree.setWordWrap(True)
        self.validation_tree.setRootIsDecorated(False)
        self.tabs.addTab(self.array_view, "Array")
        self.tabs.addTab(codec_page, "Codecs")
        self.tabs.addTab(self.attr_page, "Attributes")
        self.tabs.addTab(self.ome_view, "OME")
        self.tabs.addTab(self.validation_tree, "Validation")
        self.tabs.setMinimumHeight(140)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout.addWidget(splitter, 1)

        buttons = QHBoxLayout()
        self.open_layer_button = QPushButton("Open as layer")
        self.open_layer_button.setIcon(icon("open", colors.get("icon", "#d1d2d4")))
        self.open_layer_button.setToolTip(
            "Open the selected node in napari (any pyramid level, well, field or series); "
            "double-click does the same"
        )
        self.open_layer_button.setEnabled(False)
        self.refresh_button = QToolButton()
        self.refresh_button.setIcon(icon("refresh"))
        self.refresh_button.setToolTip("Read the store again")
        buttons.addWidget(self.open_layer_button, 1)
        buttons.addWidget(self.refresh_button)
        layout.addLayout(buttons)

        self.open_form.open_button.clicked.connect(self._open_from_box)
        self.location_edit.returnPressed.connect(self._open_from_box)
        self.recent_menu.triggered.connect(self._open_recent)
        self.browse_button.clicked.connect(self._browse)
        self.refresh_button.clicked.connect(self.refresh)
        self.tree.currentItemChanged.connect(self._on_current_item)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.open_layer_button.clicked.connect(self.open_selected)

        self._model_connections: list[tuple[Any, Any]] = [
            (napari_viewer.layers.selection.events.active, self._on_active_layer),
            (napari_viewer.layers.events.inserted, self._on_layer_inserted),
        ]
        for emitter, callback in self._model_connections:
            emitter.connect(callback)
        self.destroyed.connect(self._disconnect_model)
        tabify_on_show(self)
        offer_default_reader()
        # layers already open (the dock opened after a drop or the sample): follow them
        self._on_active_layer()

    # ------------------------------------------------------------------ lifetime
    def _disconnect_model(self, *_: Any) -> None:
        for emitter, callback in self._model_connections:
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                emitter.disconnect(callback)
        self._model_connections = []

    def closeEvent(self, event: Any) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._disconnect_model()
        super().closeEvent(event)

    @property
    def shown_url(self) -> str | None:
        """The store shown, as it may be shown: ``user:***@host`` instead of its password."""
        return None if self.url is None else shown_url(self.url)

    @property
    def busy(self) -> bool:
        """True while the store is being read or a node opened."""
        return any(t.running for t in self._tasks)

    def _run(self, func: Any, desc: str, on_result: Any, on_error: Any = None) -> Task:
        task = Task(func, desc=desc, parent=self, on_result=on_result, on_error=on_error)
        task.finished.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)
        self._tasks.append(task)
        task.start()
        return task

    # ------------------------------------------------------------------ opening a store
    def _open_from_box(self, *_: Any) -> None:
        text = str(self.open_form.location.value).strip()
        if text and not (self._opening == text and self.busy):  # Enter may also "click"
            self._opening = text
            self.open(text)

    def _open_recent(self, action: Any) -> None:
        url = str(action.data() or action.text())
        self.open_form.location.value = url
        self._open_from_box()

    def _fill_recent(self, items: Sequence[str]) -> None:
        self.recent_menu.clear()
        for url in items:
            action = self.recent_menu.addAction(url)
            if action is not None:
                action.setData(url)
        self.recent_button.setEnabled(bool(items))
        model = self._completer.model()
        if model is not None and hasattr(model, "setStringList"):
            model.setStringList(list(items))

    def recent_stores(self) -> list[str]:
        """Return the stores in the Recent menu, most recent first."""
        return [str(a.data()) for a in self.recent_menu.actions()]

    def _browse(self) -> None:
        start = self.url if self.url and "://" not in self.url else ""
        folder = QFileDialog.getExistingDirectory(self, "Open a Zarr store", start)
        if folder:
            self.open(folder)

    def refresh(self) -> None:
        """Read the current store again."""
        if self.url:
            self.open(self.url, select=self.selected_path)

    def open(self, url: str, *, select: str | None = "") -> None:
        """Read the store at *url* (path or URL) in the background and show its hierarchy.

        Parameters
        ----------
        url
            Local path or URL of the store.
        select
            Path of the node to select once shown (the root by default; None selects nothing).
        """
        from napari_zarr_explorer.store import parse_location

        try:
            location = parse_location(url)
        except Exception as exc:
            self._open_failed(shown_url(url), None, exc)
            return
        target = location.url  # connects; text names location.shown
        self._reading = target
        self.status_label.setText(f"Reading {location.shown}...")
        self.problem_label.hide()
        self.open_button.setEnabled(False)

        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.report import inspect

            return inspect(location)

        def done(report: StoreReport) -> None:
            self.open_button.setEnabled(True)
            problem = _unreadable(report)
            if problem is not None:
                self._open_failed(location.shown, target, problem)
                return
            self._show_report(target, report, select)
            self._remember(location.shown)
            self._validate(location)
            if self.incomplete:
                notify_warning(
                    f"{location.shown} is an unfinished recompression output: its data is partly "
                    "missing. Finish it in Recompress with Resume ticked, or delete it."
                )
            elif self.incomplete_paths:  # below the store: named, the store itself is not one
                from napari_zarr_explorer.store.locate import node_where

                named = ", ".join(node_where(location.shown, p) for p in self.incomplete_paths[:3])
                more = len(self.incomplete_paths) - 3
                notify_warning(
                    f"{named}{f' and {more} more' if more > 0 else ''}: unfinished recompression "
                    "output; its data is partly missing. Select it to see it; finish it in "
                    "Recompress with Resume ticked."
                )

        def failed(exc: BaseException) -> None:
            self.open_button.setEnabled(True)
            self._open_failed(location.shown, target, _denied_text(exc, location) or exc)

        self._run(work, f"Reading {location.name}", done, failed)

    def unfinished_at(self, path: str) -> str | None:
        """Return the unfinished recompression output holding the node *path*, or None."""
        for root in self.incomplete_paths:
            if not root or path == root or path.startswith(root + "/"):
                return root
        return None

    def _open_failed(self, shown: str, target: str | None, problem: BaseException | str) -> None:
        """Say that the store *shown* could not be read, why, and what the tree still shows.

        The store shown before stays (a mistyped URL does not lose it, nor its selection, nor
        what Recompress acts on); the status line and the message below it name it.
        """
        self._pending_layer = None
        message = error_text(problem)
        if self.url is None:
            self.status_label.setText(f"Could not read {shown}.")
            self.problem_label.setText(message)
        elif target == self.url:
            self.status_label.setText(f"Could not read {shown} again.")
            self.problem_label.setText(f"{message}\nStill showing {shown} as read before.")
        else:
            self.status_label.setText(f"Could not read {shown}.")
            self.problem_label.setText(f"{message}\nStill showing {self.shown_url}.")
        self.problem_label.show()
        notify_error(message)

    def _remember(self, shown: str) -> None:
        """Put the store opened first in Recent and in the open box, without its password.

        The shown form opens again in this session with the password given (see
        :func:`~napari_zarr_explorer.store.parse_location`); nothing on disk holds it.
        """
        self._fill_recent(self._recent.add(shown))
        self.open_form.put(location=shown)

    def _show_report(self, url: str, report: StoreReport, select: str | None) -> None:
        self.problem_label.hide()
        self.url = url
        self.report = report
        # unfinished outputs: the store itself, or nodes below it (a folder of stores)
        self.incomplete_paths = tuple(
            n.path for n in report.nodes if any("incomplete output" in w for w in n.warnings)
        )
        self.incomplete = report.path in self.incomplete_paths
        self.validation = None
        self.nodes = build_nodes(report)
        self.tree.clear()
        self._items = {}
        colors = theme_colors(self.viewer)
        icon_color = colors.get("icon", "#d1d2d4")
        shown = shown_url(url)
        root_label = shown.rstrip("/").rsplit("/", 1)[-1] or shown
        for path, node in self.nodes.items():
            name = root_label if path == report.path else node.name
            item = QTreeWidgetItem(
                [
                    name,
                    short_kind(node),
                    "\u00d7".join(str(int(v)) for v in node.shape) if node.shape else "",
                    node.dtype or "",
                    format_bytes(node.stored) if node.stored is not None else "",
                ]
            )
            item.setData(0, _PATH_ROLE, path)
            color = colors.get("error", "#99121f") if node.kind == "error" else icon_color
            item.setIcon(0, icon(node.kind, color))
            errors = getattr(node.report, "errors", ())
            warnings = getattr(node.report, "warnings", ())
            if errors or warnings:
                item.setToolTip(0, dock_words("\n".join([*errors, *warnings])))
                if errors and node.kind != "error":
                    item.setIcon(0, icon("warning", colors.get("warning", "#e3b617")))
            for col in (2, 3, 4):
                item.setTextAlignment(
                    col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
            item.setToolTip(1, node.label)
            if node.shape:
                item.setToolTip(2, _shape_text(node.shape))
            for col in (0, 3, 4):
                if not item.toolTip(col):
                    item.setToolTip(col, item.text(col))
            if path in self.incomplete_paths:
                item.setIcon(0, icon("warning", colors.get("warning", "#e3b617")))
                item.setToolTip(0, "Unfinished recompression output: data partly missing")
                item.setText(1, f"{node.label} (incomplete)")
            parent_item = self._nearest_parent_item(path)
            if parent_item is None:
                self.tree.addTopLevelItem(item)
            else:
                parent_item.addChild(item)
            self._items[path] = item
        self.tree.expandToDepth(1)
        self._fit_shape_column()
        n_arrays = len(report.arrays)
        stored = report.bytes_stored
        size = "stored size unknown" if stored is None else f"{format_bytes(stored)} stored"
        text = f"{shown}: {len(report.nodes)} nodes, {n_arrays} arrays, {size}"
        if report.truncated:
            text += f" (first {report.max_nodes} nodes)"
        if self.incomplete:
            text = "INCOMPLETE output. " + text
        self.status_label.setText(text)
        self.status_label.setToolTip(
            dock_words("\n".join([text, *report.warnings, *report.errors]))
        )
        self.loaded.emit(url)
        pending, self._pending_layer = self._pending_layer, None
        if pending is not None:
            pending_prov = provenance_of(pending)
            found = self.path_for(pending_prov) if pending_prov is not None else None
            if found is not None:
                self.select_path(found)
                return
        if select is not None:
            self.select_path(select if select in self._items else report.path)

    def _fit_shape_column(self) -> None:
        """Give shapes up to a third of the tree (longer ones elide; in full on hover)."""
        self.tree.resizeColumnToContents(2)
        viewport = self.tree.viewport()
        cap = max(80, (viewport.width() if viewport is not None else 300) // 3)
        if self.tree.columnWidth(2) > cap:
            self.tree.setColumnWidth(2, cap)

    def _nearest_parent_item(self, path: str) -> QTreeWidgetItem | None:
        if not path or (self.report is not None and path == self.report.path):
            return None
        p = parent_path(path)
        while True:
            if p in self._items:
                return self._items[p]
            if not p:
                return None
            p = parent_path(p)

    def _validate(self, location: Any) -> None:
        def work(progress: Any, cancel: Any) -> Any:
            from napari_zarr_explorer.ome.validate import validate

            return validate(location)

        def done(result: Any) -> None:
            if self.url != location.url:
                return
            self.validation = result
            self._show_validation(self.selected_path)

        def failed(exc: BaseException) -> None:
            if self.url != location.url:
                return
            self.validation = exc
            self._show_validation(self.selected_path)

        self._run(work, f"Validating {location.name}", done, failed)

    # ------------------------------------------------------------------ selection
    @property
    def selected_path(self) -> str | None:
        """Store-relative path of the selected node, or None."""
        item = self.tree.currentItem()
        if item is None:
            return None
        return str(item.data(0, _PATH_ROLE))

    @property
    def selected_node(self) -> NodeView | None:
        """The selected node, or None."""
        path = self.selected_path
        return self.nodes.get(path) if path is not None else None

    def select_path(self, path: str) -> bool:
        """Select the node at *path* in the tree; return False when it is not shown."""
        item = self._items.get(path.strip("/"))
        if item is None:
            return False
        parent = item.parent()
        while parent is not None:
            parent.setExpanded(True)
            parent = parent.parent()
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def _on_current_item(self, current: QTreeWidgetItem | None, previous: Any = None) -> None:
        path = None if current is None else str(current.data(0, _PATH_ROLE))
        node = self.nodes.get(path) if path is not None else None
        self.open_layer_button.setEnabled(node is not None and node.kind != "error")
        self._show_node(node)
        if path is not None:
            self._select_layers_of(path)
            self.node_selected.emit(path)

    def layers_of(self, path: str) -> list[Any]:
        """Return the viewer's layers that show the node at *path* of the store shown."""
        out = []
        for layer in self.viewer.layers:
            layer = unwrap(layer)
            if is_overlay(layer):
                continue
            prov = provenance_of(layer)
            if prov is not None and self.path_for(prov) == path:
                out.append(layer)
        return out

    def _select_layers_of(self, path: str) -> None:
        """Highlight the layers of the selected node in the layer list."""
        layers = self.layers_of(path)
        if not layers:
            return
        selection = self.viewer.layers.selection
        active = unwrap(selection.active)
        if active in layers:
            return
        selection.active = layers[0]
        for layer in layers[1:]:
            selection.add(layer)

    def _show_node(self, node: NodeView | None) -> None:
        colors = theme_colors(self.viewer)
        if node is None:
            self.array_view.setHtml("")
            self.codec_tree.clear()
            self.ome_view.setHtml("")
            self._set_attributes({})
            self._show_validation(None)
            return
        report = node.report
        found = (*getattr(report, "errors", ()), *getattr(report, "warnings", ()))
        problems = [dock_words(p) for p in found]
        rows: list[tuple[str, str]] = []
        if report.kind == "array":
            rows = array_rows(report)
        elif report.kind != "error":
            rows = group_rows(node, self.nodes)
        if self.unfinished_at(node.path) is not None:  # data never written: any ratio a fiction
            rows = [
                (k, "- (unfinished output)" if k == "Compression ratio" else v) for k, v in rows
            ]
            problems.insert(0, "Unfinished recompression output: parts are not written yet.")
        body = _html_table(rows, colors) if rows else ""
        if problems:
            err = colors.get("warning", "#e3b617")
            body += "".join(f"<p style='color:{err}'>{_esc(p)}</p>" for p in problems)
        self.array_view.setHtml(body)
        self.codec_tree.clear()
        codecs = getattr(report, "codecs", ())
        if codecs:
            self.summary_codecs.setText(report.codecs_text)
            self.codec_tree.addTopLevelItems(codec_items(codecs))
            self.codec_tree.expandAll()
            self.codec_tree.resizeColumnToContents(0)
        else:
            self.summary_codecs.setText("Select an array to see its codec pipeline.")
        ome = getattr(report, "ome", None)
        self.ome_view.setHtml(ome_html(ome, colors))
        self._set_attributes(getattr(report, "attributes", {}) or {})
        self._show_validation(node.path)
        # a sensible tab for what was selected
        if report.kind == "array" and self.tabs.currentIndex() == 3:
            self.tabs.setCurrentIndex(0)

    def _set_attributes(self, attributes: Mapping[str, Any]) -> None:
        from superqt import QSearchableTreeWidget

        from napari_zarr_explorer.codecs import jsonable

        if self._attr_tree is not None:
            self._attr_layout.removeWidget(self._attr_tree)
            self._attr_tree.deleteLater()
        tree = QSearchableTreeWidget.fromData(jsonable(dict(attributes)))
        tree.filter.setPlaceholderText("Search attributes...")
        tree.tree.expandToDepth(2)
        # keys readable in full (up to a third of the dock), values get the rest
        tree.tree.resizeColumnToContents(0)
        limit = max(120, self.width() // 3) if self.width() > 0 else 160
        if tree.tree.columnWidth(0) > limit:
            tree.tree.setColumnWidth(0, limit)
        tree.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._attr_layout.addWidget(tree)
        self._attr_tree = tree
        self.tabs.setTabText(2, f"Attributes ({len(attributes)})" if attributes else "Attributes")

    @property
    def attributes_tree(self) -> Any:
        """The searchable attribute tree of the selected node."""
        return self._attr_tree

    # ------------------------------------------------------------------ validation
    def validation_messages(self, path: str | None) -> list[tuple[str, str, str]]:
        """``(severity, node path, message)`` for the node at *path* and below it."""
        out: list[tuple[str, str, str]] = []
        if self.report is None:
            return out

        def within(p: str) -> bool:
            if path is None or path == "" or path == self.report.path:  # type: ignore[union-attr]
                return True
            return p == path or p.startswith(path + "/")

        for n in self.report.nodes:
            if not within(n.path):
                continue
            out.extend(("error", n.path, e) for e in n.errors)
            out.extend(("warning", n.path, w) for w in n.warnings)
            ome = getattr(n, "ome", None)
            if ome is not None:
                out.extend(("warning", n.path, w) for w in ome.warnings)
        if path in (None, "", self.report.path):
            out.extend(("error", "", e) for e in self.report.errors)
            out.extend(("warning", "", w) for w in self.report.warnings)
        result = self.validation
        if isinstance(result, BaseException):
            out.append(("error", "", f"validation failed: {result}"))
        elif result is not None:
            verdict = _validation_verdict(result)
            if verdict is not None:
                out.insert(0, ("info", "", verdict))
            for msg in _validation_items(result):
                if within(msg[1]):
                    out.append(msg)
        seen: set[tuple[str, str, str]] = set()
        unique = []
        for m in out:
            if m not in seen:
                seen.add(m)
                unique.append(m)
        return unique

    def _show_validation(self, path: str | None) -> None:
        colors = theme_colors(self.viewer)
        self.validation_tree.clear()
        messages = self.validation_messages(path)
        for severity, node_path, core_message in messages:
            message = dock_words(core_message)
            item = QTreeWidgetItem(["/" + node_path, message])
            color = {
                "error": colors.get("error", "#99121f"),
                "warning": colors.get("warning", "#e3b617"),
            }
            item.setIcon(
                0,
                icon(
                    severity if severity in ("error", "warning") else "info",
                    color.get(severity, colors.get("icon", "#d1d2d4")),
                ),
            )
            item.setToolTip(1, message)
            self.validation_tree.addTopLevelItem(item)
        if self.validation is None and self.report is not None:
            label = "Validation (...)"
        else:
            n = sum(1 for s, _, _ in messages if s in ("error", "warning"))
            label = f"Validation ({n})" if n else "Validation ✓"
        self.tabs.setTabText(4, label)
        self.validation_tree.resizeColumnToContents(0)

    # ------------------------------------------------------------------ opening layers
    def _on_double_click(self, item: QTreeWidgetItem, column: int) -> None:
        self.open_node(str(item.data(0, _PATH_ROLE)))

    def open_selected(self) -> None:
        """Open the selected node as layers."""
        path = self.selected_path
        if path is not None:
            self.open_node(path)

    def open_node(self, path: str) -> None:
        """Open the node at *path* as napari layers (in the background).

        Images, labels, plates, wells, fields and series open through the reader's
        ``open_layers``; a pyramid level opens alone at its own scale.
        """
        node = self.nodes.get(path)
        if node is None or self.url is None:
            return
        url = self.url
        unfinished = self.unfinished_at(path)
        if unfinished is not None:
            from napari_zarr_explorer.store.locate import node_where

            notify_warning(
                f"{node_where(shown_url(url), unfinished)} is an unfinished recompression output:"
                " parts not written yet show as empty (the fill value)."
            )
        if node.kind == "error":
            from napari_zarr_explorer.store.locate import node_where

            notify_error(f"{node_where(shown_url(url), path)}: " + "; ".join(node.report.errors))
            return
        image_node = self.nodes.get(node.image_path) if node.image_path is not None else None

        def work(progress: Any, cancel: Any) -> Any:
            return _layers_for_node(url, node, image_node)

        def done(layer_data: list[Any]) -> None:
            added = add_layer_data(self.viewer, layer_data)
            if added:
                self.viewer.layers.selection.active = added[0]

        self._run(work, f"Opening {path or shown_url(url)}", done)

    # ------------------------------------------------------------------ layer list -> tree
    def _on_active_layer(self, event: Any = None) -> None:
        layer = unwrap(self.viewer.layers.selection.active)
        if layer is not None:
            self.follow_layer(layer)

    def _on_layer_inserted(self, event: Any) -> None:
        layer = unwrap(getattr(event, "value", None))
        if layer is not None and (self.url is None or self._pending_layer is not None):
            self.follow_layer(layer)

    def follow_layer(self, layer: Any) -> None:
        """Show the store *layer* comes from, with its node selected.

        The store is opened when the Explorer shows nothing or another store; layers not
        opened from a Zarr store are ignored.
        """
        if is_overlay(layer):
            return
        prov = provenance_of(layer)
        if prov is None:
            return
        path = self.path_for(prov) if self.url is not None else None
        if path is not None:
            if path != self.selected_path:
                self.select_path(path)
            return
        from napari_zarr_explorer.store import parse_location

        try:
            url = parse_location(prov.url).url
        except Exception:
            return
        if self.busy and self._reading == url:
            self._pending_layer = layer  # the store is being read: select its node when shown
            return
        if self.url is not None and self._within_shown(url):
            return  # from this store, but not a node of the tree (a plate mosaic, say)
        self._pending_layer = layer
        self.open_form.put(location=shown_url(url))
        self.open(url, select="")

    def _within_shown(self, url: str) -> bool:
        base = (self.url or "").rstrip("/")
        return bool(base) and (url == base or url.startswith(base + "/"))

    def path_for(self, prov: Provenance) -> str | None:
        """Return the tree path of a layer's provenance, when it comes from the store shown."""
        from napari_zarr_explorer.store import parse_location

        if self.url is None:
            return None
        try:
            url = parse_location(prov.url).url
        except Exception:
            return None
        base = self.url.rstrip("/")
        if url == base:
            rel = ""
        elif url.startswith(base + "/"):
            rel = url[len(base) + 1 :]
        else:
            return None
        candidates = [join_path(rel, prov.path)]
        if len(prov.levels) == 1:
            candidates.insert(0, join_path(rel, prov.levels[0]))
        for cand in candidates:
            if cand in self.nodes:
                # a single-level layer of a pyramid opened from its image: select the image
                return cand
        return None


def _unreadable(report: StoreReport) -> str | None:
    """Why nothing of the store can be shown (None when its root was read).

    A report always has a node: ``inspect`` raises ``NotFoundError`` when it finds none (the
    open fails with that message), so only a root that could not be read is left to check.
    """
    root = next((n for n in report.nodes if n.path == report.path), None)
    if root is not None and root.kind == "error":
        errors = [*getattr(root, "errors", ()), *report.errors]
        return str(errors[0]) if errors else f"{report.url}: the store cannot be read."
    return None


#: What the Explorer says when a server wants a password it was not given: the core's hint names
#: the command line's --storage-options and Python's storage_options=, which the dock has not.
DENIED_HINT = (
    "Put the user name and password in the URL, before the host (user:PASSWORD@host), and "
    "open it again: passwords are not saved with the recent stores, and one given in this "
    "session is used again only for the same user and host."
)


def _denied_text(exc: BaseException, location: Any) -> str | None:
    """Return the dock's message for access denied by an HTTP server (None for other errors)."""
    if not isinstance(exc, AccessDeniedError) or location.protocol not in ("http", "https"):
        return None
    return f"{exc.message} {DENIED_HINT}"


def _validation_items(result: Any) -> list[tuple[str, str, str]]:
    """``(severity, node path, message)`` from a validation report."""
    out: list[tuple[str, str, str]] = []
    for m in getattr(result, "messages", ()) or ():
        severity = str(getattr(m, "level", "warning")).lower()
        node = str(getattr(m, "node", "") or "").strip("/")
        where = str(getattr(m, "file", "") or "")
        pointer = str(getattr(m, "path", "") or "")
        location = f"{where}#{pointer}" if where and pointer else (where or pointer)
        text = str(getattr(m, "message", m))
        out.append((severity, node, f"{text} ({location})" if location else text))
    return out


def _validation_verdict(result: Any) -> str | None:
    """One line saying whether the store's OME-NGFF metadata is valid."""
    valid = getattr(result, "valid", None)
    if valid is None:
        return None
    what = " ".join(
        str(v) for v in (getattr(result, "kind", None), getattr(result, "version", None)) if v
    )
    what = f"OME-NGFF {what}".strip()
    if valid:
        return f"{what}: valid ({getattr(result, 'nodes_checked', 0)} nodes checked)"
    return f"{what}: not valid"


# ------------------------------------------------------------------------------------------------
# Node -> layer data (runs in a worker thread; no Qt here)


def _layers_for_node(url: str, node: NodeView, image_node: NodeView | None) -> list[Any]:
    from napari_zarr_explorer.layers import open_layers

    if node.kind == "level" and image_node is not None and node.level is not None:
        return _level_layers(url, node, image_node, open_layers(url, path=image_node.path))
    return list(open_layers(url, path=node.path))


def _level_layers(
    url: str, node: NodeView, image_node: NodeView, image_layers: Sequence[Any]
) -> list[Any]:
    """One pyramid level alone: the image's own layer data with that level's data and scale."""
    import numpy as np

    level = int(node.level or 0)
    ome = image_node.report.ome
    out = []
    for item in image_layers:
        data, kwargs = item[0], dict(item[1]) if len(item) > 1 and item[1] else {}
        layer_type = item[2] if len(item) > 2 else "image"
        metadata = dict(kwargs.get("metadata") or {})
        if metadata.get("node_path", image_node.path) != image_node.path:
            continue  # a label image opened along with the image
        if not isinstance(data, list | tuple) or len(data) <= level:
            continue
        factors = np.asarray(data[0].shape, dtype=float) / np.asarray(
            data[level].shape, dtype=float
        )
        split = kwargs.get("channel_axis")
        if split is not None:
            factors = np.delete(factors, int(split))
        ndim = len(factors)
        base_scale = np.asarray(kwargs.get("scale", [1.0] * ndim), dtype=float)
        kwargs["scale"] = tuple(float(v) for v in base_scale * factors)
        t0, tk = ome.levels[0].translation, ome.levels[level].translation
        if t0 is not None and tk is not None and len(t0) == len(tk):
            delta = np.asarray(tk, dtype=float) - np.asarray(t0, dtype=float)
            caxis = _channel_axis(ome)
            if caxis is not None and len(delta) == ndim + 1:
                delta = np.delete(delta, caxis)
            if len(delta) == ndim:
                base = np.asarray(kwargs.get("translate", [0.0] * ndim), dtype=float)
                kwargs["translate"] = tuple(float(v) for v in base + delta)
        kwargs["multiscale"] = False
        name = kwargs.get("name", image_node.name)
        if isinstance(name, list | tuple):
            kwargs["name"] = [f"{n} [level {level}]" for n in name]
        else:
            kwargs["name"] = f"{name} [level {level}]"
        prov = provenance_of(type("Meta", (), {"metadata": metadata})())
        metadata[PROVENANCE_KEY] = Provenance(
            url=prov.url if prov is not None else shown_url(url),
            path=node.path,
            levels=(node.path,),
            channel_axis=prov.channel_axis if prov is not None else _channel_axis(ome),
        ).to_dict()
        kwargs["metadata"] = metadata
        out.append((data[level], kwargs, layer_type))
    if not out:
        from napari_zarr_explorer.errors import ExplorerError
        from napari_zarr_explorer.store.locate import node_where

        raise ExplorerError(
            f"{node_where(url, node.path)}: this pyramid level cannot be opened as a layer."
        )
    return out


def _channel_axis(ome: Any) -> int | None:
    if ome is None:
        return None
    for i, axis in enumerate(ome.axes):
        if axis.get("type") == "channel" or str(axis.get("name", "")).lower() in ("c", "channel"):
            return i
    return None
