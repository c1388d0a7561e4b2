"""An output inside the source store is refused by Python and the command line alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_zarr_explorer import testing
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.recompress import default_output, recompress, store_root
from napari_zarr_explorer.store import parse_location


@pytest.fixture
def ome(tmp_path: Path) -> Path:
    return testing.write_ome_image(
        tmp_path / "img.ome.zarr", shape=(2, 4, 32, 32), levels=2, labels=True
    )


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_python_refuses_output_inside_source_store(ome: Path) -> None:
    before = _files(ome)
    level = ome / "0"
    assert store_root(parse_location(level)).url == str(ome.resolve())
    for dst in (ome / "0-recompressed.zarr", ome / "labels" / "x.zarr", ome / "new"):
        with pytest.raises(ExplorerError, match="inside the source store"):
            recompress(level, dst)
    with pytest.raises(ExplorerError, match="overlaps"):
        recompress(level, ome)  # the source inside the output
    assert _files(ome) == before
    # the default output is a sibling of the store's root, and works
    out = default_output(level)
    assert out == str(ome.resolve().parent / "img-recompressed.ome.zarr")
    assert recompress(level, out).ok


def test_cli_refuses_output_inside_source_store(
    ome: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(ome)
    code = main(["recompress", str(ome / "0"), str(ome / "0-recompressed.zarr")])
    err = capsys.readouterr().err
    assert code == 1
    assert "inside the source store" in err
    assert _files(ome) == before


def test_default_output_of_a_remote_source_is_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = default_output("https://example.org/data/cells.ome.zarr/0", base=tmp_path)
    assert out == str(tmp_path / "cells-recompressed.ome.zarr")
    assert default_output("s3://bucket/plain", base=tmp_path) == str(
        tmp_path / "plain-recompressed.zarr"
    )
    monkeypatch.chdir(tmp_path)  # the current folder, when it is writable
    assert default_output("gs://bucket/a.zarr") == str(tmp_path / "a-recompressed.zarr")
