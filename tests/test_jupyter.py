"""``nze.explore(url)``: the notebook explorer, in-process and in a real Jupyter kernel."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from napari_zarr_explorer import testing
from napari_zarr_explorer._html import human_bytes


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
    assert w.wait(timeout=120)
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
    report = w.estimate(wait=True)
    assert report is not None and report is w.estimate_report
    assert [a.path for a in report.arrays] == [""] and report.compressors[0] == "zstd:3"
    assert [r[0] for r in _Tables(w.estimate_view.value).rows] == ["array", "1", "total"]
    report = w.run(wait=True)
    assert report is not None and report.ok
    assert w.progress.value == w.progress.max > 0
    assert html.unescape(w.progress_label.value) == f"<small>{report.done_line()}.</small>"
    assert "?" not in report.done_line()
    # an output inside the source is refused, with the reason shown
    w.recompress_form.output.value = str(image / "inside.zarr")
    assert w.run(wait=True) is None
    assert "inside the source store" in w.progress_label.value
    assert not (image / "inside.zarr").exists()


class _Tables(HTMLParser):
    """The cells of every table row of an HTML text, as the browser shows them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _text(markup: str) -> str:
    """The text of an HTML fragment as the browser shows it (tags dropped, entities read)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_the_estimate_covers_every_level_of_an_image(image: Path) -> None:
    """Estimate on an image estimates the whole run: each level a row, and their total."""
    import napari_zarr_explorer as nze
    from napari_zarr_explorer.estimate import RunEstimate

    w = nze.explore(str(image))
    assert w.selected_path == ""  # the image
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    run = w.estimate_report
    assert isinstance(run, RunEstimate), w.estimate_view.value
    assert [a.path for a in run.arrays] == ["0", "1"]
    rows = _Tables(w.estimate_view.value).rows
    assert rows[0][:2] == ["array", "now"] and rows[0][2:] == list(run.compressors)
    body = {row[0]: row for row in rows[1:]}
    for a in run.arrays:
        assert body[a.path][1] == human_bytes(a.bytes_now)
        assert body[a.path][2] == human_bytes(run.projected_of(a, 0))
    total = run.projected(0)
    assert total == sum(run.projected_of(a, 0) or 0 for a in run.arrays) > 0
    assert run.bytes_now == sum(a.bytes_now or 0 for a in run.arrays)
    assert body["total"][1] == human_bytes(run.bytes_now)
    assert body["total"][2] == f"{human_bytes(total)} ({total / run.bytes_now:.0%} of now)"
    # warned exactly when the chosen encoding's total is larger than now
    assert ("larger than the source" in w.estimate_view.value) == (total > run.bytes_now)


def test_an_estimate_that_grows_the_data_warns(tmp_path: Path) -> None:
    """The chosen encoding projected larger than the source: the dock's warning, visible."""
    import napari_zarr_explorer as nze
    from napari_zarr_explorer.estimate import growth_warning

    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))  # compresses well: stored small
    src = testing.write_array(tmp_path / "smooth.zarr", smooth, chunks=(32, 32))
    w = nze.explore(str(src))
    w.recompress_form.compressor.value = "none"  # stored raw: larger than now
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    run = w.estimate_report
    now, after = run.bytes_now, run.projected(0)
    larger = round(100 * (after - now) / now)
    assert run.compressors[0] == "none" and larger > 15
    shown = _text(w.estimate_view.value)
    warning = growth_warning(run, 0, pick="a column of the table with a smaller total")
    assert warning is not None and warning in shown, shown
    assert warning.startswith(
        f"Warning: the estimate predicts the output will be {larger}% larger than the source "
        f"({human_bytes(now)} -> {human_bytes(after)} with none): choose a stronger codec"
    )
    assert "keep the source" in warning
    # a stronger choice estimated again: no warning
    w.recompress_form.compressor.value = "zstd"
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    assert w.estimate_report.compressors[0] == "zstd:3"
    assert "Warning" not in w.estimate_view.value


def test_a_run_estimate_shows_names_escaped_and_no_password(tmp_path: Path) -> None:
    """RunEstimate renders itself in Jupyter: names are text, a URL's password is not shown."""
    from dataclasses import replace

    from napari_zarr_explorer.errors import shown_url
    from napari_zarr_explorer.estimate import estimate_run

    store = tmp_path / "group.zarr"
    data = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    testing.write_array(store, data, chunks=(32, 32), name="<b>bold")
    testing.write_array(store, data[:32], chunks=(32, 32), name="plain")
    candidates = [{"compressor": "zstd:3"}, {"compressor": "none"}]
    run = estimate_run(str(store), "", str(store), candidates, {"compressor": "zstd:3"}, 4)
    assert sorted(a.path for a in run.arrays) == ["<b>bold", "plain"]
    url = "https://user:secret@example.org/data/group.zarr"
    markup = replace(run, source=url)._repr_html_()
    assert "<b>bold" not in markup and "&lt;b&gt;bold" in markup
    assert "secret" not in markup and html.escape(shown_url(url)) in markup
    rows = _Tables(markup).rows
    assert [r[0] for r in rows[1:]] == ["<b>bold", "plain", "total"]
    # the best total is the one highlighted
    assert run.best == 0
    best = human_bytes(run.projected(0))
    assert re.search(rf"<td[^>]*><b[^>]*>{re.escape(best)}", markup), markup


def test_the_estimate_of_a_store_behind_a_password_shows_no_password(
    image: Path, http_server, tmp_path: Path
) -> None:
    """A store read with ``user:password@``: the notebook's estimate and run name it without
    the password, while reading it with the password."""
    import base64
    import shutil

    import napari_zarr_explorer as nze
    from napari_zarr_explorer.errors import shown_url

    secret = "s3cr3t-pass"
    shutil.copytree(image / "0", http_server.root / "a.zarr")  # level 0 alone, as an array
    http_server.require_header(
        "Authorization", "Basic " + base64.b64encode(f"ann:{secret}".encode()).decode()
    )
    url = http_server.url.replace("://", f"://ann:{secret}@", 1) + "/a.zarr"
    w = nze.explore(url, storage_options={"explorer_retries": 1, "explorer_backoff": 0.01})
    assert w.error is None, w.error
    w.recompress_form.sample.value = 2
    run = w.estimate(wait=True)
    assert run is not None, w.estimate_view.value
    assert run.projected(0)  # sampled through the password
    shown = w.estimate_view.value
    assert secret not in shown and secret not in run._repr_html_()
    assert html.escape(shown_url(url)) in shown
    # what the views say while the source is read: the estimate's progress, the run's line
    http_server.hold("a.zarr/c/*")
    try:
        w.recompress_form.estimate_button.native.click()
        _arrived(http_server, "a.zarr/c/*")
        shown = w.estimate_view.value
        assert "Estimating" in shown and html.escape(shown_url(url)) in shown, shown
        assert secret not in shown
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    # every line the run shows, from "Recompressing ..." to its done line
    lines: list[str] = []
    w.progress_label.observe(lambda change: lines.append(change["new"]), names="value")
    w.recompress_form.output.value = str(tmp_path / "out.zarr")
    w.recompress_form.run_button.native.click()
    assert w.wait(timeout=120)
    assert lines[0] == f"<small>Recompressing {html.escape(shown_url(url))}...</small>", lines
    assert not [line for line in lines if secret in line], lines
    assert w.recompress_report is not None and w.recompress_report.ok, w.progress_label.value


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
            "w.wait(timeout=120)\nprint(w.cmap.chunks_total, len(w.chunk_image.value))"
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


WAIT_FOR_ESTIMATE = "Wait for the estimate to end, or Cancel it"


def _arrived(server: Any, pattern: str) -> None:
    """Wait until a request matching *pattern* reached *server* (fails on a hang only)."""
    import fnmatch
    import time

    deadline = time.monotonic() + 120
    while not any(fnmatch.fnmatchcase(p, pattern) for p in list(server.arrived)):
        assert time.monotonic() < deadline, f"no request for {pattern}: {server.arrived}"
        time.sleep(0.01)


def test_the_estimate_runs_in_the_background_and_cancel_stops_it(
    image: Path, http_server, tmp_path: Path
) -> None:
    """Estimate returns at once, as Recompress does: the kernel stays free while chunks are
    sampled, Cancel is offered, and a cancelled estimate projects the arrays not sampled."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(image, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    form = w.recompress_form
    assert form.estimate_button.enabled and not form.cancel_button.enabled
    form.output.value = str(tmp_path / "out.zarr")
    http_server.hold("img.ome.zarr/0/c/*")  # level 0's chunks are not answered for now
    try:
        form.estimate_button.native.click()  # returns while the estimate waits for them
        _arrived(http_server, "img.ome.zarr/0/c/*")
        assert w.estimate_report is None
        # the estimate says how far it is: the first of the two levels is being sampled
        assert "on sampled chunks: 0 of 2 arrays sampled" in _text(w.estimate_view.value)
        assert not form.estimate_button.enabled  # one estimate at a time
        # a run waits for the estimate, as in the dock, and its button says why
        assert form.cancel_button.enabled and not form.run_button.enabled
        assert form.run_button.tooltip == WAIT_FOR_ESTIMATE
        assert w.run() is None  # nor does a run start from code
        assert w.recompress_report is None and not (tmp_path / "out.zarr").exists()
        form.cancel_button.native.click()
        assert "Cancelling" in _text(w.estimate_view.value)
        assert not form.run_button.enabled  # not before the estimate has stopped
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    run = w.estimate_report
    # the chunk being read finished; the other level is projected at the compression ratio
    # of the chunks sampled, and the view says how much that was, first
    assert run is not None, w.estimate_view.value
    assert [a.path for a in run.arrays] == ["0"] and run.unsampled == 1 and run.cancelled
    shown = _text(w.estimate_view.value)
    n = run.chunks_sampled
    assert 1 <= n < run.arrays[0].report.chunks_to_sample
    assert shown.startswith(f"Estimate cancelled after sampling {n} chunk"), shown
    assert shown.count("Estimate cancelled") == 1 and "Sampled" not in shown
    assert (
        "1 array was not sampled: it is projected at the compression ratio of those sampled."
        in shown
    )
    assert form.estimate_button.enabled and not form.cancel_button.enabled
    assert form.run_button.enabled and form.run_button.tooltip != WAIT_FOR_ESTIMATE
    # estimated again without a cancel: every level, and no word of a cancel
    http_server.hold("img.ome.zarr/1/c/*")
    try:
        form.estimate_button.native.click()
        _arrived(http_server, "img.ome.zarr/1/c/*")
        assert not form.run_button.enabled
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert [a.path for a in w.estimate_report.arrays] == ["0", "1"]
    assert "cancel" not in _text(w.estimate_view.value).lower()
    assert form.run_button.enabled and form.run_button.tooltip != WAIT_FOR_ESTIMATE


def test_an_estimate_that_fails_says_why_once(tmp_path: Path) -> None:
    """A failed estimate shows its message in the estimate's view, once, and frees the form."""
    import napari_zarr_explorer as nze

    src = testing.write_array(tmp_path / "a.zarr", np.arange(64, dtype="uint16").reshape(8, 8))
    w = nze.explore(str(src))
    w.recompress_form.chunks.value = "2,a"
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    shown = _text(w.estimate_view.value)
    assert shown.count("is not a list of integers") == 1, shown
    assert w.estimate_report is None
    # a store that went away meanwhile: the failure of the estimate itself
    w.recompress_form.chunks.value = ""
    (src / "zarr.json").unlink()
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    shown = _text(w.estimate_view.value)
    assert "Estimating" not in shown and shown.count(str(src)) == 1, shown
    assert w.estimate_report is None
    assert w.recompress_form.estimate_button.enabled
    assert not w.recompress_form.cancel_button.enabled
    # a failed estimate lets a run start again
    assert w.recompress_form.run_button.enabled
    assert w.recompress_form.run_button.tooltip != WAIT_FOR_ESTIMATE


def test_an_estimate_of_a_run_that_cannot_be_planned_says_why_once(tmp_path: Path) -> None:
    """The reason the run cannot be planned is said once, even with the growth warning."""
    import warnings

    import zarr

    import napari_zarr_explorer as nze

    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    smooth = np.tile(np.arange(128, dtype="uint16"), (128, 1))  # stored raw: larger than now
    group.create_array("a", shape=smooth.shape, chunks=(32, 32), dtype="uint16")[:] = smooth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: fixed-length bytes are not in the v3 spec
        group.create_array("b", shape=(4,), chunks=(4,), dtype="S4")[:] = np.array([b"ab"] * 4)
    w = nze.explore(str(tmp_path / "g.zarr"))
    w.recompress_form.compressor.value = "none"
    w.recompress_form.estimate_button.native.click()
    assert w.wait(timeout=120)
    run = w.estimate_report
    assert run is not None and run.plan_error is not None, w.estimate_view.value
    shown = _text(w.estimate_view.value)
    assert "Warning: the estimate predicts the output will be" in shown, shown
    assert shown.count("cannot be planned") == 1, shown
    assert shown.count("cannot be recompressed") == 1, shown
    assert shown.count("The figures are for the first array only (a).") == 1, shown


@pytest.mark.slow
def test_the_estimate_leaves_a_real_kernel_free(
    tmp_path: Path, image: Path, http_server, kernel_name: str
) -> None:
    """In a Jupyter kernel, a click on Estimate returns while chunks are being sampled: the
    next cell runs (and can cancel it), as a click in the browser reaches a kernel that is
    not busy."""
    import shutil

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    shutil.copytree(image, http_server.root / "img.ome.zarr")
    url = f"{http_server.url}/img.ome.zarr"
    options = {"explorer_retries": 0, "explorer_timeout": 60}
    cells = [
        "import napari_zarr_explorer as nze\n"
        f"w = nze.explore({url!r}, storage_options={options!r})\n"
        "w.recompress_form.estimate_button.native.click()\n"
        "print('clicked')",
        "form = w.recompress_form\n"
        "print(w.estimate_report is None, form.estimate_button.enabled, "
        "form.cancel_button.enabled)\n"
        "form.cancel_button.native.click()",
        "print(w.wait(timeout=120), [a.path for a in w.estimate_report.arrays], "
        "w.estimate_report.unsampled)\n"
        "print('cancelled' if 'Estimate cancelled' in w.estimate_view.value else 'not said')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=kernel_name)
    http_server.hold("img.ome.zarr/0/c/*")
    try:
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)  # a blocking click would time out here
            _arrived(http_server, "img.ome.zarr/0/c/*")
            client.execute_cell(nb.cells[1], 1)
            http_server.release()
            client.execute_cell(nb.cells[2], 2)
    finally:
        http_server.release()
    printed = [
        "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream").split("\n")
        for c in nb.cells
    ]
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert printed[0][0] == "clicked"
    assert printed[1][0] == "True False True"
    assert printed[2][:2] == ["True ['0'] 1", "cancelled"]


@pytest.fixture
def tiled(tmp_path: Path) -> Path:
    """An image whose level 0 has 128 chunks: more than a chunk map asks for at once."""
    return testing.write_ome_image(
        tmp_path / "tiled.ome.zarr", shape=(2, 4, 64, 64), levels=2, chunks=(1, 1, 16, 16)
    )


def test_the_chunk_map_runs_in_the_background_and_cancel_stops_it(tiled: Path, http_server) -> None:
    """Map chunks returns at once, as Estimate does: the kernel stays free while the chunks
    are probed, Cancel is offered and stops the map, and the view says it was cancelled."""
    import shutil

    import napari_zarr_explorer as nze
    from napari_zarr_explorer.chunks import UNKNOWN

    shutil.copytree(tiled, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    form = w.chunk_form
    assert form.compute_button.enabled and not form.cancel_button.enabled
    http_server.hold("img.ome.zarr/0/c/*")  # level 0's chunks are not answered for now
    try:
        form.compute_button.native.click()  # returns while the map waits for them
        _arrived(http_server, "img.ome.zarr/0/c/*")
        assert w.cmap is None
        assert _text(w.chunk_summary.value) == "Mapping the chunks of /0..."
        assert not form.compute_button.enabled  # one map at a time
        assert form.cancel_button.enabled
        # the Recompress form is not busy: its own buttons are untouched
        assert w.recompress_form.estimate_button.enabled
        assert not w.recompress_form.cancel_button.enabled
        form.cancel_button.native.click()
        assert "Cancelling" in _text(w.chunk_summary.value)
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    cmap = w.cmap
    # the chunks asked before the cancel are known; the others are unknown, and drawn so
    assert cmap is not None and cmap.cancelled, w.chunk_summary.value
    assert cmap.chunks_unknown > 0 and cmap.count(UNKNOWN) == cmap.chunks_unknown
    shown = _text(w.chunk_summary.value)
    assert shown.startswith("Chunk map cancelled"), shown
    assert shown.count("cancelled") == 1, shown
    assert f"unknown {cmap.chunks_unknown}" in _text(w.chunk_legend.value)
    assert bytes(w.chunk_image.value).startswith(b"\x89PNG")
    assert form.compute_button.enabled and not form.cancel_button.enabled
    # mapped again without a cancel: every chunk known, its progress seen, no word of a cancel
    lines: list[str] = []
    w.chunk_summary.observe(lambda change: lines.append(_text(change["new"])), names="value")
    form.compute_button.native.click()
    assert w.wait(timeout=120)
    assert w.cmap is not None and not w.cmap.cancelled and w.cmap.chunks_unknown == 0
    assert w.cmap.chunks_present == 128
    assert "Mapping the chunks of /0: probing chunks, 128 of 128..." in lines, lines
    assert "cancel" not in _text(w.chunk_summary.value).lower()
    assert form.compute_button.enabled and not form.cancel_button.enabled


def test_a_chunk_map_that_fails_says_why_once_without_the_password(
    image: Path, http_server
) -> None:
    """A failed map shows the core's message once, naming the store without its password,
    and no picture of an earlier map; the form is free again. So does a map the server left
    incomplete, with the core's warning."""
    import base64
    import shutil

    import napari_zarr_explorer as nze
    from napari_zarr_explorer.errors import redact_urls, shown_url

    secret = "s3cr3t-pass"
    shutil.copytree(image / "0", http_server.root / "a.zarr")
    http_server.require_header(
        "Authorization", "Basic " + base64.b64encode(f"ann:{secret}".encode()).decode()
    )
    url = http_server.url.replace("://", f"://ann:{secret}@", 1) + "/a.zarr"
    w = nze.explore(url, storage_options={"explorer_retries": 0})
    assert w.error is None, w.error
    # a chunk the server does not deliver: the core's warning, once, without the password
    http_server.fail("a.zarr/c/*", 500)
    cmap = w.map_chunks(wait=True)
    assert cmap is not None and cmap.unanswered and cmap.warnings, w.chunk_summary.value
    shown = _text(w.chunk_summary.value)
    assert redact_urls(cmap.warnings[0]) in shown and shown.count("failed to answer") == 1
    assert secret not in w.chunk_summary.value
    http_server.clear_faults()
    assert w.map_chunks(wait=True) is w.cmap is not None  # read through the password
    assert w.chunk_image.value and not w.cmap.warnings
    (http_server.root / "a.zarr" / "zarr.json").unlink()  # the array went away meanwhile
    w.chunk_form.compute_button.native.click()
    assert w.wait(timeout=120)
    assert w.cmap is None
    shown = _text(w.chunk_summary.value)
    assert shown.startswith("Could not map the chunks."), shown
    assert secret not in w.chunk_summary.value
    assert shown.count(shown_url(url)) == 1, shown
    assert "Mapping" not in shown
    assert not w.chunk_image.value and not w.chunk_legend.value  # the earlier map is gone
    assert w.chunk_form.compute_button.enabled and not w.chunk_form.cancel_button.enabled


def test_a_level_chosen_while_mapping_is_the_one_mapped(tiled: Path, http_server) -> None:
    """Choosing another level while a map is made stops that map and maps the level chosen,
    as the Chunk map dock does: the view never shows the level left."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(tiled, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    http_server.hold("img.ome.zarr/*/c/*")  # every level's: the map of /1 waits too
    try:
        w.chunk_form.compute_button.native.click()
        _arrived(http_server, "img.ome.zarr/0/c/*")
        w.chunk_form.level.value = 1
        assert _text(w.chunk_summary.value).startswith("Mapping the chunks of /1")
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert w.cmap is not None and w.cmap.path == "1" and not w.cmap.cancelled
    assert _text(w.chunk_summary.value).startswith("/1:"), w.chunk_summary.value
    assert w.chunk_form.compute_button.enabled and not w.chunk_form.cancel_button.enabled


def test_a_chunk_map_asked_for_a_group_stops_the_map_going(tmp_path: Path, http_server) -> None:
    """Asked to map a group (nothing to map) while an array is mapped: the map going stops
    and shows nothing, and the view says what to select."""
    import warnings

    import zarr

    import napari_zarr_explorer as nze

    group = zarr.open_group(str(http_server.root / "g.zarr"), mode="w", zarr_format=3)
    group.create_array("a", shape=(64, 64), chunks=(4, 4), dtype="uint8")[:] = 1
    group.create_group("sub")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the v3 spec
        zarr.consolidate_metadata(str(http_server.root / "g.zarr"))
    w = nze.explore(f"{http_server.url}/g.zarr", storage_options={"explorer_retries": 0})
    assert w.error is None, w.error
    w.select("a")
    http_server.hold("g.zarr/a/c/*")
    try:
        w.chunk_form.compute_button.native.click()
        _arrived(http_server, "g.zarr/a/c/*")
        w.select("sub")
        assert w.map_chunks() is None
        assert w.chunk_form.compute_button.enabled and not w.chunk_form.cancel_button.enabled
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert w.cmap is None and not w.chunk_image.value
    assert _text(w.chunk_summary.value) == "Select an array or an image to map its chunks."


def test_another_node_selected_while_mapping_stops_that_map(tiled: Path, http_server) -> None:
    """Selecting another node while a map is made stops that map, as the Chunk map dock stops
    it on another layer, and maps the node selected: the map of the node left is never drawn,
    even when the Level stays 0."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(tiled, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    w.select("0")
    shown: list[str] = []
    w.chunk_summary.observe(lambda change: shown.append(_text(change["new"])), names="value")
    http_server.hold("img.ome.zarr/*/c/*")  # every level's: the map of /1 waits too
    try:
        w.chunk_form.compute_button.native.click()
        _arrived(http_server, "img.ome.zarr/0/c/*")
        w.select("1")  # an array too: its Level is 0, as the one left
        assert w.chunk_form.level.value == 0
        assert _text(w.chunk_summary.value).startswith("Mapping the chunks of /1")
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert w.cmap is not None and w.cmap.path == "1" and not w.cmap.cancelled
    assert _text(w.chunk_summary.value).startswith("/1:"), w.chunk_summary.value
    # the map of /0 stopped (it probes 128 chunks) and was never drawn, nor said cancelled
    assert http_server.count("img.ome.zarr/0/c/*") < 128
    assert not [line for line in shown if line.startswith("/0") or "cancel" in line], shown
    assert w.chunk_form.compute_button.enabled and not w.chunk_form.cancel_button.enabled


def test_the_chunk_map_shown_follows_the_selected_node(image: Path) -> None:
    """Once a map is shown, selecting another node shows that node's map, as choosing another
    Level does: never the map of the node left. Without a map asked for, nothing is mapped."""
    import napari_zarr_explorer as nze

    w = nze.explore(str(image))
    w.select("1")  # browsing alone maps nothing
    assert w.wait(timeout=120) and w.cmap is None and not w.chunk_image.value
    w.select("")  # the image: its level 0 is mapped
    cmap = w.map_chunks(wait=True)
    assert cmap is not None and cmap.path == "0"
    w.select("0")  # the same array: its map stays
    assert w.wait(timeout=120) and w.cmap is cmap
    w.select("1")
    assert w.wait(timeout=120)
    assert w.cmap is not None and w.cmap.path == "1"
    assert _text(w.chunk_summary.value).startswith("/1:"), w.chunk_summary.value
    w.select("")
    assert w.wait(timeout=120)
    assert w.cmap is not None and w.cmap.path == "0"
    assert _text(w.chunk_summary.value).startswith("/0:"), w.chunk_summary.value


def test_the_chunk_map_summary_says_whether_it_was_verified(tiled: Path, http_server) -> None:
    """The summary says whether every stored chunk was decoded, in the words of the command
    line's and the HTML's "verified" row."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(tiled, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    w.select("1")
    cmap = w.map_chunks(wait=True)
    assert cmap is not None and not cmap.verified
    shown = _text(w.chunk_summary.value)
    assert shown.endswith("Verified: no (listing only; tick Verify to decode)"), shown
    w.chunk_form.verify.value = True
    cmap = w.map_chunks(wait=True)
    assert cmap is not None and cmap.verified and cmap.verified_text() == "yes"
    assert _text(w.chunk_summary.value).endswith("Verified: yes"), w.chunk_summary.value
    # chunks the server did not deliver: not verified, and the summary says why
    http_server.fail("img.ome.zarr/1/c/*", 500)
    cmap = w.map_chunks(wait=True)
    assert cmap is not None and cmap.unanswered and not cmap.verified
    shown = _text(w.chunk_summary.value)
    assert f"Verified: {cmap.verified_text()}" in shown, shown
    assert "did not deliver" in cmap.verified_text()
    http_server.clear_faults()
    # cancelled while decoding: not verified, for that reason
    w.select("0")
    http_server.hold("img.ome.zarr/0/c/*")
    try:
        w.chunk_form.compute_button.native.click()
        _arrived(http_server, "img.ome.zarr/0/c/*")
        w.chunk_form.cancel_button.native.click()
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert w.cmap is not None and w.cmap.cancelled and not w.cmap.verified
    shown = _text(w.chunk_summary.value)
    assert shown.startswith("Chunk map cancelled"), shown
    assert shown.endswith("Verified: no: cancelled"), shown


@pytest.mark.slow
def test_the_chunk_map_leaves_a_real_kernel_free(
    tiled: Path, http_server, kernel_name: str
) -> None:
    """In a Jupyter kernel, a click on Map chunks returns while chunks are being probed: the
    next cell runs (and can cancel the map)."""
    import shutil

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    shutil.copytree(tiled, http_server.root / "img.ome.zarr")
    url = f"{http_server.url}/img.ome.zarr"
    options = {"explorer_retries": 0, "explorer_timeout": 60}
    cells = [
        "import napari_zarr_explorer as nze\n"
        f"w = nze.explore({url!r}, storage_options={options!r})\n"
        "w.chunk_form.compute_button.native.click()\n"
        "print('clicked')",
        "form = w.chunk_form\n"
        "print(w.cmap is None, form.compute_button.enabled, form.cancel_button.enabled)\n"
        "form.cancel_button.native.click()",
        "print(w.wait(timeout=120), w.cmap.cancelled, w.cmap.chunks_unknown > 0)\n"
        "print('cancelled' if 'Chunk map cancelled' in w.chunk_summary.value else 'not said')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=kernel_name)
    http_server.hold("img.ome.zarr/0/c/*")
    try:
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)  # a blocking click would time out here
            _arrived(http_server, "img.ome.zarr/0/c/*")
            client.execute_cell(nb.cells[1], 1)
            http_server.release()
            client.execute_cell(nb.cells[2], 2)
    finally:
        http_server.release()
    printed = [
        "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream").split("\n")
        for c in nb.cells
    ]
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert printed[0][0] == "clicked"
    assert printed[1][0] == "True False True"
    assert printed[2][:2] == ["True True True", "cancelled"]


def test_another_node_selected_while_estimating_stops_that_estimate(
    image: Path, http_server
) -> None:
    """The estimate is of the node selected when it started: selecting another node stops it,
    as the Recompress dock stops it on another source, and its figures are never drawn under
    the node selected now."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(image, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    shown: list[str] = []
    w.estimate_view.observe(lambda change: shown.append(_text(change["new"])), names="value")
    form = w.recompress_form
    http_server.hold("img.ome.zarr/*/c/*")  # every level's chunks wait
    try:
        form.estimate_button.native.click()
        _arrived(http_server, "img.ome.zarr/0/c/*")
        w.select("1")
        assert w._estimate_cancel.is_set()  # the estimate of the image stops
        assert _text(w.estimate_view.value) == ""
        # one thing at a time: nothing starts before the estimate left has stopped
        assert not form.estimate_button.enabled and not form.run_button.enabled
        at_switch = len(shown)
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    assert w.estimate_report is None
    assert shown[at_switch:] == [], shown[at_switch:]  # nothing drawn after the switch
    assert form.estimate_button.enabled and form.run_button.enabled
    assert not form.cancel_button.enabled
    # the node selected now is estimated as usual
    run = w.estimate(wait=True)
    assert run is not None and run.source.endswith("/img.ome.zarr/1"), w.estimate_view.value


def test_a_cancelled_run_keeps_saying_cancelling_until_it_ends(
    image: Path, http_server, tmp_path: Path
) -> None:
    """While the running tasks finish after Cancel, the run's line keeps saying it is
    cancelling (as the dock's does): no phase line comes over it."""
    import shutil

    import napari_zarr_explorer as nze

    shutil.copytree(image, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )
    assert w.error is None, w.error
    w.recompress_form.output.value = str(tmp_path / "out.zarr")
    lines: list[str] = []
    moves: list[int] = []  # the progress bar's values after the cancel
    http_server.hold("img.ome.zarr/*/c/*")
    try:
        w.recompress_form.run_button.native.click()
        _arrived(http_server, "img.ome.zarr/*/c/*")
        w.recompress_form.cancel_button.native.click()
        assert _text(w.progress_label.value) == "Cancelling..."
        w.progress_label.observe(lambda change: lines.append(_text(change["new"])), names="value")
        w.progress.observe(lambda change: moves.append(change["new"]), names="value")
        assert not moves  # the chunks read are held: nothing progresses before the release
    finally:
        http_server.release()
    assert w.wait(timeout=120)
    report = w.recompress_report
    assert report is not None, w.progress_label.value
    # the tasks running at the cancel finished and said so: progress did come after it ...
    assert moves, "no progress came after the cancel: nothing could overwrite 'Cancelling...'"
    # ... and only the end is said after "Cancelling...": how the run ended
    assert len(lines) <= 1, lines
    assert not [line for line in lines if re.match(r"\w+: \d+/\d+$", line)], lines


def test_an_observer_may_cancel_from_a_view_it_watches(image: Path, http_server) -> None:
    """A callback watching a view (a value set while the explorer updates its state) may call
    cancel() or map_chunks(): nothing deadlocks."""
    import shutil
    import threading

    import napari_zarr_explorer as nze

    shutil.copytree(image, http_server.root / "img.ome.zarr")
    w = nze.explore(
        f"{http_server.url}/img.ome.zarr",
        storage_options={"explorer_retries": 0, "explorer_timeout": 60},
    )

    def on_view(change: Any) -> None:
        if "Estimating" in _text(change["new"]):
            w.cancel()
            w.cancel_map()

    w.estimate_view.observe(on_view, names="value")
    clicked = threading.Thread(target=w.recompress_form.estimate_button.native.click, daemon=True)
    clicked.start()
    clicked.join(60)  # a deadlock would never end: fail instead of hanging the suite
    assert not clicked.is_alive(), "estimate() deadlocked on an observer calling cancel()"
    assert w.wait(timeout=120)
    assert w._estimate_cancel.is_set() and not w._estimating
