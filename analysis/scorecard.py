"""Generate the book's scorecard and errata pages from the chapters' saved records.

Usage: ``python -m analysis.scorecard RECORDS_DIR OUT_DIR [--toc book/_toc.yml]`` writes
``OUT_DIR/scorecard_table.md`` and ``OUT_DIR/errata_table.md`` (MyST fragments included by
``book/scorecard.md`` and ``book/errata.md``). With ``--toc``, every chapter the table of
contents lists (``_executed/<stem>``) must have both records, else it exits 1 naming the
missing ones, so a chapter cannot silently drop out of the scorecard. The toolkit chapter
(:data:`WITHOUT_RECORDS`) reproduces no document and records nothing.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from analysis.report import load_records

WITHOUT_RECORDS = ("00_toolkit",)  # chapters that reproduce no document: no verdicts, no errata


def _cell(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def scorecard_md(records: list[dict]) -> str:
    if not records:
        return "*No chapter has been executed yet: run `make book`.*\n"
    counts = Counter(v["status"] for r in records for v in r["items"])
    lines = ["Totals: " + ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())), "",
             "| chapter | claim | document | ours | verdict | note |", "|---|---|---|---|---|---|"]
    for r in records:
        for v in r["items"]:
            lines.append("| " + " | ".join(_cell(x) for x in (
                r["title"], v["claim"], v["paper"], v["ours"], f"**{v['status']}**", v["note"]))
                + " |")
    profiles = sorted({r["profile"] for r in records})
    lines += ["", f"Profiles of the runs behind this table: {', '.join(profiles)}."]
    return "\n".join(lines) + "\n"


def errata_md(records: list[dict]) -> str:
    if not records:
        return "*No chapter has been executed yet: run `make book`.*\n"
    out = []
    for r in records:
        out += [f"## {r['title']}", "", "| where | error | correction | shown in |",
                "|---|---|---|---|"]
        out += ["| " + " | ".join(_cell(e[k]) for k in ("where", "error", "correction", "shown_in"))
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
    (out / "scorecard_table.md").write_text(scorecard_md(load_records("verdicts", records)))
    (out / "errata_table.md").write_text(errata_md(load_records("errata", records)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
