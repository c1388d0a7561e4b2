"""Hostile and odd stores through the command line: a clear message, never a traceback.

Every store is built here. Each command must end with an exit code (no exception escapes
``cli.main``), print valid JSON with ``--json`` whenever it reports (exit codes 0 and 3), print
``error: ...`` naming the file on standard error otherwise, and leave the input untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.errors import ExplorerError, LimitError, MetadataError
from traps import pickle_trap, prove_pickle_trap

VALUES = np.arange(40 * 40, dtype="uint16").reshape(40, 40) + 1
# A pickle that creates this file beside the store when loaded (proved in the fixture below).
SENTINEL = "UNPICKLED"
PICKLE_STORES = ("v2_pickle_compressor", "v2_object_codec")
REFUSED = (*PICKLE_STORES, "v3_pickle_in_shard_index")  # decoding them could run code


# ---------------------------------------------------------------- store builders


def _edit(path: Path, fn: Callable[[dict[str, Any]], Any]) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _v3(root: Path, **kw: Any) -> Path:
    return testing.write_array(root, VALUES, zarr_format=3, chunks=(16, 16), **kw)


def _v2(root: Path, **kw: Any) -> Path:
    return testing.write_array(root, VALUES, zarr_format=2, chunks=(16, 16), **kw)


def _sharded(root: Path, **kw: Any) -> Path:
    return testing.write_array(root, VALUES, zarr_format=3, chunks=(8, 8), shards=(16, 16), **kw)


def _chunk_grid(shape: list[int] | None = None, chunks: list[int] | None = None) -> Any:
    def fn(d: dict[str, Any]) -> None:
        if shape is not None:
            d["shape"] = shape
        if chunks is not None:
            d["chunk_grid"]["configuration"]["chunk_shape"] = chunks

    return fn


def b_truncated_zarr_json(p: Path) -> None:
    _v3(p)
    text = (p / "zarr.json").read_text()
    (p / "zarr.json").write_text(text[: len(text) // 2])


def b_truncated_zarray(p: Path) -> None:
    _v2(p)
    text = (p / ".zarray").read_text()
    (p / ".zarray").write_text(text[: len(text) // 2])


def b_list_json(p: Path) -> None:
    _v3(p)
    (p / "zarr.json").write_text("[1, 2, 3]")


def b_binary_json(p: Path) -> None:
    _v3(p)
    (p / "zarr.json").write_bytes(b"\xff\xfe\x00garbage")


def b_nan_attributes(p: Path) -> None:
    _v2(p)
    (p / ".zattrs").write_text('{"x": Infinity, "y": NaN, "z": -Infinity}')


def b_nan_fill_for_ints(p: Path) -> None:
    _v3(p)
    text = (p / "zarr.json").read_text()
    doc = json.loads(text)
    doc["fill_value"] = "@@"
    (p / "zarr.json").write_text(json.dumps(doc).replace('"@@"', "NaN"))


def b_huge_integer(p: Path) -> None:
    _v3(p)
    doc = json.loads((p / "zarr.json").read_text())
    doc["attributes"] = {"big": "@@"}
    (p / "zarr.json").write_text(json.dumps(doc).replace('"@@"', "9" * 5000))


def b_deep_json(p: Path) -> None:
    _v2(p)
    (p / ".zattrs").write_text('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}")


def b_shape_string(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", lambda d: d.__setitem__("shape", "40x40"))


def b_shape_negative(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(shape=[-4, 40]))


def b_chunk_rank(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(chunks=[16]))


def b_chunk_zero(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(chunks=[0, 16]))


def b_v2_chunk_negative(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.__setitem__("chunks", [-1, 16]))


def b_v2_chunks_string(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.__setitem__("chunks", "abc"))


def b_absurd_grid(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(shape=[10**9, 10**9]))


def b_absurd_1e18(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(shape=[10**18, 10**18], chunks=[1, 1]))


def b_absurd_2e70(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", _chunk_grid(shape=[2**70, 4]))


def b_v2_absurd(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.update(shape=[10**18, 10**18], chunks=[1, 1]))


def b_dtype_unknown(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", lambda d: d.__setitem__("data_type", "uint128"))


def b_v2_dtype_unknown(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.__setitem__("dtype", "not-a-dtype"))


def b_v2_separator_bad(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.__setitem__("dimension_separator", "|"))


def _inner_chunks(chunks: list[int]) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["codecs"][0]["configuration"].__setitem__("chunk_shape", chunks)


def b_shard_not_dividing(p: Path) -> None:
    _sharded(p)
    _edit(p / "zarr.json", _inner_chunks([5, 5]))


def b_shard_inner_zero(p: Path) -> None:
    _sharded(p)
    _edit(p / "zarr.json", _inner_chunks([0, 8]))


def b_shard_inner_rank(p: Path) -> None:
    _sharded(p)
    _edit(p / "zarr.json", _inner_chunks([8]))


def b_truncated_shard(p: Path) -> None:
    _sharded(p)
    c = p / "c" / "0" / "0"
    c.write_bytes(c.read_bytes()[:3])


def b_shard_index_huge_offsets(p: Path) -> None:
    _sharded(p, compressor=None)
    _edit(
        p / "zarr.json",
        lambda d: d["codecs"][0]["configuration"].__setitem__(
            "index_codecs", [{"name": "bytes", "configuration": {"endian": "little"}}]
        ),
    )
    c = p / "c" / "0" / "0"
    data = bytearray(c.read_bytes())
    data[-64:] = struct.pack("<8Q", *([2**62, 2**62] * 4))
    c.write_bytes(bytes(data))


def b_truncated_chunk(p: Path) -> None:
    _v3(p)
    c = p / "c" / "0" / "0"
    c.write_bytes(c.read_bytes()[:5])


def b_v2_pickle_compressor(p: Path) -> None:
    _v2(p)
    _edit(p / ".zarray", lambda d: d.__setitem__("compressor", {"id": "pickle"}))
    (p / "0.0").write_bytes(pickle_trap(p.parent / SENTINEL))


def b_v2_object_codec(p: Path) -> None:
    _v2(p)
    _edit(
        p / ".zarray",
        lambda d: d.update(dtype="|O", compressor=None, filters=[{"id": "pickle"}]),
    )
    (p / "0.0").write_bytes(pickle_trap(p.parent / SENTINEL))


def b_v3_pickle_in_shard_index(p: Path) -> None:
    _sharded(p)
    _edit(
        p / "zarr.json",
        lambda d: d["codecs"][0]["configuration"]["index_codecs"].append(
            {"name": "numcodecs.pickle"}
        ),
    )


def b_v3_unknown_codec(p: Path) -> None:
    _v3(p)
    _edit(p / "zarr.json", lambda d: d["codecs"].append({"name": "frobnicate"}))


def b_empty_dir(p: Path) -> None:
    p.mkdir()


def b_plain_file(p: Path) -> None:
    p.write_text("hello")


def b_missing(p: Path) -> None:
    pass


def b_mixed_v2_v3(p: Path) -> None:
    p.mkdir()
    (p / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    _v2(p / "a2")
    _v3(p / "a3")


def b_ome_dotdot(p: Path) -> None:
    testing.write_ome_image(p, version="0.4", shape=(2, 16, 16), axes="cyx", levels=2)
    _edit(
        p / ".zattrs",
        lambda d: d["multiscales"][0]["datasets"][0].__setitem__("path", "../../etc"),
    )


def b_ome_wrong_types(p: Path) -> None:
    testing.write_ome_image(p, version="0.5", shape=(2, 16, 16), axes="cyx", levels=2)
    _edit(
        p / "zarr.json",
        lambda d: d["attributes"]["ome"].update(
            multiscales=[{"axes": "cyx", "datasets": {"path": 0}}],
            omero={"channels": [None, "x", {"color": 5, "window": "w"}]},
        ),
    )


BUILDERS: dict[str, Callable[[Path], None]] = {
    name[2:]: fn for name, fn in dict(globals()).items() if name.startswith("b_")
}


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    if not os.path.lexists(root):
        return "absent"
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            h.update(f"{full}|{st.st_size}|{st.st_mtime_ns}".encode())
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    out = {}
    for name, build in BUILDERS.items():
        path = root / f"{name}.zarr"
        build(path)
        out[name] = path
    for name in PICKLE_STORES:
        # The trap really runs code when unpickled: otherwise "no sentinel" would prove nothing.
        prove_pickle_trap((out[name] / "0.0").read_bytes(), root / SENTINEL)
    return out


# ---------------------------------------------------------------- the regression grid

COMMANDS = [
    ["inspect", "--json"],
    ["inspect"],
    ["chunks", "--json"],
    ["chunks", "--verify"],
    ["validate", "--json"],
    ["validate"],
    ["estimate", "--json", "--sample", "2"],
]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_hostile_store_every_command(
    hostile: dict[str, Path], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = hostile[name]
    before = _tree_hash(store)
    for cmd in COMMANDS:
        rc = main([cmd[0], str(store), *cmd[1:]])
        out, err = capsys.readouterr()
        assert rc in (0, 1, 3), (cmd, rc, err)
        assert "Traceback" not in err
        if rc == 1:
            assert err.startswith("error: "), (cmd, err)
            assert out == "", (cmd, out)
        elif "--json" in cmd:
            json.loads(out)  # exactly one valid JSON document
        if name in REFUSED and (cmd[0] in ("inspect", "estimate") or "--verify" in cmd):
            # Anything that would decode a pickle store refuses it, saying why.
            assert rc == (3 if cmd[0] == "inspect" else 1), (cmd, rc, out, err)
            assert "pickle" in out + err or "Python objects" in out + err, (cmd, out, err)
        assert not (store.parent / SENTINEL).exists(), cmd
    assert _tree_hash(store) == before


# ---------------------------------------------------------------- the bugs, one by one


@pytest.mark.parametrize(
    ("builder", "needle"),
    [
        (b_shape_string, "shape"),
        (b_chunk_rank, "chunk shape"),
        (b_v2_chunks_string, "chunk shape"),
        (b_shard_inner_zero, "chunk shape"),
        (b_shard_inner_rank, "chunk shape"),
    ],
)
def test_chunk_map_malformed_geometry_is_a_metadata_error(
    tmp_path: Path, builder: Callable[[Path], None], needle: str
) -> None:
    from napari_zarr_explorer.chunks import chunk_map

    builder(tmp_path / "s.zarr")
    with pytest.raises(MetadataError, match=needle) as info:
        chunk_map(tmp_path / "s.zarr")
    assert str(tmp_path / "s.zarr") in str(info.value)


@pytest.mark.parametrize("builder", [b_absurd_grid, b_absurd_1e18, b_absurd_2e70, b_v2_absurd])
def test_chunk_map_absurd_grid_is_refused_before_allocating(
    tmp_path: Path, builder: Callable[[Path], None]
) -> None:
    from napari_zarr_explorer.chunks import chunk_map

    builder(tmp_path / "s.zarr")
    with pytest.raises(LimitError, match="chunks") as info:
        chunk_map(tmp_path / "s.zarr")
    assert str(tmp_path / "s.zarr") in str(info.value)
    assert "s.zarr/:" not in str(info.value)


@pytest.mark.parametrize("builder", [b_absurd_1e18, b_absurd_2e70, b_v2_absurd])
def test_estimate_absurd_grid_samples_without_overflow(
    tmp_path: Path, builder: Callable[[Path], None]
) -> None:
    from napari_zarr_explorer.estimate import estimate

    builder(tmp_path / "s.zarr")
    report = estimate(tmp_path / "s.zarr", "", ["zstd:3"], sample=2)
    assert report.objects_stored is not None
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("builder", "needle"),
    [
        (b_shard_not_dividing, "dividing"),
        (b_shard_inner_zero, "chunk"),
        (b_dtype_unknown, "uint128"),
        (b_v2_dtype_unknown, "not-a-dtype"),
        (b_nan_fill_for_ints, "nan"),
        (b_v2_separator_bad, "separator"),
    ],
)
def test_estimate_metadata_zarr_refuses_is_a_metadata_error(
    tmp_path: Path, builder: Callable[[Path], None], needle: str
) -> None:
    from napari_zarr_explorer.estimate import estimate

    builder(tmp_path / "s.zarr")
    with pytest.raises(MetadataError, match=needle) as info:
        estimate(tmp_path / "s.zarr", "", ["zstd:3"], sample=2)
    msg = str(info.value)
    assert str(tmp_path / "s.zarr") in msg
    assert "s.zarr/:" not in msg  # no dangling slash after the store


def test_chunks_cli_names_the_unreadable_root_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b_truncated_zarr_json(tmp_path / "s.zarr")
    for cmd in ("chunks", "estimate"):
        assert main([cmd, str(tmp_path / "s.zarr")]) == 1
        err = capsys.readouterr().err
        assert "zarr.json" in err and "invalid JSON" in err
        assert "0 arrays" not in err


def test_chunks_cli_says_when_the_folder_holds_no_zarr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["chunks", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "no Zarr" in err
    assert "group with 0 arrays" not in err


def test_validate_json_file_with_a_huge_integer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "attrs.json"
    doc.write_text('{"multiscales": ' + "9" * 5000 + "}")
    assert main(["validate", "--json", str(doc)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "attrs.json" in err and "digits" in err


def test_validate_store_with_a_huge_integer(
    hostile: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--json", str(hostile["huge_integer"])]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is False and "zarr.json" in verdict["message"]


@pytest.mark.parametrize("builder", [b_shape_negative, b_shape_string])
def test_inspect_malformed_shape_has_no_logical_bytes(
    tmp_path: Path, builder: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    builder(tmp_path / "s.zarr")
    assert main(["inspect", "--json", str(tmp_path / "s.zarr")]) == 3
    doc = json.loads(capsys.readouterr().out)
    (node,) = doc["nodes"]
    assert node["logical_bytes"] == 0 and doc["logical_bytes"] == 0
    assert len(node["errors"]) == 1, node["errors"]
    assert main(["inspect", str(tmp_path / "s.zarr")]) == 3
    out = capsys.readouterr().out
    assert "ratio 0.00" not in out and "-0." not in out


@pytest.mark.parametrize("bad", ["../../etc", "/etc", "http://example.com/x"])
def test_chunks_escaping_dataset_path_names_the_group_document(
    tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "img.zarr"
    testing.write_ome_image(p, version="0.4", shape=(2, 16, 16), axes="cyx", levels=2)
    _edit(p / ".zattrs", lambda d: d["multiscales"][0]["datasets"][0].__setitem__("path", bad))
    assert main(["chunks", str(p)]) == 1
    err = capsys.readouterr().err
    assert str(p / ".zattrs") in err and "level 0" in err and bad in err


def test_chunks_default_array_says_when_the_walk_was_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "many.zarr"
    p.mkdir()
    (p / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    for i in range(210):
        (p / f"g{i:03d}").mkdir()
        (p / f"g{i:03d}" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    _v3(p / "zz_array")
    assert main(["chunks", str(p)]) == 1
    err = capsys.readouterr().err
    assert "first 200 nodes" in err


ODD_NAMES = ["back\\slash", "~tilde", "c:drive", "sp ace", "[red]markup", "x::y"]


def test_inspect_odd_but_legal_node_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "names.zarr"
    root.mkdir()
    (root / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    for name in ODD_NAMES:
        _v3(root / name)
    before = _tree_hash(root)
    assert main(["inspect", "--json", str(root)]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert sorted(n["path"] for n in doc["nodes"]) == sorted(["", *ODD_NAMES])
    assert main(["inspect", str(root)]) == 0
    assert "[red]markup" in capsys.readouterr().out
    assert main(["chunks", str(root), "--array", "back\\slash", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_present"] == 9
    assert _tree_hash(root) == before


ESCAPE_NAME = "x\x1b]0;PWNED\x07\x1b[31mred\x9b"


def _escape_store(tmp_path: Path) -> Path:
    root = tmp_path / "esc.zarr"
    root.mkdir()
    (root / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    _v3(root / ESCAPE_NAME, attributes={"ome": {"version": "0.5", "multiscales": "x"}})
    return root


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect"],
        ["inspect", "--attributes"],
        ["validate"],
        ["chunks", "--array", ESCAPE_NAME],
        ["estimate", "--array", ESCAPE_NAME, "--sample", "1"],
    ],
)
def test_terminal_escapes_in_names_are_not_printed(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = _escape_store(tmp_path)
    url = root / ESCAPE_NAME if argv[0] == "validate" else root
    assert main([argv[0], str(url), *argv[1:]]) in (0, 3)
    out = capsys.readouterr().out
    assert "PWNED" in "".join(out.split())  # the name is shown (wrapped where the path is long)...
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out  # ...defanged


@pytest.mark.parametrize("argv", [["inspect"], ["chunks", "--array", "a\n└── fake"]])
def test_newlines_and_tabs_in_names_are_escaped(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A name is one line of the tree: a newline in it would draw a node that does not exist.
    root = tmp_path / "nl.zarr"
    root.mkdir()
    (root / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    _v3(root / "a\n└── fake")
    _v3(root / "tab\there")
    assert main([argv[0], str(root), *argv[1:]]) in (0, 3)
    out = capsys.readouterr().out
    assert "a\\x0a└── fake" in out
    assert not any(line.lstrip(" │").startswith("└── fake") for line in out.splitlines())
    if argv[0] == "inspect":
        assert "tab\\x09here" in out and "\t" not in out


def test_recompress_report_defangs_terminal_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The store layer refuses keys with control characters (docs/security.md), so recompress
    # stops before writing; what it prints names the node, defanged.
    root = _escape_store(tmp_path)
    for extra in ([], ["--dry-run"]):
        dst = tmp_path / f"out{len(extra)}.zarr"
        assert main(["recompress", str(root), str(dst), *extra]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert "PWNED" in err and "control character" in err, err
        assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err
        assert not dst.exists()


def test_non_utf8_names_print_on_a_strict_utf8_terminal(tmp_path: Path) -> None:
    root = tmp_path / "bytes.zarr"
    root.mkdir()
    (root / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    child = Path(os.fsdecode(os.fsencode(root) + b"/\xff\xfeodd"))
    _v3(child)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for cmd in (["inspect"], ["validate"], ["inspect", "--json"], ["chunks"]):
        url = child if cmd[0] in ("validate", "chunks") else root
        proc = subprocess.run(
            [sys.executable, "-m", "napari_zarr_explorer", cmd[0], str(url), *cmd[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert proc.returncode in (0, 3), proc.stderr
        assert "Traceback" not in proc.stderr
        assert "odd" in proc.stdout


def test_user_given_array_path_outside_the_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _v3(tmp_path / "outside.zarr")
    store = _v3(tmp_path / "s.zarr")
    for cmd in ("chunks", "estimate"):
        assert main([cmd, str(store), "--array", "../outside.zarr"]) == 1
        err = capsys.readouterr().err
        assert "--array" in err or "inside the store" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "--max-nodes", "0"],
        ["inspect", "--max-nodes", "-1"],
        ["estimate", "--sample", "0"],
        ["estimate", "--sample", "-5"],
    ],
)
def test_nonsense_counts_are_refused(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    store = _v3(tmp_path / "s.zarr")
    assert main([argv[0], str(store), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and argv[1].lstrip("-").split("-")[0] in err


def test_level_errors_have_no_dangling_slash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = testing.write_ome_image(
        tmp_path / "img.zarr", version="0.4", shape=(2, 16, 16), axes="cyx", levels=2
    )
    assert main(["chunks", str(p), "--level", "7"]) == 1
    err = capsys.readouterr().err
    assert "level 7" in err and "img.zarr/:" not in err


def test_chunks_warns_about_keys_with_the_other_separator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _v2(tmp_path / "s.zarr", separator=".")
    _edit(p / ".zarray", lambda d: d.__setitem__("dimension_separator", "/"))
    assert main(["chunks", str(p), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["chunks_present"] == 0
    assert any("separator" in w and "'.'" in w for w in doc["warnings"]), doc["warnings"]
    assert main(["chunks", str(p)]) == 0
    assert "separator" in capsys.readouterr().out


def test_inspect_deep_hierarchy_shows_every_reported_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = '{"zarr_format": 3, "node_type": "group"}'
    q = tmp_path / "deep.zarr"
    q.mkdir()
    (q / "zarr.json").write_text(group)
    for _ in range(60):
        q = q / "g"
        q.mkdir()
        (q / "zarr.json").write_text(group)
    _v3(q / "leaf")
    assert main(["inspect", str(tmp_path / "deep.zarr")]) == 0
    out = capsys.readouterr().out
    assert "leaf array v3" in " ".join(out.split())  # still visible on an 80-column terminal


def test_inspect_warns_about_ome_paths_leaving_the_store(
    hostile: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plate = tmp_path / "plate.zarr"
    testing.write_plate(plate, version="0.4", rows=1, cols=2, fields=1)
    _edit(
        plate / ".zattrs",
        lambda d: d["plate"]["wells"].append(
            {"path": "../../etc", "rowIndex": 0, "columnIndex": 0}
        ),
    )
    for store, bad in ((plate, "../../etc"), (hostile["ome_dotdot"], "../../etc")):
        main(["inspect", "--json", str(store)])
        root = json.loads(capsys.readouterr().out)["nodes"][0]
        assert any(bad in w and "not followed" in w for w in root["ome"]["warnings"]), root


def test_parse_chunk_keys_huge_grid() -> None:
    from napari_zarr_explorer.chunks import parse_chunk_keys

    flat, valid = parse_chunk_keys(
        ["c/5/3", "c/0/0", "zarr.json"], (2**70, 10**18), ("default", "/")
    )
    assert valid.tolist() == [True, True, False]
    assert flat[valid].tolist() == [-1, -1]  # no flat index fits in 64 bits


def test_library_errors_are_explorer_errors(tmp_path: Path) -> None:
    """The Python API raises the package's own errors too (the CLI relies on it)."""
    from napari_zarr_explorer.chunks import chunk_map

    b_chunk_zero(tmp_path / "s.zarr")
    with pytest.raises(ExplorerError):
        chunk_map(tmp_path / "s.zarr")


# ---------------------------------------------------------------- recompress


def test_recompress_refuses_existing_destination_and_keeps_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _v3(tmp_path / "src.zarr")
    dst = _v2(tmp_path / "dst.zarr")
    before_src, before_dst = _tree_hash(src), _tree_hash(dst)
    assert main(["recompress", str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    # a finished output: another output or --overwrite (resuming has nothing to continue)
    assert "dst.zarr" in err and "--overwrite" in err and "--resume" not in err
    assert _tree_hash(src) == before_src
    assert _tree_hash(dst) == before_dst


@pytest.mark.parametrize(
    "name",
    [
        "truncated_zarr_json",
        "v2_pickle_compressor",
        "v2_object_codec",
        "v3_pickle_in_shard_index",
        "v3_unknown_codec",
        "shard_not_dividing",
        "absurd_1e18",
        "absurd_2e70",
        "empty_dir",
        "plain_file",
        "missing",
        "ome_dotdot",
    ],
)
def test_recompress_hostile_source(
    hostile: dict[str, Path], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = hostile[name]
    before = _tree_hash(src)
    dst = tmp_path / "out.zarr"
    rc = main(["recompress", str(src), str(dst), "--json"])
    out, err = capsys.readouterr()
    assert rc in (0, 1), err
    assert "Traceback" not in err
    if rc == 1:
        assert err.lstrip().startswith("error: ")
    else:
        json.loads(out)
    if name in REFUSED:
        assert rc == 1 and ("pickle" in err or "Python objects" in err), err
    assert _tree_hash(src) == before
    assert not (src.parent / SENTINEL).exists()


def test_recompress_escaping_path_names_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "plate.zarr"
    testing.write_plate(src, version="0.4", rows=1, cols=2, fields=1)
    _edit(
        src / ".zattrs",
        lambda d: d["plate"]["wells"].append(
            {"path": "../../etc", "rowIndex": 0, "columnIndex": 0}
        ),
    )
    assert main(["recompress", str(src), str(tmp_path / "out.zarr")]) == 1
    err = capsys.readouterr().err
    assert str(src / ".zattrs") in err and "../../etc" in err
    assert not (tmp_path / "out.zarr").exists()


def test_recompress_into_the_source_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _v3(tmp_path / "src.zarr")
    before = _tree_hash(src)
    for dst in (src, src / "inner.zarr"):
        assert main(["recompress", str(src), str(dst), "--overwrite"]) == 1
        assert capsys.readouterr().err.lstrip().startswith("error: ")
    assert _tree_hash(src) == before


def _outside_array(tmp_path: Path) -> Path:
    return testing.write_array(
        tmp_path / "outside" / "secret.zarr", VALUES * 7, zarr_format=3, chunks=(16, 16)
    )


def test_recompress_does_not_follow_symlinks_out_of_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    outside = _outside_array(tmp_path)
    secret.write_text("TOP SECRET")
    src = tmp_path / "src.zarr"
    testing.write_array(src, VALUES, zarr_format=3, chunks=(16, 16), name="a")
    (src / "notes.txt").symlink_to(secret)  # an extra file pointing outside
    (src / "leak").symlink_to(outside)  # a child group pointing outside
    (src / "loop").symlink_to(src)  # a loop
    before = _tree_hash(src)
    dst = tmp_path / "out.zarr"
    assert main(["recompress", str(src), str(dst), "--json"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert not (dst / "notes.txt").exists()
    assert not (dst / "leak").exists() and not (dst / "loop").exists()
    assert [a["path"] for a in report["arrays"]] == ["a"]
    assert _tree_hash(src) == before


def _symlinked_chunks(tmp_path: Path, **kw: Any) -> Path:
    outside = testing.write_array(
        tmp_path / "outside" / "secret.zarr", VALUES * 7, zarr_format=3, chunks=(16, 16), **kw
    )
    src = testing.write_array(tmp_path / "src.zarr", VALUES, zarr_format=3, chunks=(16, 16), **kw)
    for chunk in (src / "c").rglob("*"):
        if chunk.is_file():
            chunk.unlink()
            chunk.symlink_to(outside / chunk.relative_to(src))
    return src


def test_recompress_does_not_copy_chunks_symlinked_from_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zarr

    src = _symlinked_chunks(tmp_path)
    dst = tmp_path / "out.zarr"
    assert main(["recompress", str(src), str(dst)]) == 0
    capsys.readouterr()
    assert not (zarr.open_array(dst, mode="r")[...] == VALUES * 7).any()


def test_recompress_does_not_copy_shards_symlinked_from_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zarr

    src = _symlinked_chunks(tmp_path, shards=(32, 32))
    dst = tmp_path / "out.zarr"
    assert main(["recompress", str(src), str(dst)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    out = zarr.open_array(dst, mode="r")[...]
    assert not (out == VALUES * 7).any()
    assert (out == 0).all()  # the shards outside the store read as absent (fill value)


def test_recompress_does_not_hang_on_a_fifo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zarr

    src = _v3(tmp_path / "src.zarr")
    (src / "c" / "0" / "0").unlink()
    os.mkfifo(src / "c" / "0" / "0")  # opening it for reading would wait for a writer forever
    (src / "notes").mkdir()
    os.mkfifo(src / "notes" / "pipe")
    dst = tmp_path / "out.zarr"
    assert main(["recompress", str(src), str(dst)]) == 0
    capsys.readouterr()
    out = zarr.open_array(dst, mode="r")[...]
    assert (out[:16, :16] == 0).all() and (out[16:, 16:] == VALUES[16:, 16:]).all()


def _zstd_bomb(nbytes: int) -> bytes:
    """A zstd frame declaring *nbytes* of content, made of RLE blocks (a few KiB)."""
    block = 1 << 17
    n = -(-nbytes // block)
    header = struct.pack("<I", 0xFD2FB528) + bytes([0xE0]) + struct.pack("<Q", n * block)
    body = b"".join(
        ((block << 3) | (1 << 1) | (i == n - 1)).to_bytes(3, "little") + b"\x07" for i in range(n)
    )
    return header + body


@pytest.mark.parametrize(("fmt", "key"), [(2, "0.0"), (3, "c/0/0")])
def test_recompress_refuses_decompression_bombs(
    tmp_path: Path, fmt: int, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = testing.write_array(
        tmp_path / "src.zarr", VALUES, zarr_format=fmt, chunks=(16, 16), compressor="zstd:3"
    )
    (src / key).write_bytes(_zstd_bomb(64 << 20))  # 64 MiB out of a 512-byte chunk
    assert main(["recompress", str(src), str(tmp_path / "out.zarr")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "would decompress" in err and f"source chunk {key} " in err


def test_recompress_names_the_damaged_source_chunk(
    hostile: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recompress", str(hostile["truncated_chunk"]), str(tmp_path / "o.zarr")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "source chunk c/0/0 cannot be decoded" in err and "chunks --verify" in err


# ---------------------------------------------------------------- real processes


@pytest.mark.parametrize(
    ("name", "cmd"),
    [
        ("absurd_grid", ["chunks", "--json"]),
        ("shard_not_dividing", ["estimate"]),
        ("huge_integer", ["inspect", "--json"]),
        ("truncated_zarr_json", ["chunks"]),
        ("v2_object_codec", ["inspect"]),
    ],
)
def test_subprocess_no_traceback(hostile: dict[str, Path], name: str, cmd: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", cmd[0], str(hostile[name]), *cmd[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1, 3)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 1:
        assert proc.stderr.startswith("error: ")
    elif "--json" in cmd:
        json.loads(proc.stdout)
