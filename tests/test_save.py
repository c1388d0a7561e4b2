"""nze.save: layers and arrays to OME-Zarr 0.4/0.5, through the verified recompress engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading

import dask.array as da
import numpy as np
import pytest
import zarr

import napari_zarr_explorer as nze
from napari_zarr_explorer.errors import ExplorerError
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.ome.validate import validate
from napari_zarr_explorer.recompress._source import downsample


def _attrs(path, sub=""):
    p = path / sub if sub else path
    if (p / "zarr.json").exists():
        doc = json.loads((p / "zarr.json").read_text())
        return doc["attributes"]["ome"]
    return json.loads((p / ".zattrs").read_text())


def _scene(shape=(1500, 2100)):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 60000, size=shape, dtype=np.uint16)
    b = rng.integers(0, 60000, size=shape, dtype=np.uint16)
    lab = np.zeros(shape, np.uint32)
    lab[10:400, 20:300] = 4
    lab[900:1000, 1000:2000] = 11
    common = {"scale": (0.5, 0.2), "translate": (3.0, -7.5), "axis_labels": ("y", "x")}
    common["units"] = ("micrometer", "micrometer")
    return [
        (a, {"name": "DAPI", "colormap": "blue", "contrast_limits": (10, 5000), **common}, "image"),
        (b, {"name": "GFP", "colormap": "green", "visible": False, **common}, "image"),
        (
            lab,
            {"name": "cells", "colormap": {4: [1, 0, 0, 1], 11: [0, 0.5, 1, 1]}, **common},
            "labels",
        ),
    ]


@pytest.mark.parametrize("ome_version", ["0.5", "0.4"])
def test_image_channels_and_labels_round_trip(tmp_path, ome_version):
    layers = _scene()
    out = tmp_path / "scene.ome.zarr"
    rep = nze.save(layers, out, ome_version=ome_version)
    assert rep.ok and rep.verified and rep.complete
    assert validate(str(out)).valid
    ome = _attrs(out)
    ms = ome["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["axes"][1] == {"name": "y", "type": "space", "unit": "micrometer"}
    # a pyramid down to what fits on screen, scale doubling on y and x, translation kept
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    for k, d in enumerate(ms["datasets"]):
        tr = d["coordinateTransformations"]
        assert tr[0] == {"type": "scale", "scale": [1.0, 0.5 * 2**k, 0.2 * 2**k]}
        assert tr[1] == {"type": "translation", "translation": [0.0, 3.0, -7.5]}
    chans = ome["omero"]["channels"]
    assert [c["label"] for c in chans] == ["DAPI", "GFP"]
    assert [c["color"] for c in chans] == ["0000FF", "00FF00"]
    assert [c["active"] for c in chans] == [True, False]
    assert chans[0]["window"]["start"] == 10 and chans[0]["window"]["end"] == 5000
    il = _attrs(out, "labels/cells")["image-label"]
    assert il["colors"] == [
        {"label-value": 4, "rgba": [255, 0, 0, 255]},
        {"label-value": 11, "rgba": [0, 128, 255, 255]},
    ]
    if ome_version == "0.4":
        assert ms["version"] == "0.4" and (out / ".zgroup").exists()
        assert zarr.open_array(str(out / "0"), mode="r").metadata.zarr_format == 2
    else:
        arr = zarr.open_array(str(out / "0"), mode="r")
        assert arr.shards == (1, 1536, 2048) and arr.chunks == (1, 256, 256)
    # read back: exact data, placement, channels, labels
    got = open_layers(str(out))
    img, kw, kind = got[0]
    assert kind == "image" and kw["name"] == ["DAPI", "GFP"]
    assert kw["scale"] == (0.5, 0.2) and kw["translate"] == (3.0, -7.5)
    assert kw["visible"] == [True, False]
    np.testing.assert_array_equal(np.asarray(img[0][0]), layers[0][0])
    np.testing.assert_array_equal(np.asarray(img[0][1]), layers[1][0])
    lab, lkw, lkind = got[1]
    assert lkind == "labels" and lkw["name"] == "cells"
    np.testing.assert_array_equal(np.asarray(lab[0]), layers[2][0])
    # levels are the mean (images) and nearest (labels) of the level above
    np.testing.assert_array_equal(
        np.asarray(img[1]), downsample(np.asarray(img[0]), (1, 2, 2), "mean")
    )
    np.testing.assert_array_equal(np.asarray(lab[2]), layers[2][0][::4, ::4])


def test_mean_downsampling_averages_partial_blocks():
    a = np.array([[1, 3, 10], [5, 7, 20]], dtype=np.uint8)
    np.testing.assert_array_equal(downsample(a, (2, 2), "mean"), [[4, 15]])
    f = np.array([[1.0, 2.0, 4.0]])
    np.testing.assert_allclose(downsample(f, (1, 2), "mean"), [[1.5, 4.0]])
    np.testing.assert_array_equal(downsample(a, (2, 2), "nearest"), [[1, 10]])


def test_multiscale_layers_keep_their_levels(tmp_path):
    base = np.arange(4 * 64 * 64, dtype=np.float32).reshape(4, 64, 64)
    levels = [base, base[:, ::2, ::2].copy(), base[:, ::4, ::4].copy()]
    out = tmp_path / "ms.ome.zarr"
    nze.save(
        [(levels, {"multiscale": True, "scale": (2.0, 1.0, 1.0), "name": "vol"}, "image")], out
    )
    ms = _attrs(out)["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 2.0, 1.0, 1.0], [1.0, 2.0, 2.0, 2.0], [1.0, 2.0, 4.0, 4.0]]
    for k, lv in enumerate(levels):
        np.testing.assert_array_equal(zarr.open_array(str(out / str(k)))[0], lv)


def test_labels_alone_become_a_label_image_with_properties(tmp_path):
    lab = np.zeros((30, 40), np.int16)
    lab[5:10, 5:10] = 2
    props = {"index": [0, 2], "area": [0.0, 25.0], "kind": ["bg", "nucleus"]}
    out = tmp_path / "lab.ome.zarr"
    nze.save(lab, out, layer_type="labels", name="nuclei", properties=props, ome_version="0.4")
    ome = _attrs(out)
    assert "image-label" in ome and "labels" not in ome
    assert ome["image-label"]["properties"][1] == {
        "label-value": 2,
        "area": 25.0,
        "kind": "nucleus",
    }
    assert validate(str(out)).valid
    ((data, kw, kind),) = open_layers(str(out))
    assert kind == "labels" and kw["metadata"]["label_properties"][1]["kind"] == "nucleus"
    np.testing.assert_array_equal(np.asarray(data), lab)


def test_arrays_with_metadata_and_a_channel_axis(tmp_path):
    data = np.random.default_rng(2).random((3, 5, 40, 50)).astype(np.float32)  # z c y x
    out = tmp_path / "a.ome.zarr"
    nze.save(
        data,
        out,
        channel_axis=1,
        axis_labels=("z", "y", "x"),
        scale=(3, 1, 1),
        units="micrometer",
        name=["a", "b", "c", "d", "e"],
        compressor="blosc-lz4",
        chunks=(1, 1, 16, 16),
        shards="none",
    )
    ms = _attrs(out)["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    arr = zarr.open_array(str(out / "0"))
    assert arr.shape == (5, 3, 40, 50) and arr.shards is None and arr.chunks == (1, 1, 16, 16)
    np.testing.assert_array_equal(arr[:], np.moveaxis(data, 1, 0))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([(np.zeros((4, 4)), {}, "image"), (np.zeros((5, 4)), {}, "image")], "differ in shape"),
        ([(np.zeros((4, 4), np.float32), {"name": "m"}, "labels")], "must be integers"),
        ([(np.zeros((2,) * 6, np.uint8), {}, "image")], "at most 4"),
        ([(np.zeros((4, 4)), {}, "points")], "only image and"),
        ([(np.zeros((4, 4), np.uint8), {}, "labels")] * 2, "one label image alone"),
    ],
)
def test_layers_that_cannot_be_saved_are_refused_clearly(tmp_path, layers, message):
    with pytest.raises(ExplorerError, match=message):
        nze.save(layers, tmp_path / "x.ome.zarr")
    assert not (tmp_path / "x.ome.zarr").exists()


def test_existing_output_needs_overwrite_and_is_swapped_safely(tmp_path):
    out = tmp_path / "img.ome.zarr"
    first = np.full((20, 30), 1, np.uint8)
    nze.save(first, out)
    with pytest.raises(ExplorerError, match="already exists"):
        nze.save(first, out)
    # the new data is read from the store being replaced: write beside, verify, then swap
    ((old, kw, _),) = open_layers(str(out))
    assert kw["channel_axis"] == 0
    rep = nze.save(old + 1, out, overwrite=True, channel_axis=0)
    assert rep.ok and rep.destination == str(out) and rep.backup is None
    np.testing.assert_array_equal(zarr.open_array(str(out / "0"))[0], first + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.ome.zarr"]
    rep = nze.save(first, out, overwrite=True, keep_backup=True)
    assert rep.backup and ".backup-" in rep.backup
    np.testing.assert_array_equal(zarr.open_array(rep.backup + "/0")[0], first + 1)


def test_overwrite_refuses_what_is_not_a_zarr_store(tmp_path):
    folder = tmp_path / "notes.zarr"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(ExplorerError, match="not a Zarr store"):
        nze.save(np.zeros((4, 4), np.uint8), folder, overwrite=True)
    assert (folder / "thesis.txt").read_text() == "precious"


def test_v2_has_no_shards(tmp_path):
    with pytest.raises(ExplorerError, match="no shards"):
        nze.save(np.zeros((4, 4), np.uint8), tmp_path / "x.zarr", ome_version="0.4", shards=(4, 4))


def test_cancel_keeps_nothing_and_partial_output_is_marked(tmp_path):
    data = da.zeros((64, 1024, 1024), dtype=np.uint16, chunks=(1, 256, 256)) + 3  # 8 tasks
    out = tmp_path / "c.ome.zarr"
    cancel = threading.Event()
    seen = []

    def progress(ev):
        if ev.phase == "write" and ev.objects_done:
            # while writing, the root says the store is incomplete
            root = json.loads((out / "zarr.json").read_text())
            seen.append(root["attributes"]["napari_zarr_explorer"]["incomplete"])
            cancel.set()

    rep = nze.save(
        data,
        out,
        progress=progress,
        cancel=cancel,
        threads=1,
        chunks=(1, 64, 64),
        shards=(1, 256, 256),
    )
    assert rep.cancelled and not rep.complete
    assert seen and all(seen)
    assert not out.exists()


def test_lazy_data_is_written_with_bounded_memory(tmp_path):
    # 768 MiB of lazily generated data and a 3-level pyramid; the process may grow by at most
    # 320 MiB (about 210 MiB measured with two threads), so the data is never held whole
    script = textwrap.dedent(
        """
        import resource, sys
        import dask.array as da, numpy as np
        import napari_zarr_explorer as nze

        def block(block_info=None):
            (z0, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
            y = np.arange(y0, y1, dtype=np.uint32)[:, None]
            x = np.arange(x0, x1, dtype=np.uint32)[None, :]
            return ((y * 7 + x * 3 + z0) % 251).astype(np.uint8)[None]

        data = da.map_blocks(block, chunks=((1,) * 48, (1024,) * 4, (1024,) * 4), dtype=np.uint8)
        nze.save(np.zeros((4, 4), np.uint8), sys.argv[1] + ".warm")  # imports, caches
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rep = nze.save(data, sys.argv[1], compressor="zstd:1", threads=2)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert rep.ok, str(rep)
        print((after - before) * 1024, data.nbytes)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big.ome.zarr")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    grown, nbytes = map(int, proc.stdout.split())
    assert nbytes == 768 * 2**20
    assert grown < 320 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"
    big = tmp_path / "big.ome.zarr"
    lv0, lv1, lv2 = (zarr.open_array(str(big / str(k))) for k in range(3))
    assert lv2.shape == (1, 48, 1024, 1024)
    np.testing.assert_array_equal(lv0[0, 5, :2, :3], [[5, 8, 11], [12, 15, 18]])
    np.testing.assert_array_equal(lv2[0, 5, :4, :4], downsample(lv1[0, 5, :8, :8], (2, 2), "mean"))


def test_save_modules_and_the_form_import_without_qt_or_napari():
    # the form is magicgui declared without Qt: it builds in Jupyter as in napari
    code = (
        "import sys; import napari_zarr_explorer.writer, napari_zarr_explorer.save_form, "
        "napari_zarr_explorer._cli.save, napari_zarr_explorer._writer; "
        "bad = [k for k in sys.modules if k.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'vispy', 'superqt')]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_preview_defaults_and_estimate_without_writing(tmp_path):
    from napari_zarr_explorer.writer import preview_save

    layers = _scene((1500, 2100))
    pv = preview_save(layers, compressor="zstd:3")
    assert pv.shape == (2, 1500, 2100) and pv.axes == ("c", "y", "x") and pv.levels == 3
    assert pv.chunks == (1, 256, 256) and pv.shards == (1, 1536, 2048)
    assert pv.ratio is not None and pv.projected_bytes and pv.projected_bytes < pv.nbytes * 1.1
    # the ratio shown beside the projected size is the one that size gives (edge chunks pad)
    assert pv.ratio == pytest.approx(pv.nbytes / pv.projected_bytes, rel=1e-3)
    pv4 = preview_save(layers, ome_version="0.4", chunks=(1, 512, 512))
    assert pv4.shards is None and pv4.chunks == (1, 512, 512)
    assert ", 3 levels, " in str(pv) and not list(tmp_path.iterdir())
    one = preview_save(np.zeros((64, 64), np.uint16))  # too small for a pyramid
    assert one.levels == 1 and ", 1 level, " in str(one), str(one)


def test_image_codec_chunk_shape_is_refused_before_anything_is_written(tmp_path):
    from napari_zarr_explorer.errors import CodecError
    from napari_zarr_explorer.writer import preview_save

    data = np.zeros((3, 64, 64), dtype="uint8")
    out = tmp_path / "planes.ome.zarr"
    match = r"jpeg encodes 2-D images.*chunks \(1, 3, 64, 64\).*1,1,64,64"
    with pytest.raises(CodecError, match=f"^{re.escape(str(out))}/0: {match}"):
        nze.save(data, out, compressor="jpeg:quality=90", chunks=(3, 64, 64), shards="none")
    assert not out.exists()
    # the Save dock's estimate says it first, naming the level (no output chosen yet)
    with pytest.raises(CodecError, match=f"^Level '0': {match}"):
        preview_save(data, compressor="jpeg:quality=90", chunks=(3, 64, 64), shards="none")
    nze.save(data, out, compressor="jpeg:quality=90", chunks=(1, 64, 64), shards="none")
    assert out.exists()


def test_plan_source_names_layers_and_only_given_channel_names(tmp_path):
    """The report's source lists what the user named: each channel of a layer named channel by
    channel, otherwise the layer (an RGB photo is 'photo', not its red, green and blue)."""
    from napari_zarr_explorer.writer import plan_save

    rgb = (np.zeros((64, 64, 3), np.uint8), {"rgb": True, "name": "photo"}, "image")
    assert plan_save([rgb], tmp_path / "a.ome.zarr")[0].source == "layers 'photo'"
    unnamed = (np.zeros((2, 64, 64), np.uint16), {"channel_axis": 0, "name": "cells"}, "image")
    assert plan_save([unnamed], tmp_path / "b.ome.zarr")[0].source == "layers 'cells'"
    named = (np.zeros((2, 64, 64), np.uint16), {"channel_axis": 0, "name": ["a", "b"]}, "image")
    assert plan_save([named], tmp_path / "c.ome.zarr")[0].source == "layers 'a', 'b'"


def test_save_messages_name_the_layer_and_level_not_a_made_up_output(tmp_path):
    """The Save dock previews before any output is typed: its messages name the layer or the
    level, never a placeholder output; a save names the array in its output."""
    from napari_zarr_explorer.errors import CodecError, ExplorerError
    from napari_zarr_explorer.writer import preview_save

    cells = (np.zeros((64, 64), np.uint16), {"name": "cells"}, "image")
    with pytest.raises(ExplorerError) as preview:
        preview_save([cells], chunks=(32, 32), shards=(48, 48))
    assert str(preview.value).startswith("Level '0': shard shape"), str(preview.value)
    out = tmp_path / "cells.ome.zarr"
    with pytest.raises(ExplorerError) as saving:
        nze.save([cells], out, chunks=(32, 32), shards=(48, 48))
    assert str(saving.value).startswith(f"{out}/0: shard shape"), str(saving.value)
    lossy = "bitround:keepbits=4+zstd:3"
    message = r"^Layer 'cells': bitround works on floating-point data only, not uint16\."
    with pytest.raises(CodecError, match=message):
        preview_save([cells], compressor=lossy)
    with pytest.raises(CodecError, match=message):
        nze.save([cells], out, compressor=lossy)
    assert not out.exists()
    # a layer split into channels, each named: every name the user gave
    split = (np.zeros((2, 64, 64), np.uint16), {"channel_axis": 0, "name": ["a", "b"]}, "image")
    with pytest.raises(CodecError, match=r"^Layers 'a', 'b': bitround works"):
        preview_save([split], compressor=lossy)


def test_plan_save_takes_a_location_or_no_output(tmp_path):
    from napari_zarr_explorer.store import parse_location
    from napari_zarr_explorer.writer import plan_save

    cells = (np.zeros((64, 64), np.uint16), {"name": "cells"}, "image")
    at, _ = plan_save([cells], parse_location(tmp_path / "a.ome.zarr"))
    nowhere, _ = plan_save([cells], None)
    assert [a.target for a in nowhere.arrays] == [a.target for a in at.arrays]
    assert not list(tmp_path.iterdir())


def test_a_layer_chunk_that_cannot_be_read_is_never_saved_as_the_fill_value(
    tmp_path, http_server, monkeypatch
):
    """napari shows a remote chunk that fails as the fill value; a save of it fails instead."""
    import warnings

    from napari_zarr_explorer.testing import write_ome_image

    monkeypatch.setenv("NZE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("NZE_REMOTE_BACKOFF", "0.01")
    write_ome_image(http_server.root / "img.ome.zarr", shape=(64, 64), axes="yx", levels=1)
    http_server.fail("img.ome.zarr/0/c/*", 500)
    ((data, kwargs, kind),) = open_layers(f"{http_server.url}/img.ome.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shown = np.asarray(data[0] if isinstance(data, list) else data)  # as napari shows it
    assert not shown.any()
    out = tmp_path / "copy.ome.zarr"
    with pytest.raises(ExplorerError) as info:
        nze.save([(data, kwargs, kind)], str(out))
    message = str(info.value)
    assert message.startswith(f"Saving layers {kwargs['name']!r} to {out} failed at"), message
    assert f"{http_server.url}/img.ome.zarr/0/c/0/0" in message and "HTTP 500" in message
    assert "Nothing was kept" in message and "--resume" not in message
    assert not out.exists()
