"""Helpers shared by the sub-commands: consoles, JSON output, errors."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["err_console", "out_console", "print_error", "print_json"]

out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Print *data* as indented JSON on standard output (no colour, stable key order)."""
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


def print_error(message: str) -> None:
    """Print an error message on standard error."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
