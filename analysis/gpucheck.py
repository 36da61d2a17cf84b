"""``make gpu-check``: every chapter's smoke profile on a GPU, compared with the CPU references.

Usage: ``python -m analysis.gpucheck [STEM ...] [--rel 1e-2] [--abs 1e-6]``.

Each chapter (all of ``notebooks/`` when none is named) runs with ``-p profile smoke -p device
cuda`` through :mod:`analysis.run` into ``.cache/gpu/<stem>.ipynb``. Every cell the nbval
reference ``tests/notebooks/<stem>.ipynb`` checks (``# NBVAL_CHECK_OUTPUT``) is compared with the
same cell of the GPU run: the text must be the same once numbers are taken out, and every number
must agree within ``|gpu - cpu| <= rel * max(|gpu|, |cpu|) + abs`` (default ``rel = 1e-2``,
``abs = 1e-6``: the checked cells print 3 significant figures, and a GPU's float arithmetic and
its different reduction order move the last digit). Exit status 1 lists every difference; 0
when all agree. Without a CUDA device (``torch.cuda.is_available()`` false) it says so and
exits 0, so the target is safe on any machine.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECK = "# NBVAL_CHECK_OUTPUT"
REL, ABS = 1e-2, 1e-6
# a number as the checked cells print it: 12, -0.0123, 1.23e+05, nan, inf
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
                    r"(?![\w.])")


@dataclass(frozen=True)
class Difference:
    """One checked output that differs between the CPU reference and the GPU run."""

    chapter: str
    cell: int  # index of the code cell among the reference's code cells, from 1
    what: str  # the two texts or numbers, in words

    def __str__(self) -> str:
        return f"{self.chapter}, code cell {self.cell}: {self.what}"


def output_text(cell) -> str:
    """The text a cell shows: its streams and the ``text/plain`` of its results, joined."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def split_numbers(text: str) -> tuple[str, list[float]]:
    """``text`` with each number replaced by ``#``, and the numbers (as floats)."""
    numbers = [float(m) for m in NUMBER.findall(text)]
    return NUMBER.sub("#", text), numbers


def close(a: float, b: float, rel: float = REL, abs_tol: float = ABS) -> bool:
    """``|a - b| <= rel * max(|a|, |b|) + abs_tol``; NaN equals NaN, infinities match exactly."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b)) + abs_tol


def compare_text(cpu: str, gpu: str, rel: float = REL, abs_tol: float = ABS) -> list[str]:
    """What differs between two outputs of one cell (empty when they agree within tolerance).

    Args:
        cpu: the reference's text. gpu: the GPU run's text.
        rel, abs_tol: the tolerance of :func:`close`.

    Returns:
        One line per difference: a changed text (numbers aside), a different count of numbers,
        or each pair of numbers outside the tolerance (with their relative difference).
    """
    cpu_shape, cpu_nums = split_numbers(cpu)
    gpu_shape, gpu_nums = split_numbers(gpu)
    if cpu_shape.split() != gpu_shape.split():
        return [f"text differs: CPU {cpu.strip()[:200]!r} vs GPU {gpu.strip()[:200]!r}"]
    out = []
    for i, (a, b) in enumerate(zip(cpu_nums, gpu_nums, strict=True)):
        if not close(a, b, rel, abs_tol):
            r = abs(a - b) / max(abs(a), abs(b)) if max(abs(a), abs(b)) > 0 else math.inf
            out.append(f"number {i + 1}: CPU {a:g} vs GPU {b:g} (relative difference {r:.2g})")
    return out


def compare_notebooks(chapter: str, reference, executed, rel: float = REL,
                      abs_tol: float = ABS) -> list[Difference]:
    """Compare the checked cells of ``reference`` with the same cells of ``executed``.

    Cells are matched by their source, in order (the executed notebook also holds papermill's
    injected parameters and the book's parameters display). A checked cell missing from the run
    is a difference.

    Args:
        chapter: the stem, for the report.
        reference: the CPU nbval reference (nbformat). executed: the GPU run (nbformat).
        rel, abs_tol: the tolerance of :func:`close`.
    """
    run_cells = [c for c in executed.cells if c.cell_type == "code"]
    diffs = []
    pos = 0
    for k, cell in enumerate((c for c in reference.cells if c.cell_type == "code"), 1):
        match = next((j for j in range(pos, len(run_cells)) if run_cells[j].source == cell.source),
                     None)
        if match is not None:
            pos = match + 1
        if CHECK not in cell.source:
            continue
        if match is None:
            diffs.append(Difference(chapter, k, "the cell is not in the GPU run"))
            continue
        for what in compare_text(output_text(cell), output_text(run_cells[match]), rel, abs_tol):
            diffs.append(Difference(chapter, k, what))
    return diffs


def _option(argv: list[str], name: str, default: float) -> float:
    if name in argv:
        i = argv.index(name)
        value = float(argv[i + 1])
        del argv[i:i + 2]
        return value
    return default


def main(argv: list[str]) -> int:
    import nbformat
    import torch

    argv = list(argv)
    rel, abs_tol = _option(argv, "--rel", REL), _option(argv, "--abs", ABS)
    if not torch.cuda.is_available():
        print("gpu-check skipped: no CUDA device here (torch.cuda.is_available() is False; "
              f"torch {torch.__version__}). Run it on a machine with a GPU and a CUDA build of "
              "torch.")
        return 0
    stems = argv or sorted(p.stem for p in (REPO / "notebooks").glob("*.md"))
    out_dir = REPO / ".cache" / "gpu"
    diffs: list[Difference] = []
    failed = []
    for stem in stems:
        out = out_dir / f"{stem}.ipynb"
        cmd = [sys.executable, "-m", "analysis.run", f"notebooks/{stem}.md", str(out),
               "-p", "profile", "smoke", "-p", "device", "cuda"]
        print("running", " ".join(cmd[2:]), flush=True)
        env = {**os.environ, "ANALYSIS_RECORDS": str(out_dir / "records")}
        if subprocess.run(cmd, cwd=REPO, env=env).returncode != 0:
            failed.append(stem)
            continue
        ref = nbformat.read(REPO / "tests" / "notebooks" / f"{stem}.ipynb", as_version=4)
        found = compare_notebooks(stem, ref, nbformat.read(out, as_version=4), rel, abs_tol)
        print(f"{stem}: {len(found)} difference(s) from the CPU reference", flush=True)
        diffs += found
    for d in diffs:
        print(d)
    if failed:
        print(f"error: failed on the GPU: {', '.join(failed)} (partial notebooks in {out_dir})")
    print(f"gpu-check: {len(stems) - len(failed)} chapter(s) run, {len(diffs)} difference(s) "
          f"beyond rel {rel:g}, abs {abs_tol:g}")
    return 1 if diffs or failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
