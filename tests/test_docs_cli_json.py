"""docs/cli-json.md documents every key the commands print with --json, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.testing import blobs, write_array, write_ome_image

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli-json.md"


def _sections() -> dict[str, str]:
    """Section text by command (``inspect``, ``chunks``, ``estimate``, ``recompress``).

    A section whose title names a flag that changes the document has it in its name
    (``estimate --all-arrays``).
    """
    parts = re.split(r"^## `(\w+)([^`\n]*)`", DOC.read_text(), flags=re.M)
    out: dict[str, str] = {}
    for i in range(1, len(parts), 3):
        name = parts[i] + ("".join(f" {f}" for f in re.findall(r"--all-arrays", parts[i + 1])))
        assert name not in out, f"two sections for {name}"
        out[name] = parts[i + 2]
    return out


def _documented(section: str) -> set[str]:
    """Every key named in a section's text (not its example): in backticks, or quoted."""
    section = re.sub(r"```json\n.*?```", "", section, flags=re.S)
    return set(re.findall(r"`(?:[\w\[\].]*\.)?([a-z_0-9]+)`", section)) | set(
        re.findall(r'"([a-z_0-9]+)"', section)
    )


def _tabled(section: str) -> set[str]:
    """The keys of the first column of the section's tables."""
    keys: set[str] = set()
    for row in re.findall(r"^\| (`[^|]*)\|", section, flags=re.M):
        keys |= set(re.findall(r"`(?:[\w\[\]]*\.)?([a-z_0-9]+)`", row))
    return keys


def _example(section: str) -> set[str]:
    """The keys of the section's JSON example."""
    block = re.search(r"```json\n(.*?)```", section, flags=re.S)
    assert block, "no JSON example"
    return set(re.findall(r'"([a-z_0-9]+)":', block[1]))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _keys(docs: list[Any]) -> set[str]:
    return {k for d in docs if isinstance(d, dict) for k in d}


def test_every_printed_key_is_documented_and_every_documented_key_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = write_ome_image(
        tmp_path / "img.ome.zarr", shape=(2, 8, 64, 64), chunks=(1, 4, 32, 32),
        shards=(1, 8, 64, 64), labels=True,
    )  # fmt: skip
    plain = write_array(
        tmp_path / "v2.zarr", blobs((32, 32)), zarr_format=2, chunks=(16, 16)
    )  # fmt: skip
    sections = _sections()

    # inspect: the store, its nodes (groups and arrays, v2 and v3), codecs, OME views
    reports = [_run(capsys, "inspect", str(image)), _run(capsys, "inspect", str(plain))]
    nodes = [n for r in reports for n in r["nodes"]]
    omes = [n["ome"] for n in nodes if n["ome"]]
    codecs = [c for n in nodes if n["kind"] == "array" for c in n["codecs"]]
    assert any(c.get("implied") for c in codecs)
    printed = _keys(reports) | _keys(nodes) | _keys(omes) | _keys(codecs)
    doc = sections["inspect"]
    assert printed - _documented(doc) == set()
    assert (_tabled(doc) | _example(doc)) - printed == set()

    # chunks, with the grids
    cmap = _run(capsys, "chunks", str(image), "--grid")
    doc = sections["chunks"]
    assert set(cmap) - _documented(doc) == set()
    assert (_tabled(doc) | _example(doc)) - set(cmap) == set()

    # estimate
    est = _run(capsys, "estimate", str(image), "--array", "0", "--compressor", "zstd:5")
    printed = _keys([est]) | _keys(est["candidates"])
    doc = sections["estimate"]
    assert printed - _documented(doc) == set()
    assert (_tabled(doc) | _example(doc)) - printed == set()

    # estimate of the whole run
    run = _run(capsys, "estimate", str(image), "--all-arrays", "--compressor", "zstd:5")
    printed = _keys([run]) | _keys(run["arrays"])
    doc = sections["estimate --all-arrays"]
    assert printed - _documented(doc) == set()
    assert (_tabled(doc) | _example(doc)) - printed == set()

    # recompress (and save, which prints the same report)
    rep = _run(capsys, "recompress", str(image), str(tmp_path / "out.zarr"))
    printed = _keys([rep]) | _keys(rep["arrays"])
    doc = sections["recompress"]
    assert printed - _documented(doc) == set()
    assert (_tabled(doc) | _example(doc)) - printed == set()
