"""The ``napari-zarr-explorer`` command line.

Each sub-command lives in its own module under :mod:`napari_zarr_explorer._cli` and provides
``register(subparsers)``, which adds its parser and sets ``func`` (taking the parsed arguments and
returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from napari_zarr_explorer import __version__
from napari_zarr_explorer.errors import ExplorerError

__all__ = ["build_parser", "main"]

DEBUG_ENV = "NAPARI_ZARR_EXPLORER_DEBUG"
"""Set to show the traceback of an unexpected failure."""

SUBCOMMANDS = (
    "inspect",
    "chunks",
    "validate",
    "estimate",
    "recompress",
    "save",
    "demo",
    "transform",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="napari-zarr-explorer",
        description="Open, inspect, validate and re-encode Zarr and OME-Zarr data.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        modname = f"napari_zarr_explorer._cli.{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a sub-command whose optional parts are absent
            if exc.name != modname:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ExplorerError as exc:
        from napari_zarr_explorer._cli._common import print_error

        print_error(exc)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: one clear line instead of a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        from napari_zarr_explorer._cli._common import print_error
        from napari_zarr_explorer.errors import error_message

        print_error(
            f"{args.command} failed unexpectedly: {error_message(exc).rstrip('.')}. "
            f"Run again with {DEBUG_ENV}=1 to see where, and please report it."
        )
        return 1
