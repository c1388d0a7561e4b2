"""The code stays typed and lint-clean: the same checks as in development, run by the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is part of the [testing] extra)")
    return found


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [
            _tool("ruff"),
            "check",
            "--output-format",
            "concise",
            "src",
            "tests",
            "benchmarks",
            "scripts",
            "docs",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_checks_the_notebooks() -> None:
    # the notebooks are code users copy: they must not drop out of the lint unnoticed
    notebooks = sorted(str(p.relative_to(REPO)) for p in REPO.glob("docs/**/*.ipynb"))
    assert notebooks, "no notebook found under docs/"
    proc = subprocess.run(
        [_tool("ruff"), "check", "--show-files", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = {Path(line.strip()).resolve() for line in proc.stdout.splitlines() if line.strip()}
    assert {(REPO / nb).resolve() for nb in notebooks} <= seen, proc.stdout


def test_mypy_strict_is_clean_on_the_package() -> None:
    proc = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
