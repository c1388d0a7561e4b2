"""The inspect, chunks and estimate sub-commands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_zarr_explorer.testing import write_array, write_ome_image


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        # Piped output is laid out the same whatever the terminal: a narrow one must not matter.
        env={**os.environ, "COLUMNS": "20"},
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    image = write_ome_image(root / "img.ome.zarr", shape=(2, 4, 32, 32), levels=2, labels=True)
    data = np.zeros((20, 20), dtype="uint16")
    data[:10] = 5
    v2 = write_array(root / "v2.zarr", data, zarr_format=2, chunks=(5, 5), fill_value=0)
    bad = v2 / "0.1"
    bad.write_bytes(bad.read_bytes()[:5])
    sharded = write_array(root / "s.zarr", data, chunks=(5, 5), shards=(10, 10), fill_value=0)
    return {"image": image, "v2": v2, "sharded": sharded, "root": root}


def test_inspect_json(stores):
    proc = _run("inspect", str(stores["image"]), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["url"] == str(stores["image"])
    nodes = {n["path"]: n for n in doc["nodes"]}
    assert nodes[""]["kind"] == "group" and "attributes" in nodes[""]
    arr = nodes["0"]
    assert arr["kind"] == "array"
    for key in (
        "zarr_format",
        "shape",
        "dtype",
        "chunk_shape",
        "shard_shape",
        "codecs",
        "fill_value",
        "dimension_names",
        "bytes_stored",
        "attributes",
    ):
        assert key in arr
    assert arr["shape"] == [2, 4, 32, 32]


def test_inspect_json_sharded(stores):
    doc = json.loads(_run("inspect", str(stores["sharded"]), "--json").stdout)
    (arr,) = doc["nodes"]
    assert arr["shard_shape"] == [10, 10] and arr["chunk_shape"] == [5, 5]
    assert arr["codecs"][0]["name"] == "sharding_indexed"
    assert arr["codecs"][0]["configuration"]["codecs"][0]["name"] == "bytes"


def test_inspect_human(stores):
    proc = _run("inspect", str(stores["root"]))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "img.ome.zarr" in out and "OME image 0.5" in out
    assert "shards 10x10" in out and "ratio" in out


def test_inspect_reports_bad_node_and_keeps_going(stores, tmp_path):
    root = tmp_path / "h.zarr"
    write_array(root, np.ones(4, dtype="uint8"), name="good")
    (root / "bad").mkdir()
    (root / "bad" / "zarr.json").write_text("{not json")
    proc = _run("inspect", str(root), "--json")
    assert proc.returncode == 3
    nodes = {n["path"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["good"]["kind"] == "array"
    assert nodes["bad"]["kind"] == "error" and "bad/zarr.json" in nodes["bad"]["errors"][0]
    human = _run("inspect", str(root))
    assert human.returncode == 3 and "bad/zarr.json" in human.stdout


def test_inspect_missing_path(tmp_path):
    proc = _run("inspect", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert "nope" in proc.stderr


def test_chunks_json_and_verify(stores):
    proc = _run("chunks", str(stores["v2"]), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["chunk_shape"] == [5, 5] and doc["shard_shape"] is None
    assert doc["chunks_total"] == 16
    assert doc["chunks_present"] == 8 and doc["chunks_missing"] == 8
    assert doc["chunks_corrupt"] == []
    assert doc["bytes_stored"] > 0
    proc = _run("chunks", str(stores["v2"]), "--verify", "--json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["chunks_corrupt"] == ["0.1"]
    assert doc["chunks_present"] == 7
    human = _run("chunks", str(stores["v2"]), "--verify")
    assert human.returncode == 3 and "0.1" in human.stdout and "corrupt" in human.stdout


def test_chunks_sharded_and_group(stores):
    doc = json.loads(_run("chunks", str(stores["sharded"]), "--json").stdout)
    assert doc["shard_shape"] == [10, 10] and doc["chunks_present"] == 8
    assert doc["shards_present"] == 2
    doc = json.loads(_run("chunks", str(stores["image"]), "--json").stdout)
    assert doc["path"] == "0"
    doc = json.loads(
        _run(
            "chunks", str(stores["image"]), "--array", "labels/cells", "--level", "1", "--json"
        ).stdout
    )
    assert doc["path"] == "labels/cells/1"
    proc = _run("chunks", str(stores["root"]))
    assert proc.returncode == 1 and "--array" in proc.stderr
    human = _run("chunks", str(stores["sharded"]))
    assert human.returncode == 0 and "shards stored" in human.stdout


def test_estimate_cli(stores):
    proc = _run(
        "estimate",
        str(stores["image"]),
        "--compressor",
        "zstd:5",
        "--compressor",
        "blosc-lz4",
        "--shuffle",
        "bit",
        "--chunks",
        "1,2,32,32",
        "--shards",
        "2,4,32,32",
        "--sample",
        "3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [c["compressor"] for c in doc["candidates"]] == [
        "zstd:5",
        "blosc-lz4:level=5,shuffle=bit",
    ]
    assert doc["candidates"][0]["chunk_shape"] == [1, 2, 32, 32]
    assert doc["candidates"][0]["shard_shape"] == [2, 4, 32, 32]
    first = doc["candidates"][0]
    assert first["projected_ratio"] == pytest.approx(
        doc["logical_bytes"] / first["projected_bytes"], abs=1e-3
    )
    human = _run("estimate", str(stores["image"]), "--compressor", "gzip:6")
    assert human.returncode == 0, human.stderr
    assert "gzip:6" in human.stdout and "compression ratio" in human.stdout
    # the compression ratio column is the one to compare with the compression ratio now:
    # logical bytes over projected
    gzip = json.loads(
        _run("estimate", str(stores["image"]), "--compressor", "gzip:6", "--json").stdout
    )["candidates"][0]
    (row,) = [line for line in human.stdout.splitlines() if "gzip:6" in line]
    assert f"{gzip['projected_ratio']:.2f}x" in row.split()
    bad = _run("estimate", str(stores["image"]), "--compressor", "what")
    assert bad.returncode == 1 and "what" in bad.stderr
    # a candidate the codec cannot encode: its row says so, the reason follows the table whole
    refused = _run("estimate", str(stores["image"]), "--compressor", "webp:quality=80")
    assert refused.returncode == 0, refused.stderr
    row = next(line for line in refused.stdout.splitlines() if line.startswith("│ webp"))
    assert "not possible" in row and "RGB" not in row
    assert "webp:quality=80: webp encodes RGB or RGBA images" in refused.stdout


def test_piped_output_never_wraps_names(tmp_path):
    """Neither COLUMNS nor the path length changes what a script reads from a pipe."""
    deep = tmp_path / ("long-folder-name-" * 12) / "img.zarr"
    write_array(deep / ("a-" * 60 + "array"), np.ones((4, 4), "uint8"), zarr_format=3)
    (deep / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    for cmd in (["inspect"], ["chunks", "--array", "a-" * 60 + "array"], ["validate"]):
        proc = _run(cmd[0], str(deep), *cmd[1:])
        assert proc.returncode in (0, 3), proc.stderr
        lines = proc.stdout.splitlines()
        assert any(str(deep) in line for line in lines), proc.stdout
        if cmd[0] != "validate":
            assert any("a-" * 60 + "array" in line for line in lines), proc.stdout


def test_chunks_of_a_large_group_says_that_more_arrays_than_listed_exist(tmp_path):
    import zarr

    root = zarr.open_group(tmp_path / "many.zarr", mode="w", zarr_format=3)
    for i in range(25):
        root.create_array(f"a{i:02d}", shape=(4,), chunks=(2,), dtype="uint8")
    proc = _run("chunks", str(tmp_path / "many.zarr"))
    assert proc.returncode == 1
    assert "25 arrays" in proc.stderr
    assert "a19" in proc.stderr and "a20" not in proc.stderr
    assert "and 5 more" in proc.stderr, proc.stderr


def test_estimate_cli_over_http_says_the_stored_size_is_unknown(http_server, tmp_path):
    """Plain HTTP cannot list: what is stored now is unknown, and said so in words."""
    data = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    write_array(http_server.root / "a.zarr", data, chunks=(32, 32))
    proc = _run("estimate", f"{http_server.url}/a.zarr", "--compressor", "zstd:3")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "stored size now unknown" in out and "None" not in out and "?" not in out, out


FAST = '{"explorer_retries": 1, "explorer_backoff": 0.01, "explorer_timeout": 2}'


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_inspect_unreachable_store_cannot_be_opened(tmp_path, as_json):
    from servers import serve_directory

    with serve_directory(tmp_path) as srv:
        url = f"{srv.url}/x.zarr"  # closed once the block ends: connections are refused
    proc = _run("inspect", url, "--storage-options", FAST, *(["--json"] if as_json else []))
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == ""
    assert url in proc.stderr and "Connection refused by 127.0.0.1:" in proc.stderr
    assert "that the server is running" in proc.stderr and "Errno" not in proc.stderr


def test_inspect_without_zarr_metadata_is_the_same_error_local_or_remote(tmp_path, http_server):
    """An empty folder and a URL with nothing behind it hold no store: exit 1 for both."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (http_server.root / "nothing.zarr").mkdir()
    for url in (str(empty), f"{http_server.url}/nothing.zarr"):
        proc = _run("inspect", url)
        assert proc.returncode == 1, (url, proc.stdout)
        assert proc.stdout == ""
        assert f"no Zarr metadata at {url}" in proc.stderr


def test_inspect_path_that_is_no_node_cannot_be_opened(stores, http_server):
    """--path naming nothing: exit 1 "no node at ...", whether the store can list or not."""
    import shutil

    shutil.copytree(stores["image"], http_server.root / "img.ome.zarr")
    for url in (str(stores["image"]), f"{http_server.url}/img.ome.zarr"):
        proc = _run("inspect", url, "--path", "nope")
        assert proc.returncode == 1, (url, proc.stdout)
        assert proc.stdout == ""
        assert f"no node at {url}/nope" in proc.stderr


def test_inspect_path_names_the_node_once_and_counts_one_in_the_singular(stores):
    image = str(stores["image"])
    proc = _run("inspect", image, "--path", "0")
    assert proc.returncode == 0, proc.stderr
    first, *_, totals = proc.stdout.splitlines()
    assert first.startswith(f"{image}/0  array v3 "), first  # not "/0  0 array"
    assert totals.startswith("0 groups, 1 array;"), totals
    labels = _run("inspect", image, "--path", "labels/cells")
    assert labels.returncode == 0, labels.stderr
    first = labels.stdout.splitlines()[0]
    assert first.startswith(f"{image}/labels/cells  group v3 "), first
    assert labels.stdout.splitlines()[-1].startswith("1 group, 2 arrays;")
    # the notebook's table says the same
    from napari_zarr_explorer import inspect

    assert "1 group, 2 arrays" in inspect(image, path="labels/cells")._repr_html_()


@pytest.mark.parametrize("command", ["inspect", "chunks", "estimate"])
def test_path_and_array_are_the_same_option(stores, command):
    """--path and --array name the node on every command that takes one."""
    docs = []
    for flag in ("--path", "--array"):
        proc = _run(command, str(stores["image"]), flag, "labels/cells/1", "--json")
        assert proc.returncode == 0, (flag, proc.stderr)
        docs.append(json.loads(proc.stdout))
    assert docs[0]["path"] == docs[1]["path"] == "labels/cells/1"
    help_text = _run(command, "--help").stdout
    assert "--path" in help_text and "--array" in help_text


def test_estimate_names_the_array_once(tmp_path):
    """The header names the array; candidate lines and warnings below it do not repeat it."""
    image = write_ome_image(
        tmp_path / "img.ome.zarr", shape=(2, 4, 32, 32), chunks=(1, 1, 32, 32), levels=1
    )
    chunk = next(p for p in (image / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:10])  # a sampled chunk that cannot be read
    proc = _run("estimate", str(image), "--compressor", "webp:quality=80", "--compressor", "zstd:3")
    assert proc.returncode == 0, proc.stderr
    where = f"{image}/0"
    assert proc.stdout.count(where) == 1, proc.stdout
    assert proc.stdout.splitlines()[0].startswith(f"{where}: ")
    assert "webp:quality=80: webp encodes RGB or RGBA images" in proc.stdout
    assert "warning: sampled region " in proc.stdout


def test_cli_errors_are_worded_by_the_one_formatter(tmp_path, capsys):
    """The command line words an error as the docks and the notebook do (``error_message``):
    an OS error that escapes a command names its type and what the system says, without
    Python's ``[Errno N]``; exit 1, nothing on standard output."""
    from napari_zarr_explorer.cli import main
    from napari_zarr_explorer.errors import ExplorerError, error_message
    from napari_zarr_explorer.report import inspect

    np.save(tmp_path / "x.npy", np.zeros((8, 8), dtype="uint8"))
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "out.zarr"
    assert main(["save", str(tmp_path / "x.npy"), str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = " ".join(captured.err.split())
    assert "Errno" not in err and "unexpectedly" not in err
    assert f"error: Cannot write to {out}: {tmp_path / 'afile'} is a file, not a folder." in err
    # the explorer's own errors, as error_message gives them (hint included)
    assert main(["inspect", str(tmp_path / "missing.zarr")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    with pytest.raises(ExplorerError) as info:
        inspect(str(tmp_path / "missing.zarr"))
    assert info.value.hint and err == f"error: {error_message(info.value)}"
