"""The reader through npe2: plain arrays and groups, every codec, other writers, OME-Zarr."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer._reader import napari_get_reader
from napari_zarr_explorer.errors import ExplorerError, ExplorerWarning
from napari_zarr_explorer.layers import open_layers

PLUGIN = "napari-zarr-explorer"


@pytest.fixture(scope="module", autouse=True)
def _plugins() -> None:
    import npe2

    npe2.PluginManager.instance().discover()


def read(path: Path | str) -> list[tuple[Any, dict[str, Any], str]]:
    import npe2

    out = npe2.read([str(path)], stack=False, plugin_name=PLUGIN)
    return [(d, k or {}, t or "image") for d, k, t in out]


def level0(data: Any) -> Any:
    return data[0] if isinstance(data, list) else data


DATA = testing.blobs((37, 45), seed=3, dtype="uint16")


# ---------------------------------------------------------------- plain arrays, every codec

V2_CASES: dict[str, dict[str, Any]] = {
    "blosc-noshuffle": {"compressor": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE)},
    "blosc-shuffle": {"compressor": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.SHUFFLE)},
    "blosc-bitshuffle": {"compressor": numcodecs.Blosc("lz4hc", 3, numcodecs.Blosc.BITSHUFFLE)},
    "blosc-zlib": {"compressor": numcodecs.Blosc("zlib", 3, numcodecs.Blosc.AUTOSHUFFLE)},
    "zstd": {"compressor": numcodecs.Zstd(5)},
    "gzip": {"compressor": numcodecs.GZip(6)},
    "zlib": {"compressor": numcodecs.Zlib(4)},
    "lz4": {"compressor": numcodecs.LZ4()},
    "bz2": {"compressor": numcodecs.BZ2(9)},
    "lzma": {"compressor": numcodecs.LZMA()},
    "delta": {"compressor": numcodecs.Zlib(1), "filters": [numcodecs.Delta("<u2")]},
    "none": {"compressor": None},
    "slash-separator": {"compressor": numcodecs.Zstd(1), "separator": "/"},
    "dot-separator": {"compressor": numcodecs.Zstd(1), "separator": "."},
}


@pytest.mark.parametrize("case", list(V2_CASES), ids=list(V2_CASES))
def test_v2_codecs_read_exactly(tmp_path: Path, case: str) -> None:
    path = testing.write_array(
        tmp_path / "a.zarr", DATA, zarr_format=2, chunks=(10, 16), **V2_CASES[case]
    )
    ((data, kwargs, kind),) = read(path)
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(data), DATA)
    assert kwargs["metadata"]["source_url"] == str(path)


V3_CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "zstd": {"compressor": "zstd:7"},
    "gzip": {"compressor": "gzip"},
    "blosc": {"compressor": "blosc"},
    "numcodecs-lz4": {"compressor": numcodecs.LZ4()},
    "numcodecs-bz2": {"compressor": numcodecs.BZ2()},
    "numcodecs-lzma": {"compressor": numcodecs.LZMA()},
    "numcodecs-zlib": {"compressor": numcodecs.Zlib()},
    "numcodecs-delta": {"compressor": "zstd", "filters": [numcodecs.Delta("<u2")]},
    "sharded": {"shards": (20, 32)},
    "v2-key-encoding": {"separator": "."},
    "none": {"compressor": None},
}


@pytest.mark.parametrize("case", list(V3_CASES), ids=list(V3_CASES))
def test_v3_codecs_read_exactly(tmp_path: Path, case: str) -> None:
    path = testing.write_array(
        tmp_path / "a.zarr", DATA, zarr_format=3, chunks=(10, 16), **V3_CASES[case]
    )
    ((data, _, _),) = read(path)
    np.testing.assert_array_equal(np.asarray(data), DATA)


def test_v3_transpose_crc32c_big_endian(tmp_path: Path) -> None:
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec

    arr = zarr.create_array(
        str(tmp_path / "t.zarr"),
        shape=DATA.shape,
        dtype=">u2",
        chunks=(8, 8),
        filters=[TransposeCodec(order=(1, 0))],
        serializer=BytesCodec(endian="big"),
        compressors=[BloscCodec(cname="lz4", shuffle="bitshuffle"), Crc32cCodec()],
        zarr_format=3,
    )
    arr[...] = DATA
    ((data, _, _),) = read(tmp_path / "t.zarr")
    assert data.dtype.isnative
    np.testing.assert_array_equal(np.asarray(data), DATA)


def test_v2_big_endian_and_fixedscaleoffset(tmp_path: Path) -> None:
    be = DATA.astype(">u2")
    testing.write_array(
        tmp_path / "be.zarr", be, zarr_format=2, chunks=(16, 16), compressor=numcodecs.Zstd(1)
    )
    ((data, _, _),) = read(tmp_path / "be.zarr")
    np.testing.assert_array_equal(np.asarray(data), DATA)

    f = np.linspace(0, 10, 37 * 45).reshape(37, 45).round(2)
    filt = numcodecs.FixedScaleOffset(offset=0, scale=100, dtype="<f8", astype="<u2")
    testing.write_array(
        tmp_path / "fso.zarr",
        f,
        zarr_format=2,
        chunks=(16, 16),
        filters=[filt],
        compressor=numcodecs.Zlib(1),
    )
    ((data, _, _),) = read(tmp_path / "fso.zarr")
    np.testing.assert_allclose(np.asarray(data), f, atol=0.006)


@pytest.mark.parametrize(
    "dtype", ["uint8", "int16", "int32", "uint64", "float32", "float64", "bool"]
)
def test_dtypes(tmp_path: Path, zarr_format: int, dtype: str) -> None:
    values = (DATA % 200).astype(dtype)
    testing.write_array(tmp_path / "a.zarr", values, zarr_format=zarr_format, chunks=(16, 16))
    ((data, _, _),) = read(tmp_path / "a.zarr")
    np.testing.assert_array_equal(
        np.asarray(data), values.astype("uint8" if dtype == "bool" else dtype)
    )


def test_missing_chunks_and_nan_fill(tmp_path: Path, zarr_format: int) -> None:
    values = DATA.astype("float32")
    path = testing.write_array(
        tmp_path / "a.zarr",
        values,
        zarr_format=zarr_format,
        chunks=(10, 16),
        fill_value=float("nan"),
    )
    # delete one chunk: it must read as the fill value (NaN)
    first = next(p for p in sorted(path.rglob("*")) if p.is_file() and p.name[0].isdigit())
    first.unlink()
    ((data, _, _),) = read(path)
    out = np.asarray(data)
    assert np.isnan(out).any()
    mask = ~np.isnan(out)
    np.testing.assert_array_equal(out[mask], values[mask])


# ---------------------------------------------------------------- other writers


def test_tensorstore_v2(tmp_path: Path) -> None:
    ts = pytest.importorskip("tensorstore")
    values = testing.blobs((50, 70), seed=5, dtype="int16")
    store = ts.open(
        {
            "driver": "zarr",
            "kvstore": {"driver": "file", "path": str(tmp_path / "ts2.zarr")},
            "metadata": {
                "shape": list(values.shape),
                "chunks": [16, 32],
                "dtype": "<i2",
                "compressor": {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2},
                "dimension_separator": "/",
            },
        },
        create=True,
    ).result()
    store[...] = values
    ((data, _, _),) = read(tmp_path / "ts2.zarr")
    np.testing.assert_array_equal(np.asarray(data), values)


def test_tensorstore_v3_sharded(tmp_path: Path) -> None:
    ts = pytest.importorskip("tensorstore")
    values = testing.blobs((4, 60, 70), seed=6, dtype="uint16")
    spec = testing.tensorstore_sharded_spec(
        tmp_path / "ts3.zarr", values.shape, dtype="uint16", chunks=(1, 16, 16), shards=(2, 32, 32)
    )
    store = ts.open(spec).result()
    store[...] = values
    ((data, _, _),) = read(tmp_path / "ts3.zarr")
    np.testing.assert_array_equal(np.asarray(data), values)
    np.testing.assert_array_equal(np.asarray(data[2, 10:40, 5:66]), values[2, 10:40, 5:66])


def test_zarr_implementations_corpus(corpus: Path) -> None:
    import imageio.v3 as iio

    root = corpus / "zarr_implementations"
    ref = iio.imread(root / "data" / "reference_image.png")
    layers = read(root / "examples" / "zarr.zr")
    names = sorted(k["name"] for _, k, _ in layers)
    assert names == ["blosc", "gzip", "raw", "zlib"]
    for data, kwargs, _ in layers:
        np.testing.assert_array_equal(np.asarray(data), ref, err_msg=kwargs["name"])


# ---------------------------------------------------------------- plain groups


def test_plain_group_pyramid(tmp_path: Path, zarr_format: int) -> None:
    base = testing.blobs((64, 96), seed=2)
    for i, name in enumerate(["full", "half", "quarter"]):
        testing.write_array(
            tmp_path / "g.zarr",
            base[:: 2**i, :: 2**i],
            name=name,
            zarr_format=zarr_format,
            chunks=(16, 16),
        )
    ((data, kwargs, _kind),) = read(tmp_path / "g.zarr")
    assert kwargs["multiscale"] is True
    assert [d.shape for d in data] == [(64, 96), (32, 48), (16, 24)]
    assert kwargs["metadata"]["level_paths"] == ["full", "half", "quarter"]
    np.testing.assert_array_equal(np.asarray(data[1]), base[::2, ::2])


def test_plain_group_of_unrelated_arrays(tmp_path: Path) -> None:
    testing.write_array(tmp_path / "g.zarr", np.zeros((8, 8)), name="a")
    testing.write_array(tmp_path / "g.zarr", np.ones((4, 9)), name="b")
    testing.write_array(tmp_path / "g.zarr", np.ones((5,)), name="vector")
    layers = read(tmp_path / "g.zarr")
    assert sorted(k["name"] for _, k, _ in layers) == ["a", "b"]


def test_v3_dimension_names_become_axis_labels(tmp_path: Path) -> None:
    testing.write_array(tmp_path / "a.zarr", np.zeros((4, 5, 6)), dimension_names=["z", "y", "x"])
    ((_, kwargs, _),) = read(tmp_path / "a.zarr")
    assert kwargs["axis_labels"] == ("z", "y", "x")


# ---------------------------------------------------------------- napari_get_reader


def test_get_reader_cheap_checks(tmp_path: Path) -> None:
    testing.write_array(tmp_path / "plain", np.zeros((4, 4)))  # no .zarr suffix
    assert napari_get_reader(str(tmp_path / "plain")) is not None
    assert napari_get_reader([str(tmp_path / "plain")]) is not None
    assert napari_get_reader(f"file://{tmp_path / 'plain'}") is not None
    assert napari_get_reader([str(tmp_path / "plain"), str(tmp_path / "plain")]) is None
    (tmp_path / "empty").mkdir()
    assert napari_get_reader(str(tmp_path / "empty")) is None
    (tmp_path / "file.txt").write_text("x")
    assert napari_get_reader(str(tmp_path / "file.txt")) is None
    assert napari_get_reader(str(tmp_path / "nothing")) is None
    assert napari_get_reader("ftp://example.org/a.zarr") is None
    for url in ("https://example.org/a.ome.zarr", "s3://bucket/a.zarr", "gs://bucket/b.zarr"):
        assert napari_get_reader(url) is not None


# ---------------------------------------------------------------- laziness


def test_nothing_is_decoded_at_open(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "img.zarr",
        version="0.4",
        shape=(2, 32, 32),
        axes="cyx",
        chunks=(1, 16, 16),
        labels=True,
    )
    # make every chunk undecodable: opening must neither fail nor warn
    for p in path.rglob("*"):
        if p.is_file() and p.name[0].isdigit() and p.parent.name != "OME":
            p.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplorerWarning)
        layers = open_layers(path)
    assert len(layers) == 2


def test_absurd_shape_opens_cheaply(tmp_path: Path) -> None:
    arr = zarr.create_array(
        str(tmp_path / "huge.zarr"),
        shape=(10**6, 10**6, 10**6),
        chunks=(1, 256, 256),
        dtype="uint8",
        zarr_format=3,
    )
    arr[0, :4, :4] = 7
    ((data, _, _),) = read(tmp_path / "huge.zarr")
    assert data.shape == (10**6,) * 3
    # napari aligns the regions it reads to the stored chunks it is told about
    assert data.chunks == (1, 256, 256)
    np.testing.assert_array_equal(np.asarray(data[0, :5, :5])[:4, :4], 7)


# ---------------------------------------------------------------- OME-Zarr


@pytest.mark.parametrize("version", ["0.1", "0.2", "0.3", "0.4", "0.5"])
def test_ome_image_versions(tmp_path: Path, version: str) -> None:
    shape, axes = (
        ((1, 2, 4, 64, 64), "tczyx") if version in ("0.1", "0.2") else ((2, 4, 64, 64), "czyx")
    )
    path = testing.write_ome_image(
        tmp_path / "img.zarr",
        version=version,
        shape=shape,
        axes=axes,
        chunks=(1,) * (len(shape) - 2) + (32, 32),
        levels=3,
        labels=True,
    )
    layers = read(path)
    (img, ik, it), (_lab, lk, lt) = layers
    assert it == "image" and lt == "labels"
    assert ik["multiscale"] is True and len(img) == 3
    assert ik["channel_axis"] == axes.index("c")
    assert ik["name"] == ["Channel 0", "Channel 1"]
    assert ik["colormap"] == ["magenta", "green"]
    assert ik["visible"] == [True, True]
    assert ik["axis_labels"] == tuple(a for a in axes if a != "c")
    if version in ("0.4", "0.5"):
        assert ik["scale"] == (2.0, 0.5, 0.5)
        assert ik["units"] == ("micrometer",) * 3
    else:
        assert "scale" not in ik
    assert ik["metadata"]["ome_version"] == version
    assert ik["metadata"]["level_paths"] == ["0", "1", "2"]
    expected = testing.blobs(shape, seed=0, dtype="uint16")
    np.testing.assert_array_equal(np.asarray(img[0]), expected)
    assert lk["name"] == "cells"
    assert lk["colormap"][1] == [1.0, 64 / 255, 64 / 255, 1.0]
    assert lk["metadata"]["level_paths"] == ["labels/cells/0", "labels/cells/1", "labels/cells/2"]


def test_omero_settings_and_transforms(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.5", shape=(3, 32, 32), axes="cyx", levels=2
    )
    doc = json.loads((path / "zarr.json").read_text())
    ome = doc["attributes"]["ome"]
    ome["multiscales"][0]["coordinateTransformations"] = [{"type": "scale", "scale": [1, 3, 3]}]
    ome["multiscales"][0]["datasets"][0]["coordinateTransformations"].append(
        {"type": "translation", "translation": [0, 1, 2]}
    )
    chans = ome["omero"]["channels"]
    chans[0].update(
        color="FF0000",
        label="red one",
        active=False,
        window={"start": 5, "end": 50, "min": 0, "max": 100},
    )
    chans[1].update(color="123456", inverted=True)
    del chans[2]["window"]
    del chans[2]["color"]
    (path / "zarr.json").write_text(json.dumps(doc))
    ((_, k, _),) = read(path)
    assert k["scale"] == (1.5, 1.5)
    assert k["translate"] == (3.0, 6.0)
    assert k["name"][0] == "red one"
    assert k["colormap"][0] == "red"
    assert k["colormap"][1]["colors"][0] == [0x12 / 255, 0x34 / 255, 0x56 / 255, 1.0]
    assert k["colormap"][2] == "cyan"
    assert k["visible"] == [False, True, True]
    assert k["contrast_limits"][0] == [5.0, 50.0]
    assert k["contrast_limits"][2] == [0.0, 65535.0]


def test_layers_are_accepted_by_napari(tmp_path: Path) -> None:
    from napari.components import ViewerModel

    path = testing.write_ome_image(
        tmp_path / "i.zarr",
        version="0.5",
        shape=(3, 8, 32, 32),
        axes="czyx",
        chunks=(1, 4, 16, 16),
        shards=(1, 8, 32, 32),
        levels=2,
        labels=True,
    )
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["ome"]["omero"]["channels"][1]["color"] = "A0B0C0"
    (path / "zarr.json").write_text(json.dumps(doc))
    viewer = ViewerModel()
    for data, kwargs, kind in read(path) + read(testing.write_plate(tmp_path / "p.zarr")):
        viewer._add_layer_from_data(data, kwargs, kind)
    names = [lay.name for lay in viewer.layers]
    assert names[:4] == ["Channel 0", "Channel 1", "Channel 2", "cells"]
    assert viewer.layers["cells"].colormap.color_dict[1] is not None
    assert str(viewer.layers["Channel 0"].units[0]) == "micrometer"
    assert np.allclose(
        viewer.layers["Channel 1"].colormap.colors[-1][:3], [0xA0 / 255, 0xB0 / 255, 0xC0 / 255]
    )


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_plate_mosaic(tmp_path: Path, version: str) -> None:
    path = testing.write_plate(
        tmp_path / "plate.zarr", version=version, rows=2, cols=3, fields=2, missing_wells=("B/2",)
    )
    # one layer per field (the field chooser): the first shown, the others hidden
    (f0, k0, kind), (f1, k1, _) = read(path)
    assert kind == "image" and k0["multiscale"] is True
    assert f0[0].shape == (2, 128, 192) and f0[1].shape == (2, 64, 96)
    md = k0["metadata"]
    assert md["ome_kind"] == "plate" and md["plate"]["fields"] == ["0", "1"]
    assert "A/1" in md["plate"]["wells"] and "B/2" not in md["plate"]["wells"]
    assert k1["metadata"]["plate"]["field"] == "1"
    assert k0["visible"] == [True, True] and k1["visible"] == [False, False]
    # every layer names its field: napari would otherwise number repeated channel names
    assert k0["name"] == ["Channel 0 field 0", "Channel 1 field 0"]
    assert k1["name"] == ["Channel 0 field 1", "Channel 1 field 1"]
    for field, data in (("0", f0), ("1", f1)):
        for r, c, well in ((0, 1, "A/2"), (1, 2, "B/3")):
            own = zarr.open_array(str(path / well / field / "0"), mode="r")[...]
            got = np.asarray(data[0][:, 64 * r : 64 * r + 64, 64 * c : 64 * c + 64])
            np.testing.assert_array_equal(got, own)
            coarse = zarr.open_array(str(path / well / field / "1"), mode="r")[...]
            got = np.asarray(data[1][:, 32 * r : 32 * r + 32, 32 * c : 32 * c + 32])
            np.testing.assert_array_equal(got, coarse)
    # the missing well is empty
    assert not np.asarray(f0[0][:, 64:128, 64:128]).any()


def test_well_opens_first_field(tmp_path: Path) -> None:
    path = testing.write_plate(tmp_path / "plate.zarr", version="0.4", rows=1, cols=1, fields=3)
    ((data, kwargs, _),) = read(path / "A" / "1")
    assert kwargs["metadata"]["fields"] == ["0", "1", "2"]
    assert data[0].shape == (2, 64, 64)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_bioformats2raw(tmp_path: Path, version: str) -> None:
    path = testing.write_bioformats2raw(tmp_path / "b.zarr", series=3, version=version)
    ((data, kwargs, _),) = read(path)
    assert data[0].shape == (3, 64, 96)
    assert kwargs["metadata"]["series"] == ["0", "1", "2"]
    assert kwargs["metadata"]["series_opened"] == "0"


def test_labels_group_and_single_label(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "i.zarr", version="0.4", shape=(2, 32, 32), axes="cyx", labels=True, levels=2
    )
    layers = read(path / "labels")
    assert [t for _, _, t in layers] == ["labels"]
    ((_, k, t),) = read(path / "labels" / "cells")
    assert t == "labels" and k["name"] == "cells"


def test_container_of_images(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "many.zarr"
    zarr.open_group(str(root), mode="w", zarr_format=2)
    for i in range(2):
        p = testing.write_ome_image(
            tmp_path / f"i{i}", version="0.4", shape=(2, 16, 16), axes="cyx", levels=1
        )
        shutil.copytree(p, root / f"img{i}")
    layers = read(root)
    assert len(layers) == 2


def test_ngff_suites_never_crash_the_parser(corpus: Path) -> None:
    from napari_zarr_explorer.ome import parse_ome

    suites = sorted((corpus / "ngff-suites").glob("*/*suite.json"))
    assert len(suites) >= 16
    n = 0
    for suite in suites:
        for case in json.loads(suite.read_text()).get("tests", []):
            data = case.get("data")
            if isinstance(data, dict):
                parse_ome(data, zarr_format=3 if "ome" in data else 2)
                n += 1
    assert n > 50


def test_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_zarr_explorer._sample import make_sample_data

    monkeypatch.setenv("NAPARI_ZARR_EXPLORER_CACHE", str(tmp_path / "cache"))
    layers = make_sample_data()
    assert testing.sample_path() == tmp_path / "cache" / testing.SAMPLE_NAME
    (img, ik, _), (_lab, _lk, lt) = layers
    assert [d.shape for d in img] == [(3, 32, 512, 512), (3, 32, 256, 256), (3, 32, 128, 128)]
    assert ik["channel_axis"] == 0 and lt == "labels"
    meta = json.loads((testing.sample_path() / "0" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    # generated once: a second call reuses it
    stamp = (testing.sample_path() / ".complete").stat().st_mtime_ns
    make_sample_data()
    assert (testing.sample_path() / ".complete").stat().st_mtime_ns == stamp
    plane = np.asarray(img[0][1, 16])
    assert plane.std() > 100  # blobs, not a constant


@pytest.mark.parametrize(
    "values", [np.arange(5), np.array([["a", "b"], ["c", "d"]])], ids=["1-d", "strings"]
)
def test_arrays_napari_cannot_show_are_refused_clearly(tmp_path: Path, values) -> None:

    testing.write_array(tmp_path / "a.zarr", values, zarr_format=2)
    with pytest.raises(ExplorerError, match="cannot be shown as an image"):
        open_layers(tmp_path / "a.zarr")


# ---------------------------------------------------------------- RGB(A) images


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("nc", [3, 4])
def test_rgb_uint8_image_opens_as_one_rgb_layer(tmp_path: Path, version: str, nc: int) -> None:
    rgba = (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"), ("A", "FFFFFF"))
    path = testing.write_ome_image(
        tmp_path / "photo.ome.zarr",
        version=version,
        shape=(nc, 40, 48),
        axes="cyx",
        levels=2,
        dtype="uint8",
        channels=rgba[:nc],
    )
    ((data, kwargs, kind),) = read(path)
    assert kind == "image" and kwargs["rgb"] is True
    assert "channel_axis" not in kwargs
    assert [lv.shape for lv in data] == [(40, 48, nc), (20, 24, nc)]
    stored = np.asarray(zarr.open_array(str(path / "0"), mode="r"))
    np.testing.assert_array_equal(np.asarray(data[0]), np.moveaxis(stored, 0, -1))
    assert kwargs["metadata"]["source_url"] == str(path)


def test_uint8_channels_with_other_colours_stay_channels(tmp_path: Path) -> None:
    path = testing.write_ome_image(
        tmp_path / "fluo.ome.zarr",
        shape=(3, 4, 32, 32),
        axes="czyx",
        levels=1,
        dtype="uint8",
        channels=(("DAPI", "0000FF"), ("GFP", "00FF00"), ("RFP", "FF0000")),
    )
    ((_, kwargs, _),) = read(path)
    assert kwargs["channel_axis"] == 0 and not kwargs.get("rgb")


def test_sample_layers_know_their_store() -> None:
    from napari_zarr_explorer._sample import make_sample_data

    layers = make_sample_data()
    assert layers
    for _, kwargs, _ in layers:
        assert kwargs["metadata"]["source_url"] == str(testing.sample_path())
