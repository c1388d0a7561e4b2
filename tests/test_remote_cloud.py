"""s3:// and gs:// stores against real servers on loopback (moto's S3 server, the GCS emulator)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.errors import AccessDeniedError, ExplorerWarning
from napari_zarr_explorer.store import parse_location
from napari_zarr_explorer.store.remote import ChunkFetchError, fetch_many, open_remote_store
from servers import AWS_VARS

FAST = {"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 10}


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """An environment without any AWS credentials or configuration."""
    for var in AWS_VARS:
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
# S3: refused is not missing


def _bucket_refusing(s3_server, *denied: str) -> str:
    """A new bucket whose policy lets anyone read objects (not list), but not *denied* keys.

    A key under a denied pattern is answered 403 whether it exists or not, as S3 answers every
    missing key of a bucket that does not allow ``s3:ListBucket``.
    """
    name = f"refusing-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    statements = [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{name}/*"],
        }
    ]
    if denied:
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{name}/{key}" for key in denied],
            }
        )
    client.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )
    return name


def _says_refused_not_missing(text: str, bucket: str) -> None:
    assert "Access denied" in text and "HTTP 403" in text, text
    assert f"bucket {bucket!r}" in text, text
    assert "policy" in text and "AWS_ACCESS_KEY_ID" in text, text  # what to do
    assert "not found" not in text.lower() and "does not exist" not in text.lower(), text


def test_a_refused_chunk_is_not_shown_as_a_missing_one(s3_server, tmp_path, no_aws):
    """A chunk the bucket refuses (403) is stored: it shows as the fill value with a warning
    saying access was refused, never silently as if it were missing (S3's 404 NoSuchKey)."""
    from napari_zarr_explorer.pyramid import open_pyramid

    data = np.full((32, 32), 5, dtype="uint8")
    local = testing.write_array(tmp_path / "a.zarr", data, chunks=(16, 16), fill_value=1)
    (local / "c" / "0" / "1").unlink()  # really missing: the fill value, said by a 404
    bucket = _bucket_refusing(s3_server, "img/a.zarr/c/1/*")
    url = s3_server.upload(local, bucket, "img/a.zarr")
    options = {"endpoint_url": s3_server.endpoint_url, **FAST}
    (level,) = open_pyramid(url, storage_options=options)
    with pytest.warns(ExplorerWarning) as record:
        out = level.compute()
    assert (out[:16, :16] == 5).all() and (out[:16, 16:] == 1).all() and (out[16:] == 1).all()
    texts = [str(w.message) for w in record if issubclass(w.category, ExplorerWarning)]
    assert any("c/1/0" in t for t in texts) and any("c/1/1" in t for t in texts), texts
    assert not any("c/0/1" in t for t in texts), texts
    for text in texts:
        _says_refused_not_missing(text, bucket)

    store = open_remote_store(parse_location(url, options))
    assert fetch_many(store, ["zarr.json", "c/0/1"])["c/0/1"] is None
    with pytest.raises(ChunkFetchError) as info:
        fetch_many(store, ["c/1/0"])
    assert isinstance(info.value.__cause__, AccessDeniedError)
    _says_refused_not_missing(str(info.value), bucket)
    assert "img/a.zarr/c/1/0" in str(info.value)


def test_a_refused_metadata_document_is_access_denied_not_not_found(s3_server, image, no_aws):
    from napari_zarr_explorer.errors import NotFoundError
    from napari_zarr_explorer.pyramid import open_pyramid

    bucket = _bucket_refusing(s3_server, "img.ome.zarr/1/zarr.json")
    url = s3_server.upload(image, bucket, "img.ome.zarr")
    options = {"endpoint_url": s3_server.endpoint_url, **FAST}
    with pytest.raises(AccessDeniedError) as info:
        open_pyramid(url, storage_options=options)
    assert not isinstance(info.value, NotFoundError)
    _says_refused_not_missing(str(info.value), bucket)
    assert f"{url}/1/zarr.json" in str(info.value)


def test_an_image_whose_labels_the_bucket_refuses_opens_and_says_so(s3_server, image, no_aws):
    """The labels group is looked for in every image; a bucket that does not allow listing
    refuses it when absent. The image opens, and a warning says the labels were refused."""
    from napari_zarr_explorer.layers import open_layers

    bucket = _bucket_refusing(s3_server, "img.ome.zarr/labels/*")
    url = s3_server.upload(image, bucket, "img.ome.zarr")
    with pytest.warns(ExplorerWarning, match="labels skipped") as record:
        layers = open_layers(url, storage_options={"endpoint_url": s3_server.endpoint_url, **FAST})
    assert [kind for *_, kind in layers] == ["image"]
    text = next(str(w.message) for w in record if "labels skipped" in str(w.message))
    _says_refused_not_missing(text, bucket)
    assert f"{url}/labels/zarr.json" in text


def test_the_size_of_a_key_in_a_bucket(s3_server, tmp_path, no_aws):
    """Missing (404) is FileNotFoundError; refused (403) is AccessDeniedError, never a size of
    None or "missing"."""
    from zarr.core.sync import sync

    data = np.full((32, 32), 5, dtype="uint8")
    local = testing.write_array(tmp_path / "a.zarr", data, chunks=(16, 16), fill_value=1)
    (local / "c" / "0" / "1").unlink()
    bucket = _bucket_refusing(s3_server)
    url = s3_server.upload(local, bucket, "a.zarr")
    env = s3_server.credentials_env
    signed = open_remote_store(
        parse_location(
            url,
            {
                "endpoint_url": s3_server.endpoint_url,
                "key": env["AWS_ACCESS_KEY_ID"],
                "secret": env["AWS_SECRET_ACCESS_KEY"],
                **FAST,
            },
        )
    )
    assert sync(signed.getsize("c/0/0")) == (local / "c" / "0" / "0").stat().st_size
    with pytest.raises(FileNotFoundError):
        sync(signed.getsize("c/0/1"))
    # Read anonymously, the emulator refuses HEAD requests (S3 itself authorises them as GET):
    # a refusal, after reads have worked, is still a refusal
    anonymous = open_remote_store(
        parse_location(url, {"endpoint_url": s3_server.endpoint_url, "anon": True, **FAST})
    )
    assert fetch_many(anonymous, ["zarr.json"])["zarr.json"] is not None
    with pytest.raises(AccessDeniedError) as info:
        sync(anonymous.getsize("c/0/0"))
    assert not isinstance(info.value, FileNotFoundError)
    _says_refused_not_missing(str(info.value), bucket)


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


def test_the_size_of_a_missing_key_on_gcs_is_file_not_found(gcs_server, image, monkeypatch):
    from zarr.core.sync import sync

    url = gcs_server.upload(image, _prefix())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    store = open_remote_store(parse_location(url, FAST))
    assert sync(store.getsize("zarr.json")) == (image / "zarr.json").stat().st_size
    with pytest.raises(FileNotFoundError):
        sync(store.getsize("0/c/9/9/9/9"))


@pytest.mark.parametrize("shards", [None, (16, 32)], ids=["chunks", "shards"])
def test_a_chunk_map_says_the_bucket_refused_the_chunks_it_could_not_check(
    s3_server, tmp_path, no_aws, shards
):
    """Chunks (or a shard) the bucket refuses are unknown and the map says they were refused,
    whichever read met the refusal (the chunks decoded with verify, a shard's index)."""
    from napari_zarr_explorer.chunks import chunk_map

    data = np.full((32, 32), 5, dtype="uint8")
    kwargs = {"shards": shards} if shards else {}
    local = testing.write_array(tmp_path / "a.zarr", data, chunks=(16, 16), **kwargs)
    bucket = _bucket_refusing(s3_server, "img/a.zarr/c/1/*")
    url = s3_server.upload(local, bucket, "img/a.zarr")
    cmap = chunk_map(
        url, verify=True, storage_options={"endpoint_url": s3_server.endpoint_url, **FAST}
    )
    assert cmap.unanswered >= 1 and cmap.chunks_corrupt == 0 and not cmap.verified
    (warning,) = cmap.warnings
    assert "the store refused access to" in warning and "failed to answer" not in warning, warning
    _says_refused_not_missing(warning, bucket)
