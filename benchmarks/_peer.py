"""napari-ome-zarr in its own virtual environment, for side-by-side benchmarks.

The environment ``benchmarks/.venvs/napari-ome-zarr`` is created on first use: a venv without pip
whose ``site-packages`` sees this environment's packages through a ``.pth`` file, plus
napari-ome-zarr itself (installed with ``--no-deps``: all its dependencies are ours). Installing it
beside this plugin instead would give the environment the tests run in a second reader for
``.zarr`` folders.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venvs" / "napari-ome-zarr"
PEER_PACKAGE = "napari-ome-zarr"
PEER_SPEC = "napari-ome-zarr==0.10.0"


def peer_python() -> Path | None:
    """The peer environment's interpreter, created on first use; None if that is impossible."""
    py = PEER_VENV / "bin" / "python"
    ready = PEER_VENV / ".ready"
    if ready.exists() and ready.read_text().strip() == PEER_SPEC and py.exists():
        return py
    print(f"creating {PEER_VENV} with {PEER_SPEC} ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(PEER_VENV)], check=True)
        purelib = sysconfig.get_paths()["purelib"]
        site = next((PEER_VENV / "lib").glob("python*/site-packages"))
        (site / "_main_env.pth").write_text(purelib + "\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--upgrade",
                "--target",
                str(site),
                PEER_SPEC,
            ],
            check=True,
        )
        ready.write_text(PEER_SPEC + "\n")
    except (subprocess.CalledProcessError, StopIteration, OSError) as exc:
        print(f"could not set up {PEER_PACKAGE}: {exc}", file=sys.stderr)
        return None
    return py
