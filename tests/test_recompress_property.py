"""Property test: random shapes, chunks, shards, codecs and formats round-trip exactly."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_zarr_explorer import testing
from napari_zarr_explorer.recompress import recompress

CODECS = ["zstd:1", "blosc-lz4", "blosc-zstd:level=3,shuffle=bit", "gzip:1", "none"]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 13), min_size=ndim, max_size=ndim)))
    src_chunks = tuple(draw(st.integers(1, s + 2)) for s in shape)
    src_format = draw(st.sampled_from([2, 3]))
    src_shards = None
    if src_format == 3 and draw(st.booleans()):
        src_shards = tuple(c * draw(st.integers(1, 2)) for c in src_chunks)
    chunks = tuple(draw(st.integers(1, s + 2)) for s in shape)
    dst_format = draw(st.sampled_from([2, 3]))
    shards = None
    if dst_format == 3 and draw(st.booleans()):
        shards = tuple(c * draw(st.integers(1, 3)) for c in chunks)
    return {
        "shape": shape,
        "src_chunks": src_chunks,
        "src_format": src_format,
        "src_shards": src_shards,
        "chunks": chunks,
        "shards": shards,
        "dst_format": dst_format,
        "codec": draw(st.sampled_from(CODECS)),
        "dtype": draw(st.sampled_from(["uint8", "int16", "float32", "float64"])),
        "seed": draw(st.integers(0, 2**16)),
        "sparse": draw(st.booleans()),
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(case=cases())
def test_random_layouts_round_trip(case: dict) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(case["seed"])
    shape = case["shape"]
    data = (rng.random(shape) * 100).astype(case["dtype"])
    if case["sparse"]:
        data[rng.random(shape) < 0.7] = 0
    with tempfile.TemporaryDirectory() as tmp:
        src = testing.write_array(
            Path(tmp) / "src.zarr",
            data,
            zarr_format=case["src_format"],
            chunks=case["src_chunks"],
            shards=case["src_shards"],
            fill_value=0,
        )
        dst = Path(tmp) / "dst.zarr"
        report = recompress(
            src,
            dst,
            compressor=case["codec"],
            chunks=case["chunks"],
            shards=case["shards"] if case["shards"] is not None else "none",
            zarr_format=case["dst_format"],
            task_bytes=64,
        )
        assert report.ok, str(report)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = zarr.open_array(dst, mode="r")
            np.testing.assert_array_equal(out[...], data)
            assert out.metadata.zarr_format == case["dst_format"]
