"""Read a full-resolution 2-D plane of an N5 volume: z5py directly against our reader.

The volume is written by z5py (gzip blocks, as BigDataViewer writes them). Prints the median
time per plane for z5py reading ``ds[z]`` directly (the baseline), for our layer's level-0 dask
array, and for ``open_array`` (zarr-python through the N5 adapter), and the ratios to z5py.

    .venv/bin/python benchmarks/bench_n5.py [--shape 32,2048,2048] [--block 8,256,256] [--repeat 7]
    ./dev bench n5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def make_volume(path: Path, shape: tuple[int, ...], block: tuple[int, ...]) -> Path:
    """Write a z5py N5 volume with smooth content at *path* (kept between runs)."""
    import z5py

    from napari_zarr_explorer.testing import blobs

    marker = path / ".complete"
    if marker.exists() and json.loads(marker.read_text()) == [list(shape), list(block)]:
        return path
    f = z5py.File(str(path), mode="w", use_zarr_format=False)
    ds = f.create_dataset("s0", shape=shape, chunks=block, dtype="uint16", compression="gzip")
    base = blobs(shape[1:], seed=7, n=24, dtype="uint16")
    for z0 in range(0, shape[0], block[0]):
        n = min(block[0], shape[0] - z0)
        ds[z0 : z0 + n] = np.stack([np.roll(base, 9 * z, axis=1) for z in range(z0, z0 + n)])
    marker.write_text(json.dumps([list(shape), list(block)]))
    return path


def timed(fns: list[Callable[[int], Any]], planes: list[int], rounds: int = 3) -> list[float]:
    """Median time of each function, interleaved plane by plane so load hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for z in planes:
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn(z)
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="32,2048,2048")
    parser.add_argument("--block", default="8,256,256")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    block = tuple(int(s) for s in args.block.split(","))
    import z5py

    from napari_zarr_explorer.layers import open_layers
    from napari_zarr_explorer.store import open_array, parse_location

    root = Path(tempfile.gettempdir()) / "nze-bench-n5" / f"{'x'.join(map(str, shape))}.n5"
    make_volume(root, shape, block)
    planes = [int(z) for z in np.linspace(0, shape[0] - 1, args.repeat)]
    ds = z5py.File(str(root), mode="r")["s0"]
    ((layer, _, _),) = open_layers(root)
    arr = open_array(parse_location(root), "s0")
    expected = ds[planes[0]]
    np.testing.assert_array_equal(np.asarray(layer[planes[0]]), expected)
    np.testing.assert_array_equal(arr[planes[0]], expected)
    base, ours, direct = timed(
        [lambda z: ds[z], lambda z: np.asarray(layer[z]), lambda z: arr[z]], planes
    )
    print(f"N5 {shape} uint16, gzip blocks {block}: one full plane, median of {3 * len(planes)}")
    print(f"  z5py ds[z]                      {base * 1e3:8.1f} ms   1.00")
    print(f"  napari-zarr-explorer layer[z]   {ours * 1e3:8.1f} ms   {ours / base:.2f}")
    print(f"  open_array(...)[z] (zarr + N5)  {direct * 1e3:8.1f} ms   {direct / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
