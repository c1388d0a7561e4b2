"""Virtual environments of other implementations, each on the Python version it needs.

Built with pip once per version under ``.interop-cache/venvs/`` (git-ignored;
``NZE_INTEROP_CACHE`` moves it), under the cache lock, so that the two legs of ``./dev test``
share one build (see ``cachelock.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cachelock import cache_lock

__all__ = ["CACHE", "Env", "NoInterpreter", "env_python", "interpreter"]

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("NZE_INTEROP_CACHE", REPO / ".interop-cache"))


class NoInterpreter(RuntimeError):
    """No working interpreter of the Python version an environment needs is installed."""


@dataclass(frozen=True)
class Env:
    """An isolated Python environment for one implementation."""

    key: str
    python: str  # "3.11", "3.12"
    packages: tuple[str, ...]


def _release(python: Path) -> tuple[int, ...]:
    """(3, 13, 0) for ``.../versions/3.13.0/bin/python``; () for a name that is not a release."""
    parts = python.parents[1].name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()


def interpreter(version: str) -> str:
    """A working Python *version* interpreter: this one, pyenv's, or one on the PATH.

    pyenv's are found with ``pyenv`` and, as ``./dev`` finds them, in ``$PYENV_ROOT/versions``.
    pyenv's shims are on the PATH but fail for versions that are not selected, so every
    candidate is tried before it is used.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidates: list[str] = []
    if shutil.which("pyenv"):
        bare = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        for v in sorted((b for b in bare if b.startswith(version + ".")), reverse=True):
            out = subprocess.run(
                ["pyenv", "which", "python"],
                capture_output=True,
                text=True,
                env={**os.environ, "PYENV_VERSION": v},
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(out.stdout.strip())
    # without pyenv on the PATH (CI's environment may lack its set-up), its versions folder
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = versions.glob(f"{version}.*/bin/python") if versions.is_dir() else []
    candidates += [str(p) for p in sorted(installed, key=_release, reverse=True)]
    found = shutil.which(f"python{version}")
    if found:
        candidates.append(found)
    for cand in candidates:
        probe = subprocess.run(
            [cand, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return cand
    raise NoInterpreter(f"No working Python {version} found (install it, e.g. with pyenv).")


def env_python(env: Env) -> Path:
    """Create (once) the virtual environment of *env* and return its interpreter."""
    folder = CACHE / "venvs" / env.key
    py = folder / "bin" / "python"
    stamp = folder / ".ready"
    want = json.dumps(env.packages)
    with cache_lock(folder):  # another test run may be building it
        if stamp.exists() and stamp.read_text() == want and py.exists():
            return py
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([interpreter(env.python), "-m", "venv", str(folder)], check=True)
        pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        res = subprocess.run([*pip, *env.packages], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(
                f"pip could not install {' '.join(env.packages)} on Python {env.python} "
                f"({folder}):\n{res.stderr[-3000:]}"
            )
        stamp.write_text(want)
    return py
