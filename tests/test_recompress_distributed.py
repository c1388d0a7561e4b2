"""The same recompress code on a dask.distributed cluster with worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.recompress import recompress

distributed = pytest.importorskip("distributed")


@pytest.mark.slow
def test_distributed_client(tmp_path: Path, cluster: Any) -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 1000, size=(9, 50, 70), dtype="uint16")
    src = testing.write_array(tmp_path / "src.zarr", data, zarr_format=2, chunks=(2, 7, 9))
    dst = tmp_path / "dst.zarr"
    with distributed.Client(cluster) as client:
        report = recompress(
            src, dst, chunks=(3, 16, 16), shards=(3, 32, 32), client=client, task_bytes=1
        )
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    assert report.ok, str(report)
    assert report.scheduler.startswith("distributed")
    np.testing.assert_array_equal(zarr.open_array(dst, mode="r")[...], data)


@pytest.mark.slow
def test_distributed_scheduler_address(tmp_path: Path, cluster: Any) -> None:
    src = testing.write_ome_image(tmp_path / "img.zarr", version="0.4", shape=(1, 4, 64, 64))
    dst = tmp_path / "out.zarr"
    report = recompress(src, dst, scheduler=cluster.scheduler_address, shards=(1, 4, 64, 64))
    assert report.ok, str(report)
    assert cluster.scheduler_address in report.scheduler
    for a in report.arrays:
        np.testing.assert_array_equal(
            zarr.open_array(dst / a.path, mode="r")[...], zarr.open_array(src / a.path)[...]
        )


def test_bad_scheduler_address_is_clear(tmp_path: Path) -> None:
    from napari_zarr_explorer.errors import ExplorerError

    src = testing.write_array(tmp_path / "s.zarr", np.ones((2, 2), "uint8"), zarr_format=3)
    with pytest.raises(ExplorerError, match="dask scheduler"):
        recompress(src, tmp_path / "d.zarr", scheduler="bogus://127.0.0.1:1")


@pytest.mark.slow
def test_scheduler_address_does_not_take_over_the_sessions_dask(
    tmp_path: Path, cluster: Any
) -> None:
    """A recompress on a cluster leaves other dask work of the session (napari's reads) local."""
    import dask

    src = testing.write_array(tmp_path / "s.zarr", np.arange(64, dtype="uint8").reshape(8, 8))
    before = dask.config.get("scheduler", None)
    seen: list[tuple[Any, bool]] = []

    def progress(event: Any) -> None:
        try:
            distributed.default_client()
            has_default = True
        except ValueError:
            has_default = False
        seen.append((dask.config.get("scheduler", None), has_default))

    report = recompress(
        src, tmp_path / "d.zarr", scheduler=cluster.scheduler_address, progress=progress
    )
    assert report.ok, str(report)
    assert seen
    assert all(s == (before, False) for s in seen), seen
    assert dask.config.get("scheduler", None) == before
