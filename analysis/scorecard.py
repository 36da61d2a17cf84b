"""Generate the book's scorecard and errata pages from the chapters' saved records.

Usage: ``python -m analysis.scorecard RECORDS_DIR OUT_DIR [--toc book/_toc.yml]`` writes
``OUT_DIR/scorecard_table.md``, ``OUT_DIR/scorecard_status.png`` and
``OUT_DIR/errata_table.md`` (MyST fragments included by ``book/scorecard.md`` and
``book/errata.md``). With ``--toc``, every chapter the table of contents lists
(``_executed/<stem>``) must have both records, else it exits 1 naming the missing ones, so a
chapter cannot silently drop out of the scorecard. The toolkit chapter (:data:`WITHOUT_RECORDS`)
reproduces no document and records nothing.

Records come in two formats: :meth:`analysis.claims.Claim.record` (estimate, interval, points,
seeds, rule, tolerance, reason, section anchor) and the older :class:`analysis.report.Verdict`
(claim, paper, ours, status, note); the fields an old record lacks show as "—".

Layout (so that no column is cut off at the book's page width): the per-chapter tables are
MyST ``list-table`` directives with fixed relative column widths (:data:`WIDTHS`) and the class
``scorecard-table`` (``table-layout: fixed`` and wrapping in ``book/_static/book.css``); the long
texts (rule, reason, note) go in a numbered list below each table, and no table cell holds more
than :data:`MAX_CELL` characters.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from analysis.report import load_records

WITHOUT_RECORDS = ("00_toolkit",)  # chapters that reproduce no document: no verdicts, no errata
MISSING = "—"  # a field an old (Verdict) record does not have
MAX_CELL = 160  # characters: the longest text a table cell may hold (longer text goes below)
#: Columns of a chapter's table and their relative widths (percent of the page).
COLUMNS = ("no.", "claim", "document", "ours", "interval", "n pts", "n seeds", "status")
WIDTHS = (5, 26, 13, 13, 13, 7, 8, 15)
FIGURE = "scorecard_status.png"
SUMMARY_CHAPTER_WIDTH = 23  # percent of the page for the summary's chapter column
#: Abbreviated status names of the summary's header (explained below the table).
SHORT = {"reproduced": "reprod.", "not reproduced": "not reprod.", "inconclusive": "inconcl."}


def _statuses() -> tuple[str, ...]:
    from analysis.claims import STATUSES

    return STATUSES


def _text(x: object) -> str:
    """A value as one line of table text (None and "" are the missing mark)."""
    if x is None or x == "":
        return MISSING
    return str(x).replace("\n", " ").strip()


def _clip(s: str, limit: int = MAX_CELL) -> tuple[str, bool]:
    """``s`` cut to ``limit`` characters at a word boundary (with "…"), and whether it was."""
    if len(s) <= limit:
        return s, False
    cut = s[:limit - 1].rsplit(" ", 1)[0]
    return cut + "…", True


def _escape(s: str) -> str:
    """Text safe inside a list-table cell and a ``{ref}`` title: no role, link, list or heading
    syntax (a cell "- 3" or "1. x" would otherwise become a list)."""
    s = s.replace("`", "'").replace("<", "‹").replace(">", "›").replace("|", "\\|")
    m = re.match(r"(\d+)([.)])(\s|$)", s)
    if m:
        return m.group(1) + "\\" + s[len(m.group(1)):]
    return "\\" + s if re.match(r"[-*+#>](\s|$)", s) else s


def chapter_labels(notebook: Path) -> set[str]:
    """The MyST labels ``(name)=`` of a chapter's markdown cells (``.ipynb`` or MyST ``.md``)."""
    if not notebook.is_file():
        return set()
    text = notebook.read_text()
    if notebook.suffix == ".ipynb":
        cells = json.loads(text).get("cells", [])
        text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                         for c in cells if c.get("cell_type") == "markdown")
    return set(re.findall(r"^\(([\w.:-]+)\)=\s*$", text, re.M))


def status_counts(records: list[dict]) -> dict[str, Counter]:
    """``{chapter title: Counter(status -> number of claims)}`` in the records' order."""
    return {r["title"]: Counter(v["status"] for v in r["items"]) for r in records}


def summary_md(records: list[dict]) -> str:
    """The per-chapter summary table: counts by status, a total per chapter and in all.

    A fixed-width list-table (class ``scorecard-table``): the chapter column takes
    :data:`SUMMARY_CHAPTER_WIDTH` percent, the status columns and the total share the rest.
    """
    statuses = _statuses()
    counts = status_counts(records)
    extra = sorted({s for c in counts.values() for s in c} - set(statuses))  # old vocabularies
    cols = [*statuses, *extra]
    share = (100 - SUMMARY_CHAPTER_WIDTH) // (len(cols) + 1)
    widths = [100 - share * (len(cols) + 1), *[share] * (len(cols) + 1)]
    lines = [":::{list-table}", ":header-rows: 1", ":class: scorecard-table",
             f":widths: {' '.join(map(str, widths))}", "",
             "* - " + "\n  - ".join(["chapter", *(SHORT.get(c, c) for c in cols), "total"])]
    total: Counter = Counter()
    for title, c in counts.items():
        total += c
        lines.append("* - " + "\n  - ".join([_escape(title), *(str(c.get(s, 0)) for s in cols),
                                              str(sum(c.values()))]))
    lines.append("* - " + "\n  - ".join(["**all**", *(f"**{total.get(s, 0)}**" for s in cols),
                                          f"**{sum(total.values())}**"]))
    abbrev = ", ".join(f"{a} = {s}" for s, a in SHORT.items() if s in cols)
    return "\n".join([*lines, ":::", "", f"Numbers of claims; {abbrev}."]) + "\n"


def _claim_cell(item: dict, chapter: str, labels: set[str] | None) -> str:
    text, _ = _clip(_escape(_text(item.get("claim"))))
    anchor = item.get("section") or ""
    if anchor and (labels is None or anchor in labels):
        return f"{{ref}}`{text} <{anchor}>`"  # Sphinx: _executed/<chapter>.html#<anchor>
    return text


def _note(item: dict) -> str:
    """Rule, tolerance, reason and the chapter's note of one claim, as one paragraph."""
    parts = []
    if item.get("rule"):
        tol = f" ({item['tolerance']})" if item.get("tolerance") else ""
        parts.append(f"rule `{item['rule']}`{tol}")
    note = item.get("note") or ""
    reason = item.get("reason") or ""
    if reason and reason not in note:
        parts.append(reason)
    if note:
        parts.append(note)
    return "; ".join(p.replace("\n", " ") for p in parts) or MISSING


def composite_cells(item: dict) -> dict[str, Any]:
    """For a composite claim without an estimate of its own (``all_of``, ``any_of``,
    ``graded``): its parts' estimates and intervals as the *ours* and *interval* cells
    (``"1: 0.3; 2: 1.2"``, ``"1: [0.1, 0.5]; 2: …"``) and the smallest n points and n seeds
    behind any part; ``{}`` for every other claim (its own cells are shown)."""
    parts = item.get("part_estimates") or []
    if item.get("estimate") is not None or not any(p.get("interval") for p in parts):
        return {}
    with_e = [(k, p) for k, p in enumerate(parts, 1) if p.get("interval")]
    pts = [p["n_points"] for _, p in with_e if p.get("n_points") is not None]
    seeds = [p["n_seeds"] for _, p in with_e if p.get("n_seeds") is not None]
    return {"ours": "; ".join(f"{k}: {p['estimate']}" for k, p in with_e),
            "interval": "; ".join(f"{k}: {p['interval']}" for k, p in with_e),
            "n_points": min(pts) if pts else None, "n_seeds": min(seeds) if seeds else None}


def chapter_md(record: dict, labels: set[str] | None = None) -> str:
    """One chapter's table (a fixed-width list-table) and its numbered notes below it.

    Args:
        record: a verdicts record (``{"chapter", "title", "profile", "items"}``).
        labels: the MyST labels the chapter defines; a claim links to its section only when its
            anchor is one of them (None: link every anchor given).
    """
    chapter = record["chapter"]
    out = [f"### {_escape(record['title'])}", "",
           f"Profile of the run: {record.get('profile', MISSING)}; chapter "
           f"{{doc}}`/_executed/{chapter}`.", ""]
    if not record["items"]:
        return "\n".join([*out, "*This chapter saved no claims.*", ""])
    out += [":::{list-table}", ":header-rows: 1", ":class: scorecard-table",
            f":widths: {' '.join(map(str, WIDTHS))}", "",
            "* - " + "\n  - ".join(COLUMNS)]
    notes = []
    for i, item in enumerate(record["items"], 1):
        cells = [str(i), _claim_cell(item, chapter, labels)]
        clipped = []
        shown = {**item, **composite_cells(item)}
        for key in ("paper", "ours", "interval", "n_points", "n_seeds"):
            text, cut = _clip(_escape(_text(shown.get(key))))
            cells.append(text)
            if cut:
                clipped.append(f"{key}: {_escape(_text(item.get(key)))}")
        cells.append(f"**{_text(item.get('status'))}**")
        out.append("* - " + "\n  - ".join(cells))
        full_claim = _escape(_text(item.get("claim")))
        if _clip(full_claim)[1]:
            clipped.insert(0, f"claim: {full_claim}")
        notes.append(f"{i}. " + "; ".join([*clipped, _note(item)]))
    out += [":::", "", "Notes:", "", *notes, ""]
    return "\n".join(out)


def scorecard_md(records: list[dict], labels: dict[str, set[str]] | None = None,
                 figure: str | None = None) -> str:
    """The scorecard fragment: summary, figure, legend, then one table per chapter.

    Args:
        records: the verdicts records (either format), sorted by chapter.
        labels: ``{chapter stem: its MyST labels}`` (None: link every anchor).
        figure: path of the summary figure as the book's source sees it (None: no figure).
    """
    from analysis.claims import legend_md

    if not records:
        return "*No chapter has been executed yet: run `make book`.*\n"
    profiles = sorted({r.get("profile", MISSING) for r in records})
    out = ["## Summary", "", summary_md(records),
           f"Profiles of the runs behind these tables: {', '.join(profiles)}.", ""]
    if figure:
        out += [f"```{{figure}} {figure}", ":name: fig-scorecard-status", ":width: 100%", "",
                "Claims of each chapter by status (number of claims; colours as in the legend "
                "below), from the records the chapters saved when they ran.", "```", ""]
    out += ["## What decides each status", "", legend_md(), "",
            "Columns of the tables below: *document*, the document's value; *ours*, our "
            "estimate; *interval*, its confidence interval; *n pts*, the number of points "
            "(images, samples) behind it; *n seeds*, the number of training seeds; "
            f"{MISSING}, a field the chapter's record does not have (older records carry no "
            "interval). The claim links to the chapter's section that shows the evidence; "
            "the notes below each table give the rule, its tolerance and the reason for the "
            "status.", "", "## By chapter", ""]
    for r in records:
        out.append(chapter_md(r, None if labels is None else labels.get(r["chapter"], set())))
    return "\n".join(out)


def save_figure(records: list[dict], path: Path) -> Path:
    """Draw the stacked bar chart of :func:`status_counts` into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots.scorecard import plot_status_counts

    counts = {textwrap.fill(title, 32): c for title, c in status_counts(records).items()}
    statuses = list(_statuses()) + sorted({s for c in counts.values() for s in c}
                                          - set(_statuses()))
    fig = plot_status_counts(counts, statuses)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def errata_md(records: list[dict]) -> str:
    if not records:
        return "*No chapter has been executed yet: run `make book`.*\n"
    out = []
    for r in records:
        out += [f"## {r['title']}", "", "| where | error | correction | shown in |",
                "|---|---|---|---|"]
        out += ["| " + " | ".join(_text(e[k]).replace("|", "\\|")
                                  for k in ("where", "error", "correction", "shown_in"))
                + " |" for e in r["items"]]
        out.append("")
    return "\n".join(out)


def toc_chapters(toc: Path) -> list[str]:
    """Stems of the executed chapters the table of contents lists (``file: _executed/<stem>``)."""
    return re.findall(r"file:\s*_executed/([\w.-]+)", toc.read_text())


def missing_records(records: Path, chapters: list[str]) -> list[str]:
    """``<stem>.<kind>.json`` files absent from ``records`` for the given chapters."""
    return [f"{c}.{k}.json" for c in chapters if c not in WITHOUT_RECORDS
            for k in ("verdicts", "errata") if not (records / f"{c}.{k}.json").is_file()]


def main(argv: list[str]) -> int:
    toc = None
    if len(argv) == 4 and argv[2] == "--toc":
        toc, argv = Path(argv[3]), argv[:2]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    records, out = Path(argv[0]), Path(argv[1])
    if toc is not None:
        missing = missing_records(records, toc_chapters(toc))
        if missing:
            print(f"error: no record for {', '.join(missing)} in {records}: the chapter did not "
                  "save its verdicts/errata; rerun it (delete its executed notebook, then make)",
                  file=sys.stderr)
            return 1
    out.mkdir(parents=True, exist_ok=True)
    verdicts = load_records("verdicts", records)
    labels = {r["chapter"]: chapter_labels(out / f"{r['chapter']}.ipynb") for r in verdicts}
    for r in verdicts:
        unknown = sorted({v.get("section") for v in r["items"] if v.get("section")}
                         - labels[r["chapter"]])
        if unknown:
            print(f"warning: {r['chapter']}: no section labelled {unknown} in "
                  f"{out / (r['chapter'] + '.ipynb')}; those claims are not linked",
                  file=sys.stderr)
    figure = None
    if verdicts:
        save_figure(verdicts, out / FIGURE)
        figure = f"/{out.name}/{FIGURE}"  # relative to the book's source folder
    (out / "scorecard_table.md").write_text(scorecard_md(verdicts, labels, figure))
    (out / "errata_table.md").write_text(errata_md(load_records("errata", records)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
