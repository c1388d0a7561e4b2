"""One builder at a time for what tests build once and keep (environments, node modules).

``./dev test`` runs the suite on two Pythons at the same time, and both use the same caches in
the repository (``tests/.cache/``, ``.interop-cache/``): the first run to need one builds it
while holding its lock, the other waits and then finds it ready.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["Background", "cache_lock"]


@contextlib.contextmanager
def cache_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of the cache *folder* (a file next to it) until the block ends."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Background:
    """Run *build* once, on a thread of its own when started early, and hand over its outcome.

    :meth:`start` (from a module's ``prebuild()``, see ``conftest.py``) begins the build and
    returns at once; :meth:`result` waits for it, or runs it on the calling thread when nothing
    started it. An error of the build is raised by every :meth:`result`.
    """

    def __init__(self, build: Callable[[], None]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = False
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._build()
        except BaseException as exc:  # handed to result()
            self._error = exc
        finally:
            self._done = True

    def start(self) -> None:
        """Begin the build on a daemon thread (once)."""
        with self._lock:
            if self._thread is None and not self._done:
                self._thread = threading.Thread(target=self._run, name="prebuild", daemon=True)
                self._thread.start()

    def result(self) -> None:
        """Wait for the build (running it here when it was not started) and raise its error."""
        with self._lock:
            thread = self._thread
            if thread is None and not self._done:
                self._run()
        if thread is not None:
            thread.join()
        if self._error is not None:
            raise self._error
