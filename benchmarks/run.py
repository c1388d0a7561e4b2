"""Run the benchmarks: every ``bench_*.py`` in this folder, or the one named.

.venv/bin/python benchmarks/run.py            # all
.venv/bin/python benchmarks/run.py read       # bench_read.py
.venv/bin/python benchmarks/run.py read -- --repeat 5   # arguments after -- go to it
./dev bench [NAME]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def run_one(name: str, path: Path, argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    print(f"== {name} ==", flush=True)
    return int(module.main(argv))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1 :]
    benches = available()
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print("available:", ", ".join(benches) or "none")
        return 0
    names = args or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(benches)}",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(HERE))
    status = 0
    for name in names:
        status = max(status, run_one(name, benches[name], extra))
    return status


if __name__ == "__main__":
    sys.exit(main())
