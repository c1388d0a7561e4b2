"""The validator against the official OME-NGFF test suites (0.4, 0.5 and the 0.6 draft).

Every case of ``ngff-suites/0.4`` and ``0.5`` (``*_suite.json``: attribute documents with
``valid`` true/false; ``strict_*`` suites judged with ``strict=True``) and every hierarchy of
``ngff-suites/0.6rc0/zarr`` (``spec|strict / valid|invalid / kind / name.ome.zarr``) must get the
expected verdict, through the Python API and through the command line's conformance protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from napari_zarr_explorer.cli import main
from napari_zarr_explorer.errors import MetadataError
from napari_zarr_explorer.ome.validate import validate

SUITES = Path(__file__).resolve().parent / "data" / "ngff-suites"


@dataclass(frozen=True)
class Case:
    """One suite case: an attributes document and the expected verdict."""

    version: str
    suite: str
    index: int
    name: str
    data: dict[str, Any]
    valid: bool

    @property
    def strict(self) -> bool:
        return self.suite.startswith("strict_")

    @property
    def id(self) -> str:
        verdict = "valid" if self.valid else "invalid"
        return f"{self.version}/{self.suite}#{self.index}:{self.name}[{verdict}]"


def _suite_cases() -> list[Case]:
    cases = []
    for path in sorted(SUITES.glob("0.[45]/*_suite.json")):
        doc = json.loads(path.read_text())
        suite = path.name.removesuffix("_suite.json")
        for i, test in enumerate(doc["tests"]):
            name = test.get("formerly") or test.get("description") or str(i)
            cases.append(Case(path.parent.name, suite, i, name, test["data"], test["valid"]))
    return cases


CASES = _suite_cases()
case_params = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def test_suites_are_complete() -> None:
    # 148 cases in the non-strict suites, 29 in the strict ones; if the suites grow, every new
    # case is still checked below.
    assert sum(not c.strict for c in CASES) >= 148
    assert sum(c.strict for c in CASES) >= 29
    assert {c.version for c in CASES} == {"0.4", "0.5"}


@case_params
def test_suite_case(case: Case) -> None:
    report = validate(case.data, strict=case.strict)
    assert report.valid is case.valid, str(report)
    assert report.mode == "attributes"
    if case.valid:
        assert not report.errors
    else:
        # Every error points at a JSON path and says something.
        assert report.errors
        for m in report.errors:
            assert m.path.startswith("/"), m
            assert len(m.message) > 10, m


@case_params
def test_suite_case_cli_json(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The conformance protocol: one JSON object, exit 0 for valid and invalid alike."""
    path = tmp_path / "attributes.json"
    path.write_text(json.dumps(case.data))
    argv = ["validate", str(path), "--json"] + (["--strict"] if case.strict else [])
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"valid", "message"}
    assert out["valid"] is case.valid, out["message"]


# --- 0.6 draft hierarchies ----------------------------------------------------------------------

ZARR_06 = SUITES / "0.6rc0" / "zarr"


@dataclass(frozen=True)
class Case06:
    path: Path

    @property
    def rel(self) -> tuple[str, ...]:
        return self.path.relative_to(ZARR_06).parts

    @property
    def strict(self) -> bool:
        return self.rel[0] == "strict"

    @property
    def valid(self) -> bool:
        return self.rel[1] == "valid"

    @property
    def readable(self) -> bool:
        try:
            json.loads((self.path / "zarr.json").read_text())
        except ValueError:
            return False
        return True

    @property
    def id(self) -> str:
        return "/".join(self.rel).removesuffix(".ome.zarr")


CASES_06 = [Case06(p) for p in sorted(ZARR_06.glob("*/*/*/*.ome.zarr"))]
case06_params = pytest.mark.parametrize("case", CASES_06, ids=[c.id for c in CASES_06])


@case06_params
def test_06_hierarchy(case: Case06) -> None:
    """Zarr mode: the hierarchy root (metadata only, no arrays) is validated as a store."""
    conformance = {}
    if case.readable:
        attrs = json.loads((case.path / "zarr.json").read_text())["attributes"]
        conformance = attrs.get("_conformance", {})
        # The expectation recorded in the document agrees with the folder it is in.
        assert conformance.get("valid", True) is case.valid
    report = validate(case.path, strict=case.strict)
    assert report.valid is case.valid, str(report)
    if not case.readable:
        # A corrupt document is a verdict in zarr mode, naming the file and the position.
        assert any(m.file == "zarr.json" and "line 6" in m.message for m in report.errors), str(
            report
        )


@case06_params
def test_06_attributes_file(case: Case06) -> None:
    """Attributes mode: the zarr.json is judged alone."""
    if not case.readable:
        # A file that is not JSON cannot be judged at all: the error names file and position.
        with pytest.raises(MetadataError, match=r"zarr\.json: invalid JSON.*line 6"):
            validate(case.path / "zarr.json", strict=case.strict)
        return
    report = validate(case.path / "zarr.json", strict=case.strict)
    assert report.valid is case.valid, str(report)
    assert report.version == "0.6rc0" or not case.valid


def test_06_cli_protocol_subprocess() -> None:
    """A few hierarchies through a real process, as a conformance runner calls it."""
    picks = [c for c in CASES_06 if c.id.endswith(("minimal_acquisitions", "too_many_axes"))]
    picks += [c for c in CASES_06 if not c.readable][:1]
    assert picks
    for case in picks:
        proc = subprocess.run(
            [sys.executable, "-m", "napari_zarr_explorer", "validate", "--json", str(case.path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert set(out) == {"valid", "message"}
        assert out["valid"] is case.valid, (case.id, out)
