"""The examples of docs/ome-0.6.md run and print what the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from napari_zarr_explorer.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "ome-0.6.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_example_and_cli_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    example = _blocks("python")[0]
    exec(compile(example, str(DOC), "exec"), {"__name__": "__doc_example__"})
    capsys.readouterr()
    console = "\n".join(_blocks("console"))
    ran = 0
    for line in console.splitlines():
        m = re.match(r"\$ napari-zarr-explorer (transform) (\S+) (\S+) (\S+) '(.*)'$", line)
        if not m:
            continue
        assert main([m[1], m[2], m[3], m[4], m[5]]) == 0
        out = json.loads(capsys.readouterr().out)
        shown = console.splitlines()[console.splitlines().index(line) + 1]
        assert (
            json.loads(shown.replace('"sequence [...]"', '""'))["coordinates"] == out["coordinates"]
        )
        ran += 1
    assert ran == 2
    assert main(["inspect", "scene.ome.zarr"]) == 0
    text = capsys.readouterr().out
    for expected in (
        "coordinate system world (scene): y [micrometer] x [micrometer]",
        "transformation imgA#physical -> world: translation [100, 0]",
    ):
        assert expected in text
