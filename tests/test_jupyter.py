"""``nze.explore(url)``: the notebook explorer, in-process and in a real Jupyter kernel."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from napari_zarr_explorer import testing


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return testing.write_ome_image(tmp_path / "img.ome.zarr", shape=(2, 4, 64, 64), levels=2)


def test_importing_the_package_does_not_import_ipywidgets() -> None:
    code = (
        "import sys, napari_zarr_explorer as nze; nze.explore; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('ipywidgets', 'qtpy', 'PyQt6', 'napari')]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_explore_tree_panels_chunk_map_and_recompress(image: Path, tmp_path: Path) -> None:
    import napari_zarr_explorer as nze

    w = nze.explore(str(image))
    assert w.url == str(image) and w.error is None
    assert [path for _, path in w.tree.options] == ["", "0", "1"]
    assert "OME" in w.panels["OME"].value or "image" in w.panels["OME"].value
    # a click in the tree selects a node; the level list follows
    w.tree.value = "0"
    assert w.selected_path == "0"
    assert "Shape" in w.panels["Array"].value or "64" in w.panels["Array"].value
    # the chunk map button draws a PNG and its legend
    w.chunk_form.compute_button.native.click()
    assert w.cmap is not None and w.cmap.chunks_total > 0
    png = bytes(w.chunk_image.value)
    assert png.startswith(b"\x89PNG") and b"IDAT" in png
    assert "present" in w.chunk_legend.value and "missing" in w.chunk_legend.value
    # the form's default output is a sibling of the store, and what the user types stays
    assert w.recompress_form.output.value == str(image.parent / "img-recompressed.ome.zarr")
    out = tmp_path / "typed.zarr"
    w.recompress_form.output.native.value = str(out)  # as typed in the browser
    w.tree.value = "1"
    assert w.recompress_form.output.value == str(out)
    report = w.estimate()
    assert report is not None and report.candidates
    assert "zstd" in w.estimate_view.value
    report = w.run(wait=True)
    assert report is not None and report.ok
    assert w.progress.value == w.progress.max > 0
    import html

    assert html.unescape(w.progress_label.value) == f"<small>{report.done_line()}.</small>"
    assert "?" not in report.done_line()
    # an output inside the source is refused, with the reason shown
    w.recompress_form.output.value = str(image / "inside.zarr")
    assert w.run(wait=True) is None
    assert "inside the source store" in w.progress_label.value
    assert not (image / "inside.zarr").exists()


def test_explore_failures_say_why(tmp_path: Path) -> None:
    import napari_zarr_explorer as nze

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    w = nze.explore(str(folder))
    assert w.url is None and "not a Zarr store" in (w.error or "")
    assert "Could not read" in w.status.value
    # the open box: type a store, click Open
    good = testing.write_array(tmp_path / "good.zarr", np.zeros((8, 8), dtype="uint8"))
    w.open_form.location.native.value = str(good)
    w.open_form.open_button.native.click()
    assert w.url == str(good) and w.error is None


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_explore_a_store_whose_root_has_no_metadata_shows_its_nodes(
    tmp_path: Path, zarr_format: int
) -> None:
    """A store whose root holds no metadata of its own (a v2 hierarchy without a root
    ``.zgroup``, a v3 implicit root) but nodes below it is shown, as ``inspect`` and the
    explorer dock show it: it was refused as "not a Zarr store"."""
    import napari_zarr_explorer as nze

    store = tmp_path / "rootless.zarr"
    testing.write_array(
        store / "a", np.arange(16, dtype="uint8").reshape(4, 4), zarr_format=zarr_format
    )
    assert not any((store / name).exists() for name in (".zgroup", ".zattrs", "zarr.json"))
    w = nze.explore(str(store))
    assert w.error is None and w.url == str(store), w.error
    assert [path for _, path in w.tree.options] == ["a"]
    assert w.selected_path == "a"
    assert "16" in w.panels["Array"].value or "4" in w.panels["Array"].value


def test_explore_a_store_whose_root_cannot_be_read_says_why(tmp_path: Path) -> None:
    import napari_zarr_explorer as nze

    store = tmp_path / "bad.zarr"
    store.mkdir()
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": ')
    w = nze.explore(str(store))
    assert w.url is None
    assert (w.error or "").startswith(f"{store / 'zarr.json'}: invalid JSON"), w.error


def test_explore_failures_name_what_went_wrong(image: Path, tmp_path: Path) -> None:
    """A failed run says what went wrong and where, in the words the command line uses."""
    import html

    import napari_zarr_explorer as nze

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    w = nze.explore(str(image))
    w.tree.value = "0"
    w.recompress_form.output.value = str(blocker / "out.zarr")
    assert w.run(wait=True) is None
    shown = html.unescape(w.progress_label.value)
    assert f"Cannot write to {blocker / 'out.zarr'}: {blocker} is a file, not a folder." in shown
    assert "Error" not in shown, shown  # a refusal, not an exception's name


def test_png_of_states_draws_each_state() -> None:
    from napari_zarr_explorer.jupyter import png_of_states

    png = png_of_states(np.array([[0, 1], [2, 3]], dtype=np.uint8), max_px=4)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    start = png.index(b"IDAT") + 4
    length = int.from_bytes(png[start - 8 : start - 4], "big")
    raw = zlib.decompress(png[start : start + length])
    rows = [raw[i * 13 + 1 : (i + 1) * 13] for i in range(4)]  # 4x4 px, 2 px per cell
    assert rows[0][:3] == bytes([0xD9, 0xD9, 0xD9])  # missing
    assert rows[0][6:9] == bytes([0x2C, 0xA0, 0x2C])  # present
    assert rows[2][:3] == bytes([0xD6, 0x27, 0x28])  # corrupt


@pytest.mark.slow
def test_explore_in_a_real_kernel(tmp_path: Path, image: Path, kernel_name: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import napari_zarr_explorer as nze\nw = nze.explore({str(image)!r})\nw"
        ),
        nbformat.v4.new_code_cell(
            "w.tree.value = '0'\nw.chunk_form.compute_button.native.click()\n"
            "print(w.cmap.chunks_total, len(w.chunk_image.value))"
        ),
    ]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name=kernel_name, store_widget_state=True
    )
    client.execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "explore() did not display as a widget"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {m["model_name"] for m in state.values()}
    assert {"SelectModel", "ImageModel", "IntProgressModel", "TabModel"} <= models
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert int(printed.split()[0]) > 0 and int(printed.split()[1]) > 100


def test_explore_says_when_the_stored_size_is_unknown(image: Path, http_server) -> None:
    """Over plain HTTP the store cannot list its keys: the status says the size is unknown."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(image, http_server.root / "img.ome.zarr")
    w = nze.explore(f"{http_server.url}/img.ome.zarr")
    assert w.error is None
    assert "stored size unknown" in w.status.value and "- stored" not in w.status.value
    local = nze.explore(str(image))
    assert "stored size unknown" not in local.status.value and " stored" in local.status.value
