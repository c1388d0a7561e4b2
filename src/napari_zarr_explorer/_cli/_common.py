"""Helpers shared by the sub-commands: consoles, JSON output, errors."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape

__all__ = [
    "CODEC_HELP",
    "add_array_arguments",
    "add_storage_options",
    "cancel_on_sigint",
    "err_console",
    "out_console",
    "print_error",
    "print_json",
    "print_report",
    "printable",
    "storage_options",
]

#: The help of ``--compressor`` (the same codec specs for ``save`` and ``recompress``).
CODEC_HELP = (
    "codec spec: zstd:N, blosc-zstd:N, blosc-lz4, gzip:N, lzw, none; filters in front "
    "(shuffle+zstd:5, delta+lzw); image/array codecs png, jpeg2k, jpegxl, lerc, webp, zfpy, "
    "zfp:reversible; lossy only when named with their setting: lerc:maxerror=E, "
    "zfpy:tolerance=T, quantize:N, bitround:N, fixedscaleoffset:scale=S, jpeg:Q, "
    "jpeg2k:psnr=N, jpegxl:distance=D, webp:quality=Q, zfp:rate=N (default: zstd:3; "
    "see docs/codecs.md)"
)

#: Width of output that does not go to a terminal: wide enough that no line is ever wrapped.
PIPE_WIDTH = 1 << 16


class _Console(Console):
    """A console that wraps lines only on a terminal.

    Rich sizes every console from the terminal it can find (on any standard stream) or
    ``COLUMNS``, even when the output is piped or captured: a long path or a deep tree then
    breaks in the middle of a name, and what a script reads depends on the window it ran in.
    Output that is not a terminal is laid out at :data:`PIPE_WIDTH` columns instead (``COLUMNS``
    only sizes terminals).
    """

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out_console: Console = _Console(highlight=False)
err_console: Console = _Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Print *data* as indented JSON on standard output (no colour, stable key order)."""
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_UNPRINTABLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    r"""Return *text* with control characters and undecodable bytes written as ``\xNN``.

    Names and messages come from the data: printed as they are, escape sequences in them
    would drive the terminal, and bytes of non-UTF-8 file names would fail to encode. Tabs and
    newlines are kept unless *one_line* (a name, a path, one line of a tree): a newline in a
    node's name would draw a node that does not exist.
    """
    return (_UNPRINTABLE_LINE if one_line else _UNPRINTABLE).sub(_escape_char, text)


def print_error(error: str | BaseException) -> None:
    """Print an error on standard error (control characters escaped).

    An exception is worded by :func:`~napari_zarr_explorer.errors.error_message`, as the docks
    and the notebook word it; a string is printed as it is. URLs are shown without their
    secrets (:func:`~napari_zarr_explorer.errors.shown_url`).
    """
    from napari_zarr_explorer.errors import error_message, redact_urls

    message = redact_urls(error) if isinstance(error, str) else error_message(error)
    err_console.print(f"[bold red]error:[/] {escape(printable(message))}", soft_wrap=True)


def add_array_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``URL``, ``--storage-options``, ``--array PATH`` and ``--level N`` to *parser*.

    ``--path`` is the same option as ``--array`` (``inspect`` names a node with ``--path``).
    """
    parser.add_argument("url", metavar="URL", help="path or URL of the store")
    add_storage_options(parser)
    parser.add_argument(
        "--array",
        "--path",
        dest="array",
        default=None,
        metavar="PATH",
        help="path of the array (or OME image group) in the store; default: the URL itself, "
        "or its only array",
    )
    parser.add_argument("--level", type=int, default=None, help="multiscale level (default 0)")


def add_storage_options(parser: argparse.ArgumentParser, *, dst: bool = False) -> None:
    """Add ``--storage-options JSON`` (and ``--dst-storage-options`` when *dst*) to *parser*."""
    parser.add_argument(
        "--storage-options",
        metavar="JSON",
        help="file-system options for a remote URL as a JSON object, e.g. '{\"anon\": true}' "
        'or \'{"client_kwargs": {"headers": {"Authorization": "Bearer ..."}}}\'',
    )
    if dst:
        parser.add_argument(
            "--dst-storage-options", metavar="JSON", help="the same, for the destination"
        )


def storage_options(
    args: argparse.Namespace, flag: str = "--storage-options"
) -> dict[str, Any] | None:
    """Return the parsed JSON object of *flag*, or None when it was not given."""
    from napari_zarr_explorer.errors import ExplorerError

    text = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExplorerError(
            f"{flag}: not valid JSON ({exc.msg}).", hint="Give a JSON object in quotes."
        ) from None
    if not isinstance(value, dict):
        raise ExplorerError(f"{flag}: expected a JSON object, e.g. '{{\"anon\": true}}'.")
    return value


@contextmanager
def cancel_on_sigint(message: str) -> Iterator[threading.Event]:
    """Turn a first Ctrl-C into a request to stop (the event is set), a second into an abort.

    The handler is installed from the main thread only, and the previous one is put back.
    """
    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err_console.print(message)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def print_report(report: Any, as_json: bool) -> None:
    """Print a report as JSON (``to_dict``) or as its text, control characters escaped."""
    if as_json:
        print_json(report.to_dict())
    else:
        out_console.print(printable(str(report)), markup=False, highlight=False)
