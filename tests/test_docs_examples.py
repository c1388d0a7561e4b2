"""The Python examples of the user guide run as written, on generated data of the same names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_zarr_explorer import testing

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _example(page: str, index: int = 0) -> str:
    """The *index*-th ```python block of docs/*page*."""
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)[index]


def _run(page: str, index: int = 0) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    exec(compile(_example(page, index), str(DOCS / page), "exec"), namespace)
    return namespace


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_validate_example(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    testing.write_ome_image("image.ome.zarr", shape=(1, 4, 32, 32), levels=2)
    ns = _run("validate.md")
    assert ns["report"].valid


def test_recompress_example(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    testing.write_ome_image("cells.ome.zarr", version="0.4", shape=(2, 4, 64, 64), labels=True)
    ns = _run("recompress.md")
    assert ns["report"].ok
    assert "shards" in capsys.readouterr().out  # the progress callback ran


def test_codecs_example(in_tmp: Path) -> None:
    data = testing.blobs((4, 64, 64)).astype("float32") / 100
    testing.write_array("floats.zarr", data, chunks=(1, 32, 32))
    ns = _run("codecs.md")
    assert ns["report"].verification == "within tolerance 0.01 absolute"
    assert ns["spec"].v3_json("uint8")[0]["name"] == "imagecodecs_webp"


def test_codecs_refusal_example_is_what_recompress_says(in_tmp: Path) -> None:
    """The refused chunk shape shown in docs/codecs.md is the message recompress gives."""
    from napari_zarr_explorer.errors import CodecError
    from napari_zarr_explorer.recompress import recompress

    page = (DOCS / "codecs.md").read_text()
    found = re.search(r"```text\n(\S+: jpeg encodes 2-D images.*?)```", page, flags=re.S)
    assert found, "docs/codecs.md shows the refusal, naming the array"
    where, _, message = " ".join(found.group(1).split()).partition(": ")
    name = Path(where).name
    testing.write_array(name, np.zeros((2, 64, 64), "uint8"), chunks=(2, 64, 64))
    with pytest.raises(CodecError) as refused:
        recompress(name, "out.zarr", compressor="jpeg:quality=90")
    assert str(refused.value) == f"{in_tmp / name}: {message}"


def test_xarray_example(in_tmp: Path) -> None:
    testing.write_ome_image(
        "image.ome.zarr", shape=(2, 8, 64, 64), levels=2,
        channels=[("DAPI", "0000FF"), ("GFP", "00FF00")],
    )  # fmt: skip
    ns = _run("xarray.md")
    plane = ns["level1"].sel(c="GFP").isel(z=4).sel(y=slice(10.0, 20.0)).values
    assert isinstance(plane, np.ndarray) and plane.shape[0] > 0
