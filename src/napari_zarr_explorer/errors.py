"""Errors and warnings raised by napari-zarr-explorer.

Every error names what it is about (a file, a key, a codec, a host) and says what to do next,
so that the reader, the command line and the docks can show its message as it is.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator

__all__ = [
    "CONNECTION_HINT",
    "REFUSED_HINT",
    "AccessDeniedError",
    "CodecError",
    "ExplorerError",
    "ExplorerWarning",
    "LimitError",
    "MetadataError",
    "NotAnObjectError",
    "NotFoundError",
    "OutputExistsError",
    "PathEscapeError",
    "RemoteError",
    "RunFailedError",
    "UnsafeDataError",
    "ambiguous_userinfo",
    "cause_chain",
    "connection_refused",
    "error_message",
    "not_delivered",
    "os_error_text",
    "redact_urls",
    "shown_url",
    "shown_userinfo",
]

#: What to check when a connection is refused: the server named is not listening there.
REFUSED_HINT = "Check the URL (host name and port) and that the server is running."
#: What to check when a connection failed otherwise (reset, unreachable network or host).
CONNECTION_HINT = "Check the URL and your network connection."
_ERRNO_PREFIX = re.compile(r"^\[(?:Errno|WinError) -?\d+\]\s*")
_CONNECTION_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "ECONNABORTED",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "ENETDOWN",
        "EHOSTDOWN",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
)


#: The text that stands for a secret in messages (a password, a signature).
REDACTED = "***"
#: Names (lower case) of query parameters whose values are secrets: presigned URLs of S3
#: (``X-Amz-*``), GCS (``X-Goog-*``), Azure SAS (``sig``), CloudFront, and plain tokens and keys.
_SECRET_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "sig",
        "signature",
        "policy",
        "key-pair-id",
        "awsaccesskeyid",
        "googleaccessid",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "auth",
        "authorization",
        "key",
        "apikey",
        "api_key",
        "api-key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
    }
)
#: The start of a URL's user information with a password (``user:``): a name, then a colon
#: before any "/", "?", "#" or "@". A URL so started with an "@" further on may carry a password
#: holding "/", "?", "#" or "@" unencoded, which a URL parser splits (``ann:1234/ab@host`` reads
#: as the host ``ann``, the port 1234 and the path ``/ab@host``).
_USER_COLON = re.compile(r"[^/?#@\s:]*:")
#: An authority that is plainly a host and a port, not a user name and a password: a name with
#: a dot, ``localhost``, an IPv4 or a bracketed IPv6 address, and a port up to 65535. An "@"
#: after it is in the path (``http://localhost:8000/img@2x.zarr``), as the rules of URLs say.
_PLAIN_HOST_PORT = re.compile(
    r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost|\[[0-9A-Fa-f:.]+\])"
    r":(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|\d{1,4})",
    re.IGNORECASE,
)
#: Parts of parameter names that mark a secret whatever the rest (``X-Custom-Token``).
_SECRET_PARTS = ("signature", "token", "secret", "password", "credential")
#: A URL within a text: a scheme, ``://``, its user information up to the last ``@`` (a
#: password may hold a quote), then everything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s@<>`]*@)?[^\s'\"<>`]+")


def _secret_param(name: str) -> bool:
    from urllib.parse import unquote_plus

    low = unquote_plus(name).strip().lower()
    return low in _SECRET_PARAMS or any(part in low for part in _SECRET_PARTS)


def shown_userinfo(userinfo: str) -> str:
    """Return the user information of a URL as shown: ``user:***``, or ``***`` for a lone name.

    A user name without a password is often a token (``https://TOKEN@host``), so it is hidden
    whole; with a password, the name stays (it says which account is used).
    """
    if ":" in userinfo:
        return f"{userinfo.partition(':')[0]}:{REDACTED}"
    return REDACTED


def _userinfo_end(rest: str) -> int:
    """Return where the user information of a URL ends (its "@"), or -1 when it has none.

    *rest* is the URL after ``scheme://``. By the rules of URLs the user information is what
    comes before the last "@" of the authority (up to the first "/", "?" or "#"). A password may
    hold those characters unencoded, though, and is then split by a parser: the rules here read
    the user information up to the last "@" before the query (a "?" or "#" after the first
    "@"), whenever that text starts as ``user:`` does (a name and a colon), or holds no "/",
    "?" or "#". ``host:8080/path@x`` is so read as a user ``host`` and a password
    ``8080/path``, which is as likely: in doubt, the text is hidden. An authority that is
    plainly a host and a port (``localhost:8000``, ``data.example.org:8443``, an IP address)
    is read by the rules of URLs: the "@" after it is in the path.
    """
    first = rest.find("@")
    if first == -1:
        return -1
    stop = len(rest)
    for ch in "?#":
        i = rest.find(ch, first)
        if i != -1:
            stop = min(stop, i)
    at = rest.rfind("@", 0, stop)
    if not any(ch in rest[:at] for ch in "/?#"):
        return at
    authority = rest[: _authority_end(rest)]
    if _USER_COLON.match(rest) and not _PLAIN_HOST_PORT.fullmatch(authority):
        return at
    return rest.rfind("@", 0, len(authority))


def _authority_end(rest: str) -> int:
    """Return where the authority of a URL ends by the rules of URLs (its first "/?#")."""
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            end = min(end, i)
    return end


def ambiguous_userinfo(url: str) -> bool:
    """Tell whether a URL parser would read the user information of *url* otherwise than shown.

    True for ``https://ann:1234/ab@host/x`` (a password holding "/", "?", "#" or "@"
    unencoded, which a parser reads as host ``ann``, port 1234 and path ``/ab@host/x``), and
    for what cannot be told from it (``https://host:8080/path@x``: a path holding "@" after a
    port). Such a URL would send part of a password to another host, or name a host in
    messages that is not the one connected to.
    """
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    return _userinfo_end(rest) != rest.rfind("@", 0, _authority_end(rest))


def _shown_params(text: str) -> str:
    """Return query or fragment parameters (``a=1&token=x;b=2``) with secret values as ``***``."""
    out = []
    for item in re.split(r"([&;])", text):
        name, eq, value = item.partition("=")
        if eq and value and _secret_param(name):
            item = f"{name}={REDACTED}"
        out.append(item)
    return "".join(out)


def shown_url(url: str) -> str:
    """Return *url* as it may be shown to people: without its secrets.

    The password of the user information (``https://user:secret@host``) becomes ``***`` (the
    user name stays, so that one can tell which account is used; a user name alone, often a
    token, becomes ``***`` whole), and so do the values of query (and fragment) parameters
    that carry credentials: presigned signatures (``X-Amz-Signature``, ``X-Amz-Credential``,
    ``X-Goog-Signature``, Azure's ``sig``), ``token``, ``access_token``, ``key`` and the like.
    A password holding "/", "?", "#" or "@" unencoded is hidden whole too, even where a URL
    parser would take part of it for a port or a path (``https://ann:1234/ab@host``), and so is
    what cannot be told from one (``https://host:8080/path@x`` shows as
    ``https://host:***@x``; a host that is plainly one, ``http://localhost:8000/a@b`` or a
    dotted name or an address with a port, keeps its path as typed). Everything else is kept
    as it is; a text that is not a URL is returned unchanged.

    Parameters
    ----------
    url
        A URL or a local path.

    Returns
    -------
    str
        The URL to put in messages, reports, logs and layer metadata. Connecting still needs
        the original.

    Examples
    --------
    >>> shown_url("https://ann:pa55@example.org/data.zarr")
    'https://ann:***@example.org/data.zarr'
    >>> shown_url("https://bucket.s3.amazonaws.com/a.zarr?X-Amz-Signature=abc&x=1")
    'https://bucket.s3.amazonaws.com/a.zarr?X-Amz-Signature=***&x=1'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = _userinfo_end(rest)
    userinfo = ""
    if at != -1:
        userinfo, rest = f"{shown_userinfo(rest[:at])}@", rest[at + 1 :]
    end = _authority_end(rest)
    hostport, tail = rest[:end], rest[end:]
    path, q, query = tail.partition("?")
    if not q:
        path, h, fragment = tail.partition("#")
    else:
        query, h, fragment = query.partition("#")
    if q:
        query = _shown_params(query)
    if h:
        fragment = _shown_params(fragment)
    return f"{scheme}://{userinfo}{hostport}{path}{q}{query}{h}{fragment}"


def redact_urls(text: str) -> str:
    """Return *text* with every URL in it as :func:`shown_url` shows it.

    A URL ends at a space or a quote; punctuation that ends a sentence after it stays.
    """
    if "://" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        core = found.rstrip(".,;:)]}!")
        return shown_url(core) + found[len(core) :]

    return _URL_IN_TEXT.sub(one, text)


class ExplorerError(Exception):
    """Base class of every error this package raises on purpose.

    Parameters
    ----------
    message
        What went wrong, naming the file, key, codec or host concerned.
    hint
        What the user can do about it; appended to the message.

    Notes
    -----
    A URL in the message or the hint is kept without its secrets (:func:`shown_url`): the
    password of ``user:password@`` and signatures or tokens in the query string read ``***``.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = redact_urls(message)
        hint = redact_urls(hint) if hint else hint
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


class OutputExistsError(ExplorerError, FileExistsError):
    """The output of a run exists, and neither resuming nor overwriting it was asked for.

    Attributes
    ----------
    incomplete
        True when it is the unfinished output of an earlier run (which resuming continues).
    """

    def __init__(self, message: str, *, hint: str | None = None, incomplete: bool = False):
        super().__init__(message, hint=hint)
        self.incomplete = incomplete


class RunFailedError(ExplorerError):
    """A run failed after it began writing; its output is left marked incomplete.

    Resuming with the same settings continues it once the cause is fixed. Errors raised before
    anything is written (invalid settings, an existing output) are other errors.
    """


class ExplorerWarning(UserWarning):
    """A problem that did not stop the work: bad-but-usable metadata, a chunk shown as fill.

    A URL in its text is kept without its secrets (:func:`shown_url`).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact_urls(a) if isinstance(a, str) else a for a in args))


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield *exc*, then what caused it (``__cause__``, else ``__context__``), each once."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def not_delivered(exc: BaseException) -> bool:
    """Tell whether *exc* says the store did not deliver the bytes (not that they are damaged).

    A server error, a dropped connection or a time-out after the retries leaves a chunk unknown:
    calling it corrupt would send the user looking for damage that is not there, and it may be
    delivered when asked again. True for a ``ChunkFetchError``, a ``ConnectionError``, a
    ``TimeoutError`` or a :class:`RemoteError` other than :class:`NotFoundError`, found in *exc*
    or in what caused it (``__cause__``, else ``__context__``).
    """
    from napari_zarr_explorer.store.remote import ChunkFetchError

    return any(
        isinstance(e, ChunkFetchError | ConnectionError | TimeoutError)
        or (isinstance(e, RemoteError) and not isinstance(e, NotFoundError))
        for e in cause_chain(exc)
    )


def error_message(exc: BaseException) -> str:
    """Return the message to show a user for *exc*.

    Parameters
    ----------
    exc
        Any exception a form, a dock, a notebook or the command line caught.

    Returns
    -------
    str
        The message of an :class:`ExplorerError` as it is (with its hint: what to do), and
        ``Type: message`` (or just ``Type`` when it has no message) for anything else. An
        ``OSError`` says what the operating system says (:func:`os_error_text`, without
        Python's ``[Errno N]``); a refused connection reads "connection refused by HOST:PORT"
        (the host when the error knows it) and, like other failed connections, ends with what
        to check. A URL in the message is shown without its secrets (:func:`shown_url`).
    """
    return redact_urls(_message(exc))


def _message(exc: BaseException) -> str:
    if isinstance(exc, ExplorerError):
        return str(exc)
    name = type(exc).__name__
    if isinstance(exc, OSError):
        peer = _peer(exc)
        if connection_refused(exc):
            by = f" by {peer}" if peer else ""
            return f"{name}: connection refused{by}. {REFUSED_HINT}"
        text = os_error_text(exc)
        if (
            isinstance(exc, ConnectionError) and not isinstance(exc, BrokenPipeError)
        ) or exc.errno in _CONNECTION_ERRNOS:
            at = f" ({peer})" if peer and peer not in text else ""
            return f"{name}: {text.rstrip('.') or 'connection failed'}{at}. {CONNECTION_HINT}"
        return f"{name}: {text}" if text else name
    text = str(exc).strip()
    return f"{name}: {text}" if text else name


def os_error_text(exc: BaseException) -> str:
    """Return what an OS error says, without Python's ``[Errno N]`` prefix.

    Parameters
    ----------
    exc
        The error. For one that wraps an ``OSError`` (aiohttp's connection errors, botocore's
        endpoint errors), the text of the first wrapped error that carries an errno.

    Returns
    -------
    str
        The error's ``strerror`` (with its file names, quoted as Python quotes them), or its
        text with the ``[Errno N]`` prefix removed when it has none. asyncio's failed connect
        ("Connect call failed (address)") gives the operating system's text for its errno.
    """
    inner = next((e for e in _wrapped(exc) if isinstance(e, OSError) and e.errno is not None), exc)
    strerror = getattr(inner, "strerror", None)
    code = getattr(inner, "errno", None)
    if (
        isinstance(strerror, str)
        and strerror.startswith("Connect call failed")
        and isinstance(code, int)
        and code in errno.errorcode
    ):
        strerror = os.strerror(code)
    if not isinstance(strerror, str) or not strerror:
        return _ERRNO_PREFIX.sub("", str(exc).strip())
    filename, filename2 = getattr(inner, "filename", None), getattr(inner, "filename2", None)
    if filename is not None:
        strerror += f": {filename!r}"
        if filename2 is not None:
            strerror += f" -> {filename2!r}"
    return strerror


def connection_refused(exc: BaseException) -> bool:
    """Tell whether *exc*, or an error it wraps, is a refused connection (``ECONNREFUSED``).

    Wrapped errors are aiohttp's ``os_error`` and botocore's ``error`` (not the ``__cause__``:
    an error raised from a refusal says something of its own).
    """
    return any(
        isinstance(e, ConnectionRefusedError)
        or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED)
        for e in _wrapped(exc)
    )


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """Yield *exc*, then the errors it carries as its reason (a few levels; each once)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 16:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        kwargs = getattr(e, "kwargs", None)
        for inner in (
            getattr(e, "os_error", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
        ):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _peer(exc: BaseException) -> str | None:
    """``host:port`` an error says it tried to reach (aiohttp's connection errors), else None."""
    for e in _wrapped(exc):
        host, port = getattr(e, "host", None), getattr(e, "port", None)
        if isinstance(host, str) and host and isinstance(port, int):
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return None
