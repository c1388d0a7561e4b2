"""Errors and warnings raised by napari-zarr-explorer.

Every error names what it is about (a file, a key, a codec, a host) and says what to do next,
so that the reader, the command line and the docks can show its message as it is.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "CodecError",
    "ExplorerError",
    "ExplorerWarning",
    "LimitError",
    "MetadataError",
    "NotAnObjectError",
    "NotFoundError",
    "PathEscapeError",
    "RemoteError",
    "UnsafeDataError",
    "error_message",
]


class ExplorerError(Exception):
    """Base class of every error this package raises on purpose.

    Parameters
    ----------
    message
        What went wrong, naming the file, key, codec or host concerned.
    hint
        What the user can do about it; appended to the message.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class MetadataError(ExplorerError, ValueError):
    """A metadata document is missing, unreadable, not JSON, or not of the expected form."""


class CodecError(ExplorerError, ValueError):
    """A codec is unknown, unavailable here, or not allowed."""


class UnsafeDataError(ExplorerError, ValueError):
    """The data would need code execution (pickle) or arbitrary Python objects to decode."""


class PathEscapeError(ExplorerError, ValueError):
    """A path found in metadata points outside the opened store (absolute, ``..`` or a URL)."""


class LimitError(ExplorerError, MemoryError):
    """A read would exceed a configured resource limit."""


class RemoteError(ExplorerError, OSError):
    """A remote store could not be reached or answered with an error."""


class AccessDeniedError(RemoteError, PermissionError):
    """The server refused access (HTTP 401/403, S3 AccessDenied)."""


class NotFoundError(RemoteError, FileNotFoundError):
    """The store or a key in it does not exist."""


class NotAnObjectError(ExplorerError, IsADirectoryError):
    """A key names a folder of a local store (a group, an array, a folder), not an object."""


class ExplorerWarning(UserWarning):
    """A problem that did not stop the work: bad-but-usable metadata, a chunk shown as fill."""


def error_message(exc: BaseException) -> str:
    """Return the message to show a user for *exc*.

    Parameters
    ----------
    exc
        Any exception a form, a dock or a notebook caught.

    Returns
    -------
    str
        The message of an :class:`ExplorerError` as it is (with its hint: what to do), and
        ``Type: message`` (or just ``Type`` when it has no message) for anything else.
    """
    if isinstance(exc, ExplorerError):
        return str(exc)
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
