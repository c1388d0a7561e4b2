"""``estimate --all-arrays``: every array a recompression writes, each at its output layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer._html import human_bytes
from napari_zarr_explorer.cli import main
from napari_zarr_explorer.testing import write_array, write_ome_image


def _files(folder: Path, level: str) -> int:
    """Stored bytes of the chunks of one level of a v3 image (its c/ folder)."""
    return sum(f.stat().st_size for f in (folder / level / "c").rglob("*") if f.is_file())


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_ome_image(
        tmp_path / "img.ome.zarr", shape=(2, 64, 64), axes="cyx", levels=3, chunks=(1, 16, 16)
    )


def _estimate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["estimate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_level_is_estimated_and_totalled(
    image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _estimate(
        capsys,
        str(image),
        "--all-arrays",
        "--compressor",
        "zstd:3",
        "--compressor",
        "none",
        "--chunks",
        "1,32,32",
        "--sample",
        "100",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert [a["path"] for a in doc["arrays"]] == ["0", "1", "2"]
    assert [a["bytes_now"] for a in doc["arrays"]] == [_files(image, p) for p in "012"]
    assert doc["bytes_now"] == sum(_files(image, p) for p in "012")
    assert doc["logical_bytes"] == 2 * 2 * (64 * 64 + 32 * 32 + 16 * 16)
    # the output layout of each level, as recompress would write it (clipped to the level)
    assert [a["estimate"]["candidates"][0]["chunk_shape"] for a in doc["arrays"]] == [
        [1, 32, 32],
        [1, 32, 32],
        [1, 16, 16],
    ]
    zstd, none = doc["projected_bytes"]
    assert zstd == sum(a["projected_bytes"][0] for a in doc["arrays"])
    assert none == doc["logical_bytes"]  # every chunk sampled: no compression is exact
    assert doc["best"] == 0 and doc["compressors"] == ["zstd:3", "none"]

    code, out, err = _estimate(
        capsys, str(image), "--all-arrays", "--compressor", "none", "--sample", "100"
    )
    assert code == 0, err
    text = " ".join(out.split())
    assert f"recompress writes 3 arrays; now {human_bytes(doc['bytes_now'])}" in text, text
    total = next(line for line in out.splitlines() if "total" in line)
    assert human_bytes(doc["logical_bytes"]) in total and "%" in total


def test_a_run_recompress_refuses_is_refused_with_its_message(
    image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _estimate(capsys, str(image), "--all-arrays", "--shards", "1,24,24")
    assert code == 1 and not out
    assert "24" in err and "multiple" in err.lower(), err
    code, out, err = _estimate(capsys, str(image), "--all-arrays", "--level", "1")
    assert code == 1 and "--level" in err and "--all-arrays" in err


def test_a_group_of_a_remote_store(
    tmp_path: Path, http_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over plain HTTP, the arrays of a group come from its consolidated metadata."""
    import warnings

    import zarr

    data = np.arange(32 * 32, dtype="uint16").reshape(32, 32)
    write_array(http_server.root / "g.zarr", data, chunks=(16, 16), name="sub/a")
    write_array(http_server.root / "g.zarr", data * 2, chunks=(16, 16), name="sub/b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the v3 spec
        zarr.consolidate_metadata(http_server.root / "g.zarr")
    code, out, err = _estimate(capsys, f"{http_server.url}/g.zarr", "--all-arrays", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [a["path"] for a in doc["arrays"]] == ["sub/a", "sub/b"]
    assert doc["source"] == f"{http_server.url}/g.zarr"
    # plain HTTP cannot list: the stored size is unknown, the projection is still made
    assert doc["bytes_now"] is None and all(p > 0 for p in doc["projected_bytes"])
    code, out, err = _estimate(capsys, f"{http_server.url}/g.zarr", "--all-arrays")
    assert code == 0, err
    said = " ".join(out.split())
    assert "stored size now unknown" in said and "now ?" not in said, out
    assert "total │ unknown" in said, out
    # the notebook's table says the same in its HTML
    import napari_zarr_explorer as nze

    run = nze.explore(f"{http_server.url}/g.zarr").estimate(wait=True)
    html = run._repr_html_()
    assert "stored size now unknown" in html and "now ? stored" not in html, html
    assert ">?<" not in html and ">unknown<" in html, html


def test_each_warning_names_its_array(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import zarr

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("data", shape=(64, 64), chunks=(16, 16), dtype="uint16")[:] = 1
    for name in ("empty", "other"):
        group.create_array(name, shape=(64, 64), chunks=(16, 16), dtype="uint16", fill_value=0)
    code, out, err = _estimate(capsys, str(tmp_path / "g.zarr"), "--all-arrays")
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines() if "nothing to sample" in line]
    assert len(lines) == 2, out
    assert lines[0].startswith("warning: empty: no stored chunks"), lines
    assert lines[1].startswith("warning: other: no stored chunks"), lines
