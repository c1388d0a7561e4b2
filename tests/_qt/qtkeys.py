"""Typing into widgets as a user does, whatever the characters (a path may hold any)."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, Qt
from qtpy.QtGui import QKeyEvent
from qtpy.QtWidgets import QApplication, QWidget

__all__ = ["type_text"]


def type_text(qtbot: Any, widget: QWidget, text: str) -> None:
    """Type *text* into *widget*, one key press per character.

    ``QTest.keyClicks`` maps characters to keys of a US keyboard and aborts the process on any
    other (``é`` in a user's folder name); those characters are sent as a keyboard layout or an
    input method sends them: a key event carrying the text.
    """
    for char in text:
        if char.isascii():
            qtbot.keyClicks(widget, char)
            continue
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            event = QKeyEvent(kind, Qt.Key.Key_unknown, Qt.KeyboardModifier.NoModifier, char)
            QApplication.sendEvent(widget, event)
