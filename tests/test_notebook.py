"""The docs notebook runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "explore.ipynb"


@pytest.mark.slow
def test_notebook_runs(kernel_name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "store the notebook without outputs"
    )
    monkeypatch.chdir(tmp_path)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) >= 5  # inspect, chunk_map, validate, estimate, the run's estimate
    assert any("xarray" in o["data"]["text/html"] for o in html)  # the DataTree's own repr
    # the explorer's estimate is of the whole run: every level and the labels, and a total
    run = next(o["data"]["text/html"] for o in html if "the run writes" in o["data"]["text/html"])
    assert all(f"<td>{name}</td>" in run for name in ("0", "1", "2", "labels/cells/0", "total"))
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "True" in text  # verified chunk map
    assert "arrays, now" in text and "smallest:" in text
