"""Credentials in URLs (``user:password@``, presigned signatures) are used, never shown.

Messages, warnings, logs, reports (text, JSON, HTML), progress messages and the reader's layers
name a URL with its password and its signatures as ``***``; the store still connects with them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from napari_zarr_explorer import chunk_map, estimate, inspect, validate
from napari_zarr_explorer.chunks import PRESENT
from napari_zarr_explorer.errors import (
    AccessDeniedError,
    ExplorerError,
    ExplorerWarning,
    RemoteError,
    error_message,
    redact_urls,
    shown_url,
)
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.recompress import recompress
from napari_zarr_explorer.store import parse_location
from napari_zarr_explorer.testing import write_array, write_ome_image

SECRET = "s3cr3t-Pa55"
FAST = {"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 10}
PRESIGNED = (
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential=AKIA{SECRET}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    f"&X-Amz-Signature={SECRET}"
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_user(url: str, password: str = SECRET) -> str:
    return url.replace("://", f"://ann:{password}@", 1)


def _basic(password: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"ann:{password}".encode()).decode()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NZE_REMOTE_RETRIES": "1", "NZE_REMOTE_BACKOFF": "0"},
    )


@pytest.fixture
def private(http_server):
    """The loopback server, answering only requests with ann's password (basic auth)."""
    write_ome_image(http_server.root / "img.ome.zarr", shape=(1, 2, 32, 32), levels=2)
    data = np.arange(400, dtype="uint16").reshape(20, 20)
    write_array(http_server.root / "s.zarr", data, chunks=(5, 5), shards=(10, 10), fill_value=0)
    http_server.require_header("Authorization", _basic())
    return http_server


# -- the shown form -----------------------------------------------------------------------------


def test_shown_url_hides_the_password_and_keeps_the_rest():
    assert shown_url(f"https://ann:{SECRET}@example.org:8443/a/b.zarr") == (
        "https://ann:***@example.org:8443/a/b.zarr"
    )
    # a user name alone may be a token (https://TOKEN@host): shown as ***
    assert shown_url(f"https://{SECRET}@example.org/a.zarr") == "https://***@example.org/a.zarr"
    assert shown_url("/data/ann:x@y.zarr") == "/data/ann:x@y.zarr"  # not a URL
    assert shown_url(shown_url(f"s3://k:{SECRET}@b/x")) == "s3://k:***@b/x"


def test_shown_url_hides_signatures_and_tokens_in_the_query_string():
    shown = shown_url(f"https://bucket.s3.amazonaws.com/a.zarr{PRESIGNED}")
    assert SECRET not in shown
    assert "X-Amz-Signature=***" in shown and "X-Amz-Credential=***" in shown
    assert "X-Amz-Expires=3600" in shown  # what is not secret stays, to tell URLs apart
    for name in ("X-Goog-Signature", "sig", "token", "access_token", "key", "X-Custom-Token"):
        assert shown_url(f"https://h/a.zarr?v=1&{name}={SECRET}#f") == (
            f"https://h/a.zarr?v=1&{name}=***#f"
        )


def test_urls_in_a_text_are_shown_without_secrets():
    text = f"reading 'https://ann:{SECRET}@h/a.zarr/zarr.json' and https://h/b{PRESIGNED}."
    out = redact_urls(text)
    assert SECRET not in out
    assert out.startswith("reading 'https://ann:***@h/a.zarr/zarr.json' and https://h/b?")
    assert out.endswith("X-Amz-Signature=***.")


def test_location_connects_with_the_password_and_shows_it_as_stars():
    loc = parse_location(f"https://ann:{SECRET}@example.org/data.zarr", {"key": SECRET})
    assert SECRET in loc.url  # what connecting uses
    for text in (str(loc), repr(loc), loc.shown, loc.name, f"{loc}"):
        assert SECRET not in text
    assert str(loc) == "https://ann:***@example.org/data.zarr"
    assert loc.name == "data.zarr"
    # the shown form, opened again in this process, has its password back
    assert parse_location(f"{loc.shown}/0").url == f"{loc.url}/0"


def test_a_token_in_place_of_the_user_is_hidden_and_connects_again():
    loc = parse_location(f"https://{SECRET}@tokens.example.org/data.zarr")
    assert SECRET in loc.url and SECRET not in str(loc) + repr(loc)
    assert str(loc) == "https://***@tokens.example.org/data.zarr"
    assert parse_location(f"{loc.shown}/0").url == f"{loc.url}/0"
    # another host never gets it
    assert (
        parse_location("https://***@other.example.org/a").url == "https://***@other.example.org/a"
    )


def test_explorer_errors_and_warnings_never_carry_a_password():
    url = f"https://ann:{SECRET}@example.org/a.zarr"
    err = ExplorerError(f"{url}: broken.", hint=f"Open {url}/0 instead.")
    for text in (str(err), err.message, err.hint or "", error_message(err), repr(err)):
        assert SECRET not in text
    assert SECRET not in error_message(OSError(f"cannot read {url}"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(f"{url}: odd metadata", ExplorerWarning, stacklevel=1)
    assert str(caught[0].message) == "https://ann:***@example.org/a.zarr: odd metadata"


# -- a server that wants the password -----------------------------------------------------------


def test_an_authenticated_read_works_and_its_reports_show_no_password(private):
    url = _with_user(f"{private.url}/img.ome.zarr")
    report = inspect(url, storage_options=FAST)
    assert {"", "0", "1"} <= {n.path for n in report.nodes}
    assert report.url == _with_user(f"{private.url}/img.ome.zarr", "***")
    for text in (str(report), json.dumps(report.to_dict()), report._repr_html_(), repr(report)):
        assert SECRET not in text
    checked = validate(url, storage_options=FAST)
    assert checked.valid, str(checked)
    cmap = chunk_map(_with_user(f"{private.url}/s.zarr"), storage_options=FAST)
    assert not cmap.problems and (cmap.state == PRESENT).all()  # shard indexes read
    est = estimate(_with_user(f"{private.url}/s.zarr"), "", ["zstd:1"], storage_options=FAST)
    for rep in (checked, cmap, est):
        for text in (str(rep), json.dumps(rep.to_dict()), rep._repr_html_()):
            assert SECRET not in text


def test_a_wrong_password_is_refused_without_showing_either(private):
    url = _with_user(f"{private.url}/img.ome.zarr", "wrong-" + SECRET)
    with pytest.raises(AccessDeniedError) as info:
        inspect(url, storage_options=FAST)
    message = error_message(info.value)
    assert "HTTP 401" in message and "ann:***@127.0.0.1" in message
    assert SECRET not in message and SECRET not in repr(info.value)


def test_the_reader_names_layers_and_metadata_without_the_password(private):
    url = _with_user(f"{private.url}/img.ome.zarr")
    layers = open_layers(url, storage_options=FAST)
    assert layers
    for data, kwargs, _ in layers:
        assert SECRET not in repr(kwargs)
        assert kwargs["metadata"]["source_url"] == _with_user(f"{private.url}/img.ome.zarr", "***")
        assert np.asarray(data[0][0, 0, :2, :2]).shape == (2, 2)  # pixels read with the password


def test_the_layer_metadata_url_opens_again_with_the_password(private):
    url = _with_user(f"{private.url}/img.ome.zarr")
    (_, kwargs, _), *_ = open_layers(url, storage_options=FAST)
    again = inspect(kwargs["metadata"]["source_url"], storage_options=FAST)
    assert {"", "0", "1"} <= {n.path for n in again.nodes}


def test_recompress_from_a_url_with_a_password(private, tmp_path):
    url = _with_user(f"{private.url}/img.ome.zarr")
    events = []
    report = recompress(
        url,
        tmp_path / "out.zarr",
        compressor="zstd:1",
        progress=events.append,
        storage_options=FAST,
    )
    assert report.ok, str(report)
    assert events
    for text in (
        str(report),
        json.dumps(report.to_dict()),
        report._repr_html_(),
        *(str(e.message) for e in events),
    ):
        assert SECRET not in text
    written = b"".join(p.read_bytes() for p in (tmp_path / "out.zarr").rglob("*") if p.is_file())
    assert SECRET.encode() not in written


def test_the_command_line_on_a_server_that_wants_the_password(private):
    url = _with_user(f"{private.url}/img.ome.zarr")
    ok = _run("inspect", "--json", url)
    assert ok.returncode == 0, ok.stderr
    assert SECRET not in ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["url"] == _with_user(f"{private.url}/img.ome.zarr", "***")
    wrong = _with_user(f"{private.url}/img.ome.zarr", "wrong-" + SECRET)
    for args in (["inspect", wrong], ["validate", wrong], ["validate", "--json", wrong]):
        proc = _run(*args)
        assert proc.returncode != 0, args
        assert "401" in proc.stdout + proc.stderr
        assert SECRET not in proc.stdout + proc.stderr, args
    missing = _with_user(f"{private.url}/nothing.zarr")
    for args in (["inspect", missing], ["chunks", _with_user(f"{private.url}/nope.zarr")]):
        proc = _run(*args)
        assert proc.returncode != 0, args
        assert SECRET not in proc.stdout + proc.stderr, args


# -- nothing listening --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "validate", "chunks"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_command_line_on_a_refused_connection(command, as_json):
    url = f"https://ann:{SECRET}@127.0.0.1:{_closed_port()}/data.zarr"
    proc = _run(command, *(["--json"] if as_json else []), url)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "refused" in out.lower()
    assert SECRET not in out
    assert "ann:***@127.0.0.1" in out


def test_a_refused_connection_in_python_and_in_the_logs(caplog):
    url = f"https://ann:{SECRET}@127.0.0.1:{_closed_port()}/data.zarr"
    with (
        caplog.at_level(logging.DEBUG, logger="napari_zarr_explorer"),
        pytest.raises(RemoteError) as info,
    ):
        inspect(url, storage_options=FAST)
    assert "Connection refused" in str(info.value)
    assert SECRET not in error_message(info.value) and SECRET not in repr(info.value)
    assert caplog.records  # the retry was logged
    assert SECRET not in caplog.text


def test_a_presigned_url_is_refused_without_showing_its_signature():
    url = f"https://127.0.0.1:{_closed_port()}/data.zarr{PRESIGNED}"
    with pytest.raises(ExplorerError) as info:
        inspect(url, storage_options=FAST)
    assert "query string" in str(info.value)
    assert SECRET not in error_message(info.value)
    proc = _run("inspect", url)
    assert proc.returncode == 1
    assert "X-Amz-Signature=***" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_an_s3_url_with_a_presigned_query_string_names_no_signature(
    s3_server, tmp_path, monkeypatch
):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    image = write_ome_image(tmp_path / "img.ome.zarr", shape=(1, 2, 16, 16), levels=1)
    url = s3_server.upload(image, s3_server.private_bucket, "presigned/img.ome.zarr")
    with pytest.raises(AccessDeniedError) as info:
        inspect(f"{url}{PRESIGNED}", storage_options={"endpoint_url": s3_server.endpoint_url})
    message = error_message(info.value)
    assert "Access denied" in message and "X-Amz-Signature=***" in message
    assert SECRET not in message


def test_a_password_with_a_quote_is_hidden_in_any_text():
    """A quote is allowed in a password: the URL in a text runs to its last '@' all the same."""
    for password in ("pa'ss", 'pa"ss'):
        url = f"https://ann:{password}@example.org/a.zarr"
        assert shown_url(url) == "https://ann:***@example.org/a.zarr"
        for text in (f"{url}: HTTP 404", f"reading {url} failed", f"'{url}' is not a store"):
            out = redact_urls(text)
            assert password not in out and "ann:***@example.org/a.zarr" in out, out
            assert password not in str(ExplorerError(text))


def test_a_password_with_unencoded_url_characters_is_hidden():
    """A password holding '/', '?' or '#' unencoded cannot connect, but is never echoed."""
    for password in ("pa/ss", "pa?ss", "pa#ss"):
        url = f"https://ann:{password}@example.org/a.zarr"
        assert shown_url(url) == "https://ann:***@example.org/a.zarr", shown_url(url)
        assert password not in redact_urls(f"reading {url} failed")
    # what only looks like it keeps its place: an '@' in a path or a query
    for url in (
        "s3://bucket/user@example.com/d.zarr",
        "http://h/a.zarr?email=a@b.org",
        "https://host:8080/a.zarr",
        # a host that is plainly one (a dot, localhost, an address) and a port: '@' in the path
        "http://localhost:8000/img@2x.zarr",
        "https://data.example.org:8443/v@2/a.zarr",
        "http://127.0.0.1:9000/bucket/a@b.zarr",
        "http://[::1]:8000/a@b.zarr",
    ):
        assert shown_url(url) == url and redact_urls(f"see {url}.") == f"see {url}."


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/img@2x.zarr",
        "https://data.example.org:8443/v@2/a.zarr",
        "http://127.0.0.1:9000/bucket/a@b.zarr",
    ],
)
def test_a_path_holding_at_after_a_real_host_and_port_opens_as_typed(url):
    """``python -m http.server`` serves ``img@2x.zarr`` at ``http://localhost:8000/...``: the
    URL is what it says, not a password, and is neither refused nor hidden."""
    loc = parse_location(url)
    assert loc.url == url and loc.shown == url


def test_a_store_at_a_root_is_named_by_its_host():
    assert parse_location("s3://bucket").name == "bucket"
    assert parse_location(f"https://ann:{SECRET}@example.org:8443").name == "example.org:8443"
    assert parse_location("https://example.org/a/img.zarr").name == "img.zarr"


# -- every form of credential, in every text -----------------------------------------------------

#: URLs carrying a secret in a form a URL parser may split elsewhere, with the secret each
#: carries and the form it is shown in. The secrets are all different from any other part.
TRICKY_URLS = [
    # numeric passwords, alone and followed by '/', '?' or '#' (read as a port and a path)
    ("https://ann:98765@example.org/a.zarr", "98765", "https://ann:***@example.org/a.zarr"),
    ("https://ann:98765/xyz@example.org/a.zarr", "98765/xyz", "https://ann:***@example.org/a.zarr"),
    ("https://ann:98765?xyz@example.org/a.zarr", "98765?xyz", "https://ann:***@example.org/a.zarr"),
    ("https://ann:98765#xyz@example.org/a.zarr", "98765#xyz", "https://ann:***@example.org/a.zarr"),
    ("https://ann:98765/@example.org/a.zarr", "98765/", "https://ann:***@example.org/a.zarr"),
    (
        "http://ann:98765/xyz@127.0.0.1:8080/a.zarr",
        "98765/xyz",
        "http://ann:***@127.0.0.1:8080/a.zarr",
    ),
    ("s3://AKIAKEY:98765/xyz@bucket/a.zarr", "98765/xyz", "s3://AKIAKEY:***@bucket/a.zarr"),
    # '/', '?', '#' and '@' unencoded in other passwords, an empty user name
    (
        "https://ann:pq/rs?tu#vw@example.org/a.zarr",
        "pq/rs?tu#vw",
        "https://ann:***@example.org/a.zarr",
    ),
    ("https://ann:pq@rs/tu@example.org/a.zarr", "pq@rs/tu", "https://ann:***@example.org/a.zarr"),
    ("https://:pq/rs@example.org/a.zarr", "pq/rs", "https://:***@example.org/a.zarr"),
    # a token in place of the user name
    (
        "https://ghp_T0kenT0ken@example.org/a.zarr",
        "ghp_T0kenT0ken",
        "https://***@example.org/a.zarr",
    ),
    (
        "https://T0k.en-~+=@example.org:8443/a.zarr",
        "T0k.en-~+=",
        "https://***@example.org:8443/a.zarr",
    ),
    # tokens in the query string and the fragment, with both separators
    (
        "https://example.org/a.zarr?token=T0KVAL&v=1",
        "T0KVAL",
        "https://example.org/a.zarr?token=***&v=1",
    ),
    (
        "https://example.org/a.zarr?v=1;access_token=T0KVAL",
        "T0KVAL",
        "https://example.org/a.zarr?v=1;access_token=***",
    ),
    (
        "https://example.org/a.zarr#access_token=T0KVAL&v=1",
        "T0KVAL",
        "https://example.org/a.zarr#access_token=***&v=1",
    ),
    (
        "https://example.org/a.zarr?v=1#id_token=T0KVAL",
        "T0KVAL",
        "https://example.org/a.zarr?v=1#id_token=***",
    ),
    (
        "https://ann:98765?xyz@example.org/a.zarr?sig=T0KVAL",
        "T0KVAL",
        "https://ann:***@example.org/a.zarr?sig=***",
    ),
]


def _secret_parts(secret: str) -> list[str]:
    """The secret and every piece of it a parser could cut at '/', '?', '#' or '@'."""
    import re

    return [secret, *(p for p in re.split(r"[/?#@]", secret) if len(p) >= 3)]


@pytest.mark.parametrize(
    ("url", "secret", "shown"), TRICKY_URLS, ids=[u for u, _, _ in TRICKY_URLS]
)
def test_no_form_of_credential_is_shown(url, secret, shown, caplog):
    assert shown_url(url) == shown
    texts = [
        shown_url(url),
        redact_urls(f"reading {url} failed"),
        redact_urls(f"reading '{url}/zarr.json': HTTP 404."),
        redact_urls(f'("{url}", {url})'),
        str(ExplorerError(f"{url}: broken", hint=f"open {url}/0")),
        error_message(OSError(f"cannot read {url}")),
        error_message(ValueError(url)),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(f"odd metadata at {url}", ExplorerWarning, stacklevel=1)
    texts.append(str(caught[0].message))
    from napari_zarr_explorer.store.remote import logger  # the package's only logger

    with caplog.at_level(logging.DEBUG, logger="napari_zarr_explorer"):
        logger.debug("read %s", url)
        try:
            raise OSError(f"failed for {url}")
        except OSError:
            logger.debug("failed", exc_info=True)
    texts.append(caplog.text)
    for text in texts:
        for part in _secret_parts(secret):
            assert part not in text, (part, text)


@pytest.mark.parametrize(
    "url",
    [
        "https://ann:98765/xyz@127.0.0.1:1/a.zarr",
        "https://ann:pq/rs@127.0.0.1:1/a.zarr",
        "s3://AKIAKEY:98765/xyz@bucket/a.zarr",
        "https://host:8080/path@v2/a.zarr",
    ],
)
def test_a_url_whose_password_a_parser_would_split_is_refused_without_showing_it(url):
    """Read by the rules of URLs, ``ann:98765`` is a host and a port, and the rest of the
    password a path, sent to that host: such a URL is refused, before any connection, with
    how to write it (a path holding '@' after a port reads the same, and is refused alike)."""
    with pytest.raises(ExplorerError) as info:
        parse_location(url)
    message = error_message(info.value)
    assert "%40" in message and "%2F" in message, message
    for part in ("98765", "xyz", "pq/rs", "8080/path"):
        assert part not in message, message
    proc = _run("inspect", url)
    assert proc.returncode == 1
    assert "%2F" in proc.stderr, proc.stderr
    for part in ("98765", "xyz", "pq/rs"):
        assert part not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIDEXAMPLE:Sup3rS3cret@bucket/a.zarr",
        "gs://svc:Sup3rS3cret@bucket/a.zarr",
        "s3://Sup3rS3cret@bucket/a.zarr",
    ],
)
def test_credentials_in_a_bucket_url_are_refused_without_showing_them(url):
    """An s3:// or gs:// URL has no user information: fsspec would take ``KEY:SECRET@bucket``
    for the bucket's name and send it, and the refusal would quote it. Refused before any
    request, saying where credentials go."""
    with pytest.raises(ExplorerError) as info:
        parse_location(url)
    message = error_message(info.value)
    assert "Sup3rS3cret" not in message, message
    assert "credentials" in message and "storage_options=" in message, message
    scheme = url.partition("://")[0]
    assert ("AWS_ACCESS_KEY_ID" if scheme == "s3" else "GOOGLE_APPLICATION_CREDENTIALS") in message
    proc = _run("inspect", url)
    assert proc.returncode == 1 and "Sup3rS3cret" not in proc.stdout + proc.stderr
