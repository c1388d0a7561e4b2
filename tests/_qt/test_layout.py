"""The four docks together fit a 1280x800 window, and nothing in them is cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from qtpy.QtWidgets import QAbstractButton, QApplication, QComboBox, QLabel

PLUGIN = "napari-zarr-explorer"


def _cut_texts(widget) -> list[str]:
    """Texts of visible labels, buttons and combo boxes wider than the room they have."""
    cut = []
    for label in widget.findChildren(QLabel):
        if not label.isVisible() or label.wordWrap() or not label.text():
            continue
        if label.textFormat() == 1 or label.text().lstrip().startswith("<"):  # rich text
            continue
        needed = label.fontMetrics().horizontalAdvance(label.text())
        if needed > label.contentsRect().width():
            cut.append(f"label {label.text()!r}: {needed} > {label.contentsRect().width()}")
    for button in widget.findChildren(QAbstractButton):
        if button.isVisible() and button.text() and button.sizeHint().width() > button.width():
            cut.append(f"button {button.text()!r}: {button.sizeHint().width()} > {button.width()}")
    for combo in widget.findChildren(QComboBox):
        if not combo.isVisible():
            continue
        needed = combo.fontMetrics().horizontalAdvance(combo.currentText()) + 24  # the arrow
        if needed > combo.width():
            cut.append(f"combo {combo.currentText()!r}: {needed} > {combo.width()}")
    return cut


# napari's random label colours (skimage's lab2rgb) sometimes clip a colour and say so
@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB:UserWarning")
def test_four_docks_fit_a_laptop_screen(
    make_napari_viewer, qtbot, sample: Path, screenshot_dir: Path
) -> None:
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    docks = {}
    names = ("Explorer", "Chunk map", "Recompress", "Save as OME-Zarr")
    for name in names:  # as Plugins > Zarr Explorer does
        docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        QApplication.processEvents()
    viewer.open_sample(PLUGIN, "ome-zarr-pyramid")
    explorer = docks["Explorer"][1]
    qtbot.waitUntil(lambda: explorer.url == str(sample) and not explorer.busy, timeout=30000)
    chunkmap = docks["Chunk map"][1]
    qtbot.waitUntil(lambda: chunkmap.cmap is not None and not chunkmap.busy, timeout=30000)
    window.resize(1280, 800)
    QApplication.processEvents()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800, hint
    assert window.width() <= 1280 and window.height() <= 800
    # all four share one place, as tabs
    dock, _ = docks["Explorer"]
    tabs = {d.windowTitle() for d in window.tabifiedDockWidgets(dock)}
    assert tabs == {"Chunk map", "Recompress", "Save as OME-Zarr"}
    for name, (dock, widget) in docks.items():
        dock.raise_()
        qtbot.waitUntil(lambda widget=widget: widget.isVisible(), timeout=5000)
        QApplication.processEvents()
        assert _cut_texts(widget) == [], name
        widget.grab().save(str(screenshot_dir / f"dock-{name.replace(' ', '').lower()}.png"))
        assert window.height() <= 800, name
    # the Recompress report box shows a run's report (8 lines) without scrolling
    docks["Recompress"][0].raise_()
    QApplication.processEvents()
    report = docks["Recompress"][1].report_view
    margin = report.document().documentMargin()
    lines = (report.viewport().height() - 2 * margin) / report.fontMetrics().lineSpacing()
    assert lines >= 8, lines
    # the tree shows every column without a horizontal scroll bar
    docks["Explorer"][0].raise_()
    QApplication.processEvents()
    assert explorer.tree.horizontalScrollBar().maximum() == 0
    assert explorer.tree.columnWidth(0) >= 60  # names have room
    bar = explorer.tabs.tabBar()
    assert sum(bar.tabRect(i).width() for i in range(bar.count())) <= bar.width()
    # the attribute keys are readable in full
    explorer.select_path("")
    keys = explorer.attributes_tree.tree
    first = keys.topLevelItem(0)
    assert keys.columnWidth(0) >= keys.fontMetrics().horizontalAdvance(first.text(0)) + 10
    viewer.screenshot(str(screenshot_dir / "docks-1280x800.png"), canvas_only=False, flash=False)


def test_a_dock_alone_scrolls_up_and_down_only(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    import numpy as np
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((2, 64, 64), np.uint16), channel_axis=0, name=["a", "b"])
    window = viewer.window._qt_window
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Save as OME-Zarr")
    window.resize(1280, 800)
    form = widget.form
    form.path.value = str(tmp_path / "out.ome.zarr")
    form.chunks.value = "a,b"  # a long message in two places
    with qtbot.waitSignal(widget.finished, timeout=60000):
        form.save_button.clicked.emit()
    QApplication.processEvents()
    assert window.height() <= 800
    area = widget.findChild(QScrollArea)
    body = area.widget()
    # the whole width of the form is in view: nothing hides at the right
    assert body.minimumSizeHint().width() <= body.width() <= area.viewport().width()
    assert area.horizontalScrollBar().maximum() == 0
    assert _cut_texts(widget) == []
