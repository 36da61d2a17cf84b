"""Rewrite the nbval references ``tests/notebooks/NN_slug.ipynb`` from ``notebooks/``.

Usage: ``python -m analysis.regen [STEM ...]`` (all notebooks when none is named).

Each MyST source is converted with jupytext and executed as it stands (its parameters cell
says ``profile = "smoke"``), so the reference's code is exactly the conversion of the source.
Outputs are kept only for cells marked ``# NBVAL_CHECK_OUTPUT``; execution counts, timings
and other volatile metadata are stripped so a reference changes only when a checked number
or the code changes.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECK = "# NBVAL_CHECK_OUTPUT"


def strip(nb):
    """Keep outputs of checked cells only; drop volatile metadata (in place; returns nb)."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type != "code":
            continue
        count += 1
        if CHECK in cell.source:
            # nbval compares only cells that were run: keep a count, made independent of reruns
            cell.execution_count = count
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = count
        else:
            cell.execution_count = None
            cell.outputs = []
    return nb


def regen(stem: str) -> float:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    src = REPO / "notebooks" / f"{stem}.md"
    nb = jupytext.read(src)
    os.environ.pop("ANALYSIS_PARAMS", None)  # a reference runs its source as it stands
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("ANALYSIS_RECORDS", str(Path(tmp) / "records"))
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO)}}).execute()
    seconds = time.perf_counter() - t0
    dest = REPO / "tests" / "notebooks" / f"{stem}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(strip(nb), dest)
    print(f"regenerated {dest.relative_to(REPO)} in {seconds:.1f} s", flush=True)
    return seconds


def main(argv: list[str]) -> int:
    stems = argv or sorted(p.stem for p in (REPO / "notebooks").glob("*.md"))
    for stem in stems:
        regen(stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
