"""The OME-NGFF verdict on a recompressed plain group holding several OME images.

Each image is validated on its own, several at once (at most the remote concurrency setting,
``NZE_REMOTE_CONCURRENCY`` / ``explorer_concurrency``), and the verdict lists them in the
order a serial run gives.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import zarr

from napari_zarr_explorer import testing
from napari_zarr_explorer.ome import validate as validate_module
from napari_zarr_explorer.recompress import recompress

NAMES = ("a", "b", "c", "d", "e")
BROKEN = ("b", "d")


def _collection(root: Path) -> Path:
    """A plain group of OME images; those in BROKEN have an axis of the wrong type."""
    zarr.open_group(root, mode="w", zarr_format=3)
    for name in NAMES:
        testing.write_ome_image(root / name, shape=(1, 2, 16, 16), levels=1)
        if name in BROKEN:
            doc = json.loads((root / name / "zarr.json").read_text())
            doc["attributes"]["ome"]["multiscales"][0]["axes"][1]["type"] = "time"
            (root / name / "zarr.json").write_text(json.dumps(doc))
    return root


def test_parallel_validation_gives_the_serial_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _collection(tmp_path / "collection.zarr")
    monkeypatch.setenv("NZE_REMOTE_CONCURRENCY", "1")  # one image at a time
    serial = recompress(src, tmp_path / "serial.zarr")
    monkeypatch.setenv("NZE_REMOTE_CONCURRENCY", "3")
    parallel = recompress(src, tmp_path / "parallel.zarr")
    assert serial.complete and parallel.complete
    assert parallel.validation == serial.validation
    assert serial.validation is not None and serial.validation.startswith("invalid: ")
    # the broken images, one entry each, in the order of the images
    named = re.findall(r"(?:^invalid: |; )(\w): invalid OME-NGFF", serial.validation)
    assert named == list(BROKEN), serial.validation


def test_images_are_validated_at_once_up_to_the_concurrency_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _collection(tmp_path / "collection.zarr")
    real = validate_module.validate
    lock = threading.Lock()
    state = {"calls": 0, "running": 0, "most": 0}
    together = threading.Barrier(2, timeout=60)  # broken (and the test fails) when serial

    def watched(*args: Any, **kwargs: Any) -> Any:
        with lock:
            first_two = state["calls"] < 2
            state["calls"] += 1
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        try:
            if first_two:
                together.wait()  # the first two validations run at the same time
            return real(*args, **kwargs)
        finally:
            with lock:
                state["running"] -= 1

    monkeypatch.setattr(validate_module, "validate", watched)
    monkeypatch.setenv("NZE_REMOTE_CONCURRENCY", "2")
    report = recompress(src, tmp_path / "out.zarr")
    assert state["calls"] == len(NAMES)
    assert state["most"] == 2  # two at once, never more than the setting
    assert report.validation is not None
    assert "could not validate" not in report.validation, report.validation


def test_requests_in_flight_stay_within_the_setting_across_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any
) -> None:
    """Validations running together share the output's concurrency setting: each image's
    store gets its share, so the requests of all of them at once never exceed the setting."""
    from servers import FAKE_KEY_ID, FAKE_SECRET

    src = _collection(tmp_path / "collection.zarr")
    opts = {
        "key": FAKE_KEY_ID,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    url = f"s3://{s3_server.private_bucket}/validate-shares-{os.getpid()}/copy.zarr"
    real = validate_module.validate
    lock = threading.Lock()
    running: dict[int, int] = {}
    state = {"most": 0, "calls": 0}
    together = threading.Barrier(2, timeout=60)  # the first two run at once (broken if serial)

    def watched(location: Any, *args: Any, **kwargs: Any) -> Any:
        from napari_zarr_explorer.store.remote_options import RemoteOptions

        share = RemoteOptions.split(location.storage_options)[0].concurrency
        me = threading.get_ident()
        with lock:
            first_two = state["calls"] < 2
            state["calls"] += 1
            running[me] = share
            state["most"] = max(state["most"], sum(running.values()))
        try:
            if first_two:
                together.wait()
            return real(location, *args, **kwargs)
        finally:
            with lock:
                del running[me]

    monkeypatch.setattr(validate_module, "validate", watched)
    monkeypatch.setenv("NZE_REMOTE_CONCURRENCY", "4")
    report = recompress(src, url, dst_storage_options=opts)
    assert report.complete, report
    assert report.validation is not None and "could not validate" not in report.validation
    # at least two at once, and their shares together within the setting
    assert 2 <= state["most"] <= 4, state
