"""Peak memory of the running process, as the benchmarks report it."""

from __future__ import annotations

import resource


def peak_mb() -> float:
    """Return this process's peak resident memory in MB (2^20 bytes).

    Linux keeps ``ru_maxrss`` across ``fork`` and ``exec``: a child started by a parent that once
    held a large array reports the parent's peak. ``VmHWM`` (``/proc/self/status``) belongs to
    the process's own address space, so a benchmark's child measures only itself; other systems
    fall back to ``ru_maxrss`` (kilobytes on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024
