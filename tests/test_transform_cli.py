"""``napari-zarr-explorer transform``: the ome-zarr-transformations-conformance cases, and errors.

The conformance package needs Python 3.12 or newer; the fixture builds its own virtual
environment in ``tests/.cache/`` (ignored by git) on first use, from the package index, and reuses
it afterwards. Without a Python 3.12+ interpreter it fails in CI and is skipped, saying why,
elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachelock import Background, cache_lock
from napari_zarr_explorer.cli import main
from peerenv import NoInterpreter, interpreter
from scripts import SRC

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = "ome-zarr-transformations-conformance==0.1.2"
VENV = REPO / "tests" / ".cache" / "oztc-0.1.2"


def _python312() -> str | None:
    """A Python 3.12+ interpreter: $NZE_PYTHON312, else 3.13 or 3.12 as ``./dev`` finds them."""
    given = os.environ.get("NZE_PYTHON312")
    if given:
        return given
    for version in ("3.13", "3.12"):
        try:
            return interpreter(version)
        except NoInterpreter:
            continue
    return None


def _build_venv() -> None:
    """Build the conformance package's environment unless it is there (skip without 3.12)."""
    marker = VENV / "installed.txt"
    with cache_lock(VENV):  # another test run may be building it
        if not marker.exists():
            interp = _python312()
            if interp is None:
                missing = "ome-zarr-transformations-conformance needs Python >= 3.12; none found"
                if os.environ.get("CI"):  # CI must run every test
                    pytest.fail(missing, pytrace=False)
                pytest.skip(missing)
            if VENV.exists():
                shutil.rmtree(VENV)
            subprocess.run([interp, "-m", "venv", str(VENV)], check=True)
            subprocess.run(
                [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", CONFORMANCE],
                check=True,
                timeout=600,
            )
            marker.write_text(CONFORMANCE + "\n")


_PREBUILD = Background(_build_venv)


def prebuild() -> None:
    """Start building the environment when the run has collected a test of this module."""
    _PREBUILD.start()


@pytest.fixture(scope="session")
def conformance_venv() -> Path:
    """The virtual environment holding ome-zarr-transformations-conformance (built once)."""
    _PREBUILD.result()
    return VENV


def _cases(venv: Path) -> Path:
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(purelib) / "cases"


def test_conformance_cases_are_valid_metadata(conformance_venv: Path) -> None:
    """Their earlier-draft forms (string references, input_axes) are warned about only."""
    from napari_zarr_explorer.ome.validate import validate

    cases = sorted(p for p in _cases(conformance_venv).iterdir() if p.is_dir())
    assert cases
    for case in cases:
        report = validate(case)
        assert report.valid, str(report)
        assert report.kind == "scene"
    drafts = validate(next(c for c in cases if c.name.startswith("byDimension")))
    assert any("input_axes" in m.message for m in drafts.warnings)


@pytest.mark.slow
def test_conformance_cases_all_pass(conformance_venv: Path) -> None:
    cases = _cases(conformance_venv)
    n_cases = sum(1 for p in cases.iterdir() if p.is_dir())
    assert n_cases >= 24
    # oztc runs on its own Python; only our sources go on the path (for this checkout's code).
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run(
        [
            str(conformance_venv / "bin" / "oztc"),
            "-B",
            str(cases),
            "--",
            sys.executable,
            "-m",
            "napari_zarr_explorer",
            "transform",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    rows = [line.split("\t") for line in res.stdout.splitlines() if "\t" in line]
    failed = [r for r in rows if r[1] != "pass"]
    assert not failed, (failed, res.stderr[-2000:])
    assert len(rows) == n_cases
    assert res.returncode == 0


# --- the command itself -------------------------------------------------------------------------


def _scene(tmp_path: Path, scene: dict[str, Any]) -> Path:
    root = tmp_path / "scene.ome.zarr"
    root.mkdir()
    doc = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.6rc0", "scene": scene}},
    }
    (root / "zarr.json").write_text(json.dumps(doc))
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["transform", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


CS = [
    {"name": n, "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]}
    for n in ("a", "b", "c")
]


def test_transform_chain_and_inverse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _scene(
        tmp_path,
        {
            "coordinateSystems": CS,
            "coordinateTransformations": [
                {"type": "scale", "scale": [2, 4], "input": {"name": "a"}, "output": {"name": "b"}},
                {
                    "type": "translation",
                    "translation": [1, 1],
                    "input": {"name": "c"},
                    "output": {"name": "b"},
                },
            ],
        },
    )
    code, out = _run(capsys, str(root), "a", "c", "[[1, 2], [0, 0]]")
    assert code == 0
    assert out["coordinates"] == [[1.0, 7.0], [-1.0, -1.0]]


@pytest.mark.parametrize(
    ("transforms", "args", "match"),
    [
        ([], ("a", "b", "[[1, 2]]"), "no chain of transformations"),
        (
            [
                {
                    "type": "displacements",
                    "path": "coordinateTransformations/f",
                    "input": {"name": "a"},
                    "output": {"name": "b"},
                }
            ],
            ("a", "b", "[[1, 2]]"),
            "vector field at 'coordinateTransformations/f'",
        ),
        (
            [
                {
                    "type": "displacements",
                    "path": "f",
                    "input": {"name": "a"},
                    "output": {"name": "b"},
                }
            ],
            ("b", "a", "[[1, 2]]"),
            "no closed-form inverse",
        ),
        (
            [{"type": "identity", "input": {"name": "a"}, "output": {"name": "b"}}],
            ("a", "b", "[[1, 2, 3]]"),
            "3 coordinates.*2 axes",
        ),
        (
            [{"type": "identity", "input": {"name": "a"}, "output": {"name": "b"}}],
            ("a", "b", "[[1, 'x']]"),
            "not JSON",
        ),
        (
            [{"type": "identity", "input": {"name": "a"}, "output": {"name": "b"}}],
            ("a", "nowhere", "[[1, 2]]"),
            "no coordinate system 'nowhere'",
        ),
    ],
)
def test_transform_unsupported_exits_nonzero_with_a_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    transforms: list[dict[str, Any]],
    args: tuple[str, ...],
    match: str,
) -> None:
    import re

    root = _scene(tmp_path, {"coordinateSystems": CS, "coordinateTransformations": transforms})
    code, out = _run(capsys, str(root), *args)
    assert code == 1
    assert set(out) == {"message"}
    assert re.search(match, out["message"]), out["message"]


def test_transform_image_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Array coordinates of a level travel to a named system of the image."""
    root = tmp_path / "img.ome.zarr"
    root.mkdir()
    ms = {
        "coordinateSystems": [CS[0], {**CS[1], "name": "world"}],
        "datasets": [
            {
                "path": "s1",
                "coordinateTransformations": [
                    {
                        "type": "sequence",
                        "transformations": [
                            {"type": "scale", "scale": [2, 2]},
                            {"type": "translation", "translation": [0.5, 0.5]},
                        ],
                        "input": {"path": "s1"},
                        "output": {"name": "a"},
                    }
                ],
            }
        ],
        "coordinateTransformations": [
            {
                "type": "rotation",
                "rotation": [[0, -1], [1, 0]],
                "input": {"name": "a"},
                "output": {"name": "world"},
            }
        ],
    }
    doc = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"ome": {"version": "0.6rc0", "multiscales": [ms]}},
    }
    (root / "zarr.json").write_text(json.dumps(doc))
    code, out = _run(capsys, str(root), "s1", "world", "[[1, 3]]")
    assert code == 0
    # (1, 3) -> scale (2, 6) -> translate (2.5, 6.5) -> rotate (-6.5, 2.5)
    assert out["coordinates"] == [[-6.5, 2.5]]
    code, out = _run(capsys, str(root), "world", "s1", "[[-6.5, 2.5]]")
    assert code == 0 and out["coordinates"] == [[1.0, 3.0]]


def test_transform_names_a_remote_store_that_is_not_ome(
    http_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import zarr

    zarr.open_group(http_server.root / "plain.zarr", mode="w", zarr_format=3)
    url = f"{http_server.url}/plain.zarr"
    code, out = _run(capsys, url, "a", "b", "[[1, 2]]")
    assert code == 1
    assert out["message"].startswith(f"{url}: no OME-NGFF metadata"), out["message"]
