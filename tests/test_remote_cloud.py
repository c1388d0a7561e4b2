"""s3:// and gs:// stores against real servers on loopback (moto's S3 server, the GCS emulator)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import AccessDeniedError
from napari_zarr_explorer.store import parse_location
from napari_zarr_explorer.store.remote import fetch_many, open_remote_store

FAST = {"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 10}
_AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """An environment without any AWS credentials or configuration."""
    for var in _AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return monkeypatch


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cloud")
    return testing.write_ome_image(
        root / "img.ome.zarr", shape=(2, 4, 64, 64), chunks=(1, 1, 32, 32), levels=2
    )


def _levels(url: str, **options: object) -> list[np.ndarray]:
    from napari_zarr_explorer.pyramid import open_pyramid

    return [a.compute() for a in open_pyramid(url, storage_options=dict(options) or None)]


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/img.ome.zarr"


# --------------------------------------------------------------------------------------------
# S3


def test_public_bucket_is_read_anonymously_with_aws_endpoint_url(s3_server, image, no_aws):
    url = s3_server.upload(image, s3_server.public_bucket, _prefix())
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    here = _levels(str(image))
    there = _levels(url)
    for a, b in zip(there, here, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reader_on_public_bucket(s3_server, image, no_aws):
    pytest.importorskip("napari_zarr_explorer._reader")
    import npe2

    npe2.PluginManager.instance().discover()
    url = s3_server.upload(image, s3_server.public_bucket, _prefix())
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    layers = npe2.read([url], stack=False, plugin_name="napari-zarr-explorer")
    local = npe2.read([str(image)], stack=False, plugin_name="napari-zarr-explorer")
    assert [lt for *_, lt in layers] == [lt for *_, lt in local]
    data = layers[0][0]
    ldata = local[0][0]
    np.testing.assert_array_equal(np.asarray(data[-1]), np.asarray(ldata[-1]))


def test_private_bucket_without_credentials_is_access_denied(s3_server, image, no_aws):
    url = s3_server.upload(image, s3_server.private_bucket, _prefix())
    loc = parse_location(url, {"endpoint_url": s3_server.endpoint_url, **FAST})
    store = open_remote_store(loc)
    with pytest.raises(AccessDeniedError) as info:
        fetch_many(store, ["zarr.json"])
    msg = str(info.value)
    assert "Access denied" in msg
    assert "AWS_ACCESS_KEY_ID" in msg
    assert url in msg
    # the way to pass options, both where they are given as a flag and as an argument
    assert "--storage-options" in msg and "storage_options=" in msg


def test_private_bucket_access_denied_on_the_command_line_names_the_flag(
    s3_server, image, no_aws, capsys
):
    from napari_zarr_explorer.cli import main

    url = s3_server.upload(image, s3_server.private_bucket, _prefix())
    options = json.dumps({"endpoint_url": s3_server.endpoint_url, **FAST})
    assert main(["inspect", url, "--storage-options", options]) == 1
    err = capsys.readouterr().err
    assert "Access denied" in err and "AWS_ACCESS_KEY_ID" in err
    assert "--storage-options" in err


def test_private_bucket_with_credentials_from_environment(s3_server, image, no_aws):
    url = s3_server.upload(image, s3_server.private_bucket, _prefix())
    for key, value in s3_server.credentials_env.items():
        no_aws.setenv(key, value)
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    here = _levels(str(image))
    for a, b in zip(_levels(url), here, strict=True):
        np.testing.assert_array_equal(a, b)


def test_refused_anonymous_request_switches_to_credentials(s3_server, image, no_aws):
    # Credentials that the quick check does not see (here: an empty environment is given to
    # it) are still found by the standard chain once the anonymous request is refused.
    url = s3_server.upload(image, s3_server.private_bucket, _prefix())
    for key, value in s3_server.credentials_env.items():
        no_aws.setenv(key, value)
    store = open_remote_store(
        parse_location(url, {"endpoint_url": s3_server.endpoint_url, **FAST}), environ={}
    )
    docs = fetch_many(store, ["zarr.json", "0/zarr.json"])
    assert docs["zarr.json"] is not None
    assert docs["0/zarr.json"] is not None


def test_private_bucket_with_explicit_storage_options(s3_server, image, no_aws):
    url = s3_server.upload(image, s3_server.private_bucket, _prefix())
    env = s3_server.credentials_env
    options = {
        "endpoint_url": s3_server.endpoint_url,
        "key": env["AWS_ACCESS_KEY_ID"],
        "secret": env["AWS_SECRET_ACCESS_KEY"],
    }
    here = _levels(str(image))
    for a, b in zip(_levels(url, **options), here, strict=True):
        np.testing.assert_array_equal(a, b)


def test_s3_missing_chunk_is_fill_value(s3_server, tmp_path, no_aws):
    data = np.full((32, 32), 5, dtype="uint8")
    local = testing.write_array(tmp_path / "a.zarr", data, chunks=(16, 16), fill_value=1)
    (local / "c" / "1" / "1").unlink()
    url = s3_server.upload(local, s3_server.public_bucket, f"t-{uuid.uuid4().hex[:8]}/a.zarr")
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    (out,) = _levels(url)
    assert (out[16:, 16:] == 1).all()
    assert (out[:16] == 5).all()


def test_s3_store_lists_keys(s3_server, image, no_aws):
    url = s3_server.upload(image, s3_server.public_bucket, _prefix())
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    store = open_remote_store(parse_location(url))
    assert store.supports_listing
    from zarr.core.sync import sync

    async def keys() -> list[str]:
        return [k async for k in store.list_prefix("")]

    listed = sync(keys())
    assert "zarr.json" in listed
    assert "0/zarr.json" in listed


def test_inspect_on_s3_matches_local(s3_server, image, no_aws):
    report = pytest.importorskip("napari_zarr_explorer.report")
    url = s3_server.upload(image, s3_server.public_bucket, _prefix())
    no_aws.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    here = report.inspect(str(image))
    there = report.inspect(url)
    assert not there.errors
    assert there.listed
    assert [n.path for n in there.nodes] == [n.path for n in here.nodes]
    for a, b in zip(there.nodes, here.nodes, strict=True):
        assert getattr(a, "shape", None) == getattr(b, "shape", None)
        assert getattr(a, "stored_bytes", None) == getattr(b, "stored_bytes", None)


# --------------------------------------------------------------------------------------------
# GCS


def test_gcs_through_storage_emulator_host(gcs_server, image, monkeypatch):
    url = gcs_server.upload(image, _prefix())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    here = _levels(str(image))
    for a, b in zip(_levels(url), here, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gcs_with_endpoint_in_storage_options_and_gcs_scheme(gcs_server, image, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    url = gcs_server.upload(image, _prefix())
    alias = url.replace("gs://", "gcs://")
    here = _levels(str(image))
    there = _levels(alias, endpoint_url=gcs_server.endpoint_url, token="anon")
    for a, b in zip(there, here, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gcs_sharded_array(gcs_server, tmp_path, monkeypatch):
    # The emulator ignores suffix Range requests (it sends the whole object): still correct.
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    local = testing.write_array(tmp_path / "s.zarr", data, chunks=(8, 8), shards=(32, 32))
    url = gcs_server.upload(local, f"t-{uuid.uuid4().hex[:8]}/s.zarr")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    (out,) = _levels(url)
    np.testing.assert_array_equal(out, data)


def test_reader_and_inspect_on_gcs(gcs_server, image, monkeypatch):
    pytest.importorskip("napari_zarr_explorer._reader")
    report = pytest.importorskip("napari_zarr_explorer.report")
    import npe2

    npe2.PluginManager.instance().discover()
    url = gcs_server.upload(image, _prefix())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    layers = npe2.read([url], stack=False, plugin_name="napari-zarr-explorer")
    local = npe2.read([str(image)], stack=False, plugin_name="napari-zarr-explorer")
    assert [lt for *_, lt in layers] == [lt for *_, lt in local]
    np.testing.assert_array_equal(np.asarray(layers[0][0][-1]), np.asarray(local[0][0][-1]))
    there = report.inspect(url)
    here = report.inspect(str(image))
    assert not there.errors
    assert [n.path for n in there.nodes] == [n.path for n in here.nodes]
