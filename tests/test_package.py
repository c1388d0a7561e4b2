import subprocess
import sys


def test_import_does_not_pull_qt_or_napari():
    code = (
        "import sys, napari_zarr_explorer as m; m.__version__; "
        "bad = [k for k in sys.modules if k.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'vispy', 'superqt', 'magicgui')]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_npe2_manifest_validates_with_imports():
    proc = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-zarr-explorer", "--imports"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_version():
    proc = subprocess.run(
        [sys.executable, "-m", "napari_zarr_explorer", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "napari-zarr-explorer" in proc.stdout


def test_every_subcommand_is_registered():
    from napari_zarr_explorer.cli import SUBCOMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(SUBCOMMANDS)


def test_public_names_resolve():
    import napari_zarr_explorer as m

    assert set(m.__all__) == {"__version__", *m._EXPORTS}
    for name in m.__all__:
        assert getattr(m, name) is not None


def test_public_functions_win_over_submodules_of_the_same_name():
    # Importing the modules first (as the writer and the CLI do) must not turn nze.estimate or
    # nze.recompress into modules.
    code = (
        "import napari_zarr_explorer.estimate, napari_zarr_explorer.recompress\n"
        "import napari_zarr_explorer as nze\n"
        "import types\n"
        "for name in ('estimate', 'recompress'):\n"
        "    f = getattr(nze, name)\n"
        "    assert callable(f) and not isinstance(f, types.ModuleType), name\n"
        "from napari_zarr_explorer.recompress import plan_recompress\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_command_line_runs_import_this_checkout():
    """What the tests start with ``python -m napari_zarr_explorer`` is the code under test,
    even where another copy of the package is installed."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "napari_zarr_explorer"
    code = "import napari_zarr_explorer as m; print(m.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve().parent == src.resolve()
