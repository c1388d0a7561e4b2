"""Python code run in a fresh interpreter with this checkout's package (what a new napari
session or script imports, what it leaves behind at exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SRC", "printed_json", "run_python"]

#: The package sources of this checkout.
SRC = Path(__file__).resolve().parents[1] / "src"


def run_python(
    code: str, *args: str, flags: Sequence[str] = (), timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run *code* with ``python [flags] -c code args...``, the package importable from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, *flags, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def printed_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a successful run printed last."""
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
