"""Benchmark: ``chunk_map(verify=True)`` over 10^6 inner chunks, beside tensorstore reading it all.

The array is (10000, 10000) uint8 written by tensorstore as Zarr v3: inner chunks 10x10
(10^6 of them), shards 1000x1000 (100 shards), zstd, crc32c on the shard index. Each contestant
runs in its own process (so its peak memory is its own):

- ours: ``chunk_map(url, verify=True)`` (every inner chunk decoded, counts checked exactly);
- tensorstore: reading the whole array into memory (the lower limit of one pass over the data).

Times exclude importing the packages (printed apart). Targets: ours at most 5 s, peak memory
at most 300 MB. ``--size small`` uses a (2000, 2000)
array (4 * 10^4 chunks, 4 shards) for a quick run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = {"full": (10000, 10000), "small": (2000, 2000)}
INNER = (10, 10)
SHARD = (1000, 1000)
TARGET_SECONDS = 5.0
TARGET_PEAK_MB = 300.0


def make_array(path: Path, shape: tuple[int, int], seed: int = 0) -> None:
    """Write the uint8 array with tensorstore (image-like content with noise)."""
    import numpy as np
    import tensorstore as ts

    from napari_zarr_explorer.testing import tensorstore_sharded_spec

    codecs = [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 1}}]
    spec = tensorstore_sharded_spec(
        path, shape, dtype="uint8", chunks=INNER, shards=SHARD, codecs=codecs
    )
    arr = ts.open(spec).result()
    rng = np.random.default_rng(seed)
    rows = SHARD[0]
    xx = np.arange(shape[1], dtype=np.float32)[None, :]
    for y0 in range(0, shape[0], rows):
        yy = np.arange(y0, y0 + rows, dtype=np.float32)[:, None]
        base = (np.sin(xx / 53.0) * np.cos(yy / 71.0) + 1.0) * 100.0
        noise = rng.normal(0.0, 8.0, size=(rows, shape[1])).astype(np.float32)
        arr[y0 : y0 + rows, :] = np.clip(base + noise, 0, 255).astype(np.uint8)


def _import_ours() -> None:
    import zarr  # noqa: F401
    import zstandard  # noqa: F401

    import napari_zarr_explorer.chunks
    import napari_zarr_explorer.store.open  # noqa: F401


def _import_tensorstore() -> None:
    import tensorstore  # noqa: F401


def run_ours(path: str) -> dict[str, Any]:
    from napari_zarr_explorer.chunks import chunk_map

    cm = chunk_map(path, verify=True)
    return {
        "present": cm.chunks_present,
        "corrupt": cm.chunks_corrupt,
        "missing": cm.chunks_missing,
        "verified": cm.verified,
    }


def run_tensorstore(path: str) -> dict[str, Any]:
    import tensorstore as ts

    arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": path}}).result()
    data = arr.read().result()
    return {"sum_mod": int(data[::97, ::89].sum())}


def _child(name: str, path: str) -> int:
    from _memory import peak_mb  # this benchmark's folder, first on sys.path

    fn = {"ours": run_ours, "tensorstore": run_tensorstore}[name]
    t0 = time.perf_counter()
    {"ours": _import_ours, "tensorstore": _import_tensorstore}[name]()
    t1 = time.perf_counter()
    extra = fn(path)
    seconds = time.perf_counter() - t1
    result = {"seconds": seconds, "import_s": t1 - t0, "peak_mb": peak_mb()}
    print(json.dumps({**result, **extra}))
    return 0


def _measure(name: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", __file__, "--run", name, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_verify", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data", help="keep the array in this folder (built when missing)")
    parser.add_argument("--run", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        return _child(*args.run)
    shape = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.data) if args.data else Path(tmp) / "verify.zarr"
        if not (path / "zarr.json").exists():
            t0 = time.perf_counter()
            make_array(path, shape)
            print(f"built {shape} uint8 in {time.perf_counter() - t0:.1f} s", flush=True)
        n_chunks = (shape[0] // INNER[0]) * (shape[1] // INNER[1])
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for name in ("ours", "tensorstore"):
                r = _measure(name, path)
                if name not in best or r["seconds"] < best[name]["seconds"]:
                    best[name] = r
        ours, ts_ = best["ours"], best["tensorstore"]
        exact = ours["present"] == n_chunks and ours["corrupt"] == 0 and ours["verified"]
        print(
            f"ours (chunk_map verify): {ours['seconds']:.2f} s (+{ours['import_s']:.2f} s "
            f"imports), peak {ours['peak_mb']:.0f} MB, "
            f"{ours['present']} present / {ours['corrupt']} corrupt of {n_chunks} "
            f"({'exact' if exact else 'WRONG COUNTS'})"
        )
        print(
            f"tensorstore (read all):  {ts_['seconds']:.2f} s (+{ts_['import_s']:.2f} s "
            f"imports), peak {ts_['peak_mb']:.0f} MB"
        )
        time_ok = "met" if ours["seconds"] <= TARGET_SECONDS else "NOT met"
        print(
            f"ratio vs tensorstore: {ours['seconds'] / ts_['seconds']:.2f}; "
            f"target: <= {TARGET_SECONDS:.0f} s ({time_ok}), "
            f"peak <= {TARGET_PEAK_MB:.0f} MB "
            f"({'met' if ours['peak_mb'] <= TARGET_PEAK_MB else 'NOT met'})"
        )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
