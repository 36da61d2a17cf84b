"""Numbers for checked cells, paper-vs-ours tables, verdicts and errata records.

Cells that nbval checks print numbers through :func:`sig3` (3 significant figures), so a
regression test compares what a reader reads, not float noise. Each chapter ends by calling
:func:`save_verdicts` and :func:`save_errata`; the book's scorecard and errata pages are
generated from those records (``python -m analysis.scorecard``), never typed by hand.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STATUSES = ("reproduced", "partly", "not reproduced", "refuted", "not testable")
#: Set to "1" by :mod:`analysis.run` (the book's and ``make chapter``'s runs): pandas then shows
#: table cells whole instead of cutting them at 50 characters. The nbval references are made
#: without it, so their checked outputs do not depend on it.
BOOK_DISPLAY = "ANALYSIS_BOOK_DISPLAY"

if os.environ.get(BOOK_DISPLAY) == "1":
    import pandas as _pd

    _pd.set_option("display.max_colwidth", None)


def sig3(x: Any, digits: int = 3) -> str:
    """``x`` rounded to ``digits`` significant figures, as text (``nan``/``inf`` kept).

    Example:
        >>> sig3(0.0123456), sig3(98765.4), sig3(-1.5e-7)
        ('0.0123', '9.88e+04', '-1.50e-07')
    """
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x) if abs(x) < 10**digits else f"{x:.{digits - 1}e}"
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return "0"
    exp = int(f"{x:.{digits - 1}e}".split("e")[1])  # exponent after rounding
    if -4 <= exp < digits:
        return f"{round(x, digits - 1 - exp):.{max(0, digits - 1 - exp)}f}"
    return f"{x:.{digits - 1}e}"


def table(rows: Sequence[dict[str, Any]], round_numbers: bool = True):
    """A pandas DataFrame from a list of dicts, numbers rounded with :func:`sig3`."""
    import pandas as pd

    if round_numbers:
        rows = [{k: (sig3(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v)
                 for k, v in r.items()} for r in rows]
    return pd.DataFrame(list(rows))


def paper_vs_ours(rows: Sequence[tuple[str, Any, Any]], note: Sequence[str] | None = None):
    """Table of (quantity, document's value, our value[, note])."""
    out = []
    for i, (what, paper, ours) in enumerate(rows):
        r = {"quantity": what, "document": sig3(paper), "ours": sig3(ours)}
        if note is not None:
            r["note"] = note[i]
        out.append(r)
    return table(out, round_numbers=False)


@dataclass
class Verdict:
    """One claim of a document and what our run makes of it."""

    claim: str
    paper: Any
    ours: Any
    status: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r} is not one of {list(STATUSES)}")
        self.paper, self.ours = sig3(self.paper), sig3(self.ours)


@dataclass
class Erratum:
    """An error found in a document: where, what is wrong, the correction, where we show it."""

    where: str
    error: str
    correction: str
    shown_in: str = ""


def records_dir() -> Path:
    """Where verdict/errata records go: ``$ANALYSIS_RECORDS`` or ``<repo>/.cache/records``."""
    return Path(os.environ.get("ANALYSIS_RECORDS", REPO / ".cache" / "records"))


def _save(kind: str, chapter: str, title: str, items: Sequence[Any], profile: str) -> Path:
    path = records_dir() / f"{chapter}.{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"chapter": chapter, "title": title, "profile": profile,
                               "items": [asdict(v) for v in items]}, indent=1))
    os.replace(tmp, path)
    return path


def save_verdicts(chapter: str, title: str, verdicts: Sequence[Verdict], profile: str):
    """Save the chapter's verdicts for the scorecard and return them as a table."""
    _save("verdicts", chapter, title, verdicts, profile)
    return table([asdict(v) for v in verdicts], round_numbers=False)


def save_errata(chapter: str, title: str, errata: Sequence[Erratum], profile: str):
    """Save the chapter's errata for the book's errata page and return them as a table."""
    _save("errata", chapter, title, errata, profile)
    return table([asdict(e) for e in errata], round_numbers=False)


def load_records(kind: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """All saved records of ``kind`` (``"verdicts"`` or ``"errata"``), sorted by chapter."""
    folder = folder or records_dir()
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob(f"*.{kind}.json"))]
