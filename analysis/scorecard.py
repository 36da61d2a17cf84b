"""Generate the book's scorecard and errata pages from the chapters' saved records.

Usage: ``python -m analysis.scorecard RECORDS_DIR OUT_DIR`` writes ``OUT_DIR/scorecard_table.md``
and ``OUT_DIR/errata_table.md`` (MyST fragments included by ``book/scorecard.md`` and
``book/errata.md``).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from analysis.report import load_records


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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    records, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "scorecard_table.md").write_text(scorecard_md(load_records("verdicts", records)))
    (out / "errata_table.md").write_text(errata_md(load_records("errata", records)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
