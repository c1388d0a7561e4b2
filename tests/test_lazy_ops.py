"""Layer data (``LazyArray``) in arithmetic and numpy functions, and edited in memory.

Arithmetic and numpy functions stay lazy (dask arrays over the level, read block by block through
the level's guarded, cached reader); assignments (napari painting labels) go to an in-memory copy
of the touched chunks, which every later read sees, and never to the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_zarr_explorer import pyramid, testing
from napari_zarr_explorer.layers import open_layers
from napari_zarr_explorer.store import open_array

SHAPE = (3, 20, 30)
CHUNKS = (1, 8, 8)


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("lazy") / "a.zarr"
    data = np.arange(np.prod(SHAPE), dtype=np.int32).reshape(SHAPE)
    testing.write_array(path, data, chunks=CHUNKS)
    return path, data


def _level(path: Path) -> pyramid.LazyArray:
    arr = open_array(str(path))
    return pyramid.as_level(arr, where=str(path), cache=pyramid.ChunkCache(1 << 24))


def test_arithmetic_and_numpy_functions_are_lazy_dask(stored):
    path, ref = stored
    lazy = _level(path)
    before = lazy.reader.cache.misses  # nothing read so far
    results = {
        "add": (lazy + 1, ref + 1),
        "radd": (2 * lazy, 2 * ref),
        "neg": (-lazy, -ref),
        "cmp": (lazy > 100, ref > 100),
        "max": (np.max(lazy), np.max(ref)),
        "mean_axis": (np.mean(lazy, axis=0), np.mean(ref, axis=0)),
        "ufunc": (np.sqrt(lazy), np.sqrt(ref)),
        "stack": (np.stack([lazy, lazy]), np.stack([ref, ref])),
        "view": (lazy[1, 2:9] * 3, ref[1, 2:9] * 3),
        "astype_op": (lazy.astype(np.float32) / 2, ref.astype(np.float32) / 2),
        "both": (lazy + lazy, ref + ref),
        "numpy_first": (np.ones(SHAPE[-1], np.int32) + lazy, 1 + ref),
    }
    assert lazy.reader.cache.misses == before and len(lazy.reader.cache) == 0
    for name, (got, want) in results.items():
        assert isinstance(got, da.Array), name
        np.testing.assert_array_equal(got.compute(), want, err_msg=name)


def test_to_dask_blocks_are_whole_chunks_read_through_the_level(stored):
    path, ref = stored
    lazy = _level(path)
    d = lazy.to_dask()
    assert d.shape == lazy.shape and d.dtype == lazy.dtype
    for axis, (sizes, c) in enumerate(zip(d.chunks, CHUNKS, strict=True)):
        assert all(s % c == 0 for s in sizes[:-1]), axis
    np.testing.assert_array_equal(d[:, 5:17].compute(), ref[:, 5:17])
    assert len(lazy.reader.cache) > 0  # read through the level's cache of decoded chunks
    assert isinstance(lazy.to_dask()._meta, np.ndarray)


def test_setitem_edits_memory_only_and_reads_see_them(stored):
    path, ref = stored
    files = _digest(path)
    lazy = _level(path)
    lazy[1, 3:12, 5] = -7
    want = ref.copy()
    want[1, 3:12, 5] = -7
    np.testing.assert_array_equal(np.asarray(lazy), want)
    np.testing.assert_array_equal(np.asarray(lazy[1, 2:10]), want[1, 2:10])  # a view sees it
    np.testing.assert_array_equal((lazy + 0).compute(), want)  # and dask does
    np.testing.assert_array_equal(lazy[[1, 2], 4], want[[1, 2], 4])
    assert lazy[1, 4, 5] == -7
    # a view writes into the same edits
    view = lazy[2]
    view[0:2, 0:2] = 5
    want[2, 0:2, 0:2] = 5
    np.testing.assert_array_equal(np.asarray(lazy), want)
    lazy[0][1][4:6] = 4321  # a view of a view
    want[0, 1, 4:6] = 4321
    np.testing.assert_array_equal(np.asarray(lazy), want)
    assert _digest(path) == files  # nothing written to the store
    # the edits belong to this array: the store opened again shows the stored data
    np.testing.assert_array_equal(np.asarray(_level(path)), ref)
    np.testing.assert_array_equal(np.asarray(open_array(str(path))[...]), ref)


def test_edits_survive_an_evicted_read_cache(stored):
    path, ref = stored
    arr = open_array(str(path))
    lazy = pyramid.as_level(arr, where=str(path), cache=pyramid.ChunkCache(8 * 8 * 4))
    lazy[0, 0, 0] = 99
    np.asarray(lazy[2])  # evicts everything the cache held
    assert lazy[0, 0, 0] == 99
    assert lazy[0, 0, 1] == ref[0, 0, 1]


def _index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    key: list[Any] = []
    fancy = draw(st.sampled_from(["none", "one", "nonzero"]))
    if fancy == "nonzero":
        n = draw(st.integers(0, 12))
        return tuple(
            np.asarray(draw(st.lists(st.integers(-s, s - 1), min_size=n, max_size=n)), np.intp)
            for s in shape
        )
    one_at = draw(st.integers(0, len(shape) - 1)) if fancy == "one" else -1
    for d, s in enumerate(shape):
        kind = draw(st.sampled_from(["int", "slice", "step"]))
        if d == one_at:
            if draw(st.booleans()):
                key.append(np.asarray(draw(st.lists(st.booleans(), min_size=s, max_size=s))))
            else:
                key.append(draw(st.lists(st.integers(-s, s - 1), max_size=6)))
        elif kind == "int":
            key.append(draw(st.integers(-s, s - 1)))
        elif kind == "slice":
            a, b = sorted(draw(st.tuples(st.integers(0, s), st.integers(0, s))))
            key.append(slice(a, b))
        else:
            key.append(
                slice(
                    draw(st.none() | st.integers(-s, s)),
                    draw(st.none() | st.integers(-s, s)),
                    draw(st.sampled_from([2, 3, -1, -2])),
                )
            )
    n_keep = draw(st.integers(0, len(key)))
    return tuple(key[:n_keep]) if fancy == "none" else tuple(key)


@st.composite
def _edits(draw: Any) -> list[tuple[tuple[Any, ...], Any, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        view = draw(st.sampled_from([(), (1,), (slice(None), slice(3, 17, 2))]))
        vshape = np.empty(SHAPE)[view].shape
        key = _index(draw, vshape)
        scalar = draw(st.booleans())
        out.append((view, key, draw(st.integers(-50, 50)) if scalar else "array"))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=_edits())
def test_setitem_follows_numpy(stored, edits):
    path, ref = stored
    lazy = _level(path)
    want = ref.copy()
    for view, key, value in edits:
        target = want[view]
        if isinstance(value, str):
            value = np.arange(target[key].size, dtype=np.int32).reshape(target[key].shape) - 3
        tgt = lazy[view] if view else lazy
        try:
            target[key] = value
        except (IndexError, ValueError):
            with pytest.raises((IndexError, ValueError)):
                tgt[key] = value
            continue
        tgt[key] = value
        np.testing.assert_array_equal(np.asarray(lazy), want)
        np.testing.assert_array_equal(np.asarray(lazy[view])[key], want[view][key])


def test_saving_an_edited_layer_writes_the_edits(tmp_path, stored):
    import napari_zarr_explorer as nze

    src = testing.write_ome_image(
        tmp_path / "src.ome.zarr",
        shape=(40, 48),
        axes="yx",
        levels=1,
        chunks=(16, 16),
        labels=True,
        version="0.5",
    )
    files = _digest(src)
    layers = open_layers(str(src))
    ((data, kw, _),) = [lay for lay in layers if lay[2] == "labels"]
    assert isinstance(data, pyramid.LazyArray)
    want = np.array(np.asarray(data))
    data[5:9, 30:40] = 11
    want[5:9, 30:40] = 11
    out = tmp_path / "edited.ome.zarr"
    nze.save((data, kw, "labels"), out)
    ((saved, _, kind),) = open_layers(str(out))
    assert kind == "labels"
    np.testing.assert_array_equal(np.asarray(saved), want)
    assert _digest(src) == files
