"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run: the suite stays deterministic, and a
# failure seen once is seen again. NZE_HYPOTHESIS=explore draws new examples instead.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("NZE_HYPOTHESIS", "deterministic"))

# Loopback HTTP, S3 and GCS servers (fixtures http_server, s3_server, gcs_server).
pytest_plugins = ["servers"]

#: Data written by other implementations, committed with its licences (see data/README.md).
CORPUS = Path(__file__).resolve().parent / "data"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow set-up of the selected test modules in the background.

    A test module may define ``prebuild()``: it starts building what its tests need from the
    network (another implementation's virtual environment, npm packages) on a thread and
    returns at once; its fixture then waits for that build. A fresh checkout otherwise spends
    minutes in pip before those tests, with the CPUs idle; built in the background, the
    downloads overlap the tests that come first. Only modules with a selected test start.
    """
    started: set[str] = set()
    for item in session.items:
        module = getattr(item, "module", None)
        name = getattr(module, "__name__", "")
        if module is None or name in started or not callable(getattr(module, "prebuild", None)):
            continue
        started.add(name)
        module.prebuild()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The built-in sample is generated into this run's temporary folder, never the user's cache.

    A sample left in ``~/.cache`` by another checkout or version would otherwise be what the
    tests open. Set in the environment, so that the command-line runs the tests start see it too.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAPARI_ZARR_EXPLORER_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _this_checkout_in_subprocesses() -> Iterator[None]:
    """Command-line runs the tests start (``python -m napari_zarr_explorer``) import this
    checkout's package, whether or not it is the one installed in the environment."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    before = os.environ.get("PYTHONPATH", "")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (src, before) if p))
        yield


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The folder of data written by other implementations (``tests/data``)."""
    return CORPUS


@pytest.fixture(params=[2, 3], ids=["v2", "v3"])
def zarr_format(request: pytest.FixtureRequest) -> int:
    """Both Zarr formats."""
    return int(request.param)


@pytest.fixture
def kernel_name(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Jupyter kernel running this interpreter, declared in the run's temporary folder.

    Neither the user's kernels (a ``python3`` of another interpreter) nor their folders take part:
    the spec is written under a temporary prefix that ``JUPYTER_PATH`` puts first.
    """
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    name = "napari-zarr-explorer-tests"
    install(kernel_name=name, display_name="nze tests", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return name


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A dask.distributed LocalCluster of two worker processes on loopback, shared by the run.

    Its HTTP server (dashboard, metrics) listens on a free port of loopback: with no address,
    distributed tries 8787 first, and when another run holds it (the other Python's leg of the
    suite) distributed leaves the refused socket open, which the suite reports as an error.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        processes=True,
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    ) as c:
        yield c
