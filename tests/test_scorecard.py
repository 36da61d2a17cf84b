"""The scorecard page, generated from synthetic records of both formats (Claim and Verdict)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from analysis import claims, report, scorecard
from analysis.stats import Estimate, binomial_ci

LONG = "a very long reason " * 30  # 570 characters: must not end up in a table cell


def _records(tmp_path: Path, monkeypatch) -> Path:
    """A new-format chapter (09_new, Claim records) and an old one (08_old, Verdict records)."""
    folder = tmp_path / "records"
    monkeypatch.setenv("ANALYSIS_RECORDS", str(folder))
    gain = Estimate(0.12, 0.05, 0.2, 0.95, n_points=400, n_seeds=3, method="bootstrap")
    new = [
        claims.Claim("Fig 10: HR beats no regularisation", "HR > none",
                     claims.at_least(gain, 0.0), section="sec-09-fig10", note=LONG),
        claims.Claim("The bound never fails", "proof", claims.zero_of(0, 82),
                     section="sec-09-missing"),
        claims.Claim("- 1. a claim that looks like a list", "x",
                     claims.within(binomial_ci(3, 10), 0.9, rel=0.05)),
        claims.Claim("Needs CIFAR-10", "Table 2", claims.not_testable("no CIFAR-10 offline")),
    ]
    claims.save_claims("09_new", "New chapter", new, "smoke")
    report.save_errata("09_new", "New chapter", [report.Erratum("eq 3", "sign", "flip")], "smoke")
    old = [report.Verdict("acc > 0.9", 0.95, 0.912345, "reproduced", "ok"),
           report.Verdict("bound | tight", 1.0, 3.0, "refuted")]
    report.save_verdicts("08_old", "Old chapter", old, "full")
    report.save_errata("08_old", "Old chapter", [], "full")
    return folder


def _chapter_nb(path: Path, labels: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"({lb})=\n## Section {lb}") for lb in labels]
    nbformat.write(nb, path)


def _run(tmp_path, monkeypatch) -> tuple[str, Path]:
    folder = _records(tmp_path, monkeypatch)
    out = tmp_path / "_executed"
    out.mkdir()
    _chapter_nb(out / "09_new.ipynb", ["sec-09-fig10", "sec-09-other"])
    assert scorecard.main([str(folder), str(out)]) == 0
    return (out / "scorecard_table.md").read_text(), out


def _list_table_rows(md: str) -> list[list[str]]:
    """Rows of every list-table in ``md``: lists of the cells' text."""
    rows = []
    for block in re.findall(r":::\{list-table\}\n(.*?)\n:::", md, re.S):
        body = "\n".join(ln for ln in block.splitlines() if not ln.startswith(":"))
        for row in re.split(r"^\* - ", body, flags=re.M)[1:]:
            rows.append([c.strip() for c in re.split(r"^  - ", row, flags=re.M)])
    return rows


def test_summary_counts_both_formats(tmp_path, monkeypatch):
    md, _ = _run(tmp_path, monkeypatch)
    summary = _list_table_rows(md.split("## What decides")[0])
    assert summary[0] == ["chapter", *(scorecard.SHORT.get(s, s) for s in claims.STATUSES),
                          "total"]
    assert "reprod. = reproduced" in md
    # 08_old: 1 reproduced, 1 refuted; 09_new: 1 reproduced (at_least), 1 reproduced (zero_of),
    # 1 not reproduced (within), 1 not testable
    assert summary[1] == ["Old chapter", "1", "0", "0", "0", "1", "0", "2"]
    assert summary[2] == ["New chapter", "2", "0", "1", "0", "0", "1", "4"]
    assert summary[3] == ["**all**", *(f"**{n}**" for n in (3, 0, 1, 0, 1, 1, 6))]


def test_figure_is_saved_and_captioned(tmp_path, monkeypatch):
    md, out = _run(tmp_path, monkeypatch)
    png = out / scorecard.FIGURE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"```{{figure}} /_executed/{scorecard.FIGURE}\n:name: fig-scorecard-status" in md
    assert md.index("## Summary") < md.index("{figure}") < md.index("## What decides")


def test_legend_is_the_claims_legend(tmp_path, monkeypatch):
    md, _ = _run(tmp_path, monkeypatch)
    assert claims.legend_md() in md


def test_new_records_have_interval_points_seeds_and_links(tmp_path, monkeypatch):
    md, _ = _run(tmp_path, monkeypatch)
    rows = _list_table_rows(md.split("## By chapter")[1])
    assert rows[0] == list(scorecard.COLUMNS)
    hr = next(r for r in rows if "HR beats" in r[1])
    # a link to the chapter's section: Sphinx writes it as _executed/09_new.html#sec-09-fig10
    assert hr[1] == "{ref}`Fig 10: HR beats no regularisation <sec-09-fig10>`"
    assert hr[2:] == ["HR › none", "0.120", "[0.0500, 0.200]", "400", "3", "**reproduced**"]
    # an anchor the chapter does not define is not linked (it would break the -W build)
    bound = next(r for r in rows if "never fails" in r[1])
    assert bound[1] == "The bound never fails" and bound[5] == "82"
    listy = next(r for r in rows if "looks like a list" in r[1])
    assert listy[1].startswith("\\- 1.")  # escaped: not a nested list


def test_old_records_show_missing_fields(tmp_path, monkeypatch):
    md, _ = _run(tmp_path, monkeypatch)
    old = md.split("### Old chapter")[1].split("###")[0]
    row = next(r for r in _list_table_rows(old) if "acc" in r[1])
    assert row == ["1", "acc › 0.9", "0.950", "0.912", scorecard.MISSING, scorecard.MISSING,
                   scorecard.MISSING, "**reproduced**"]
    assert "1. ok" in old and "2. —" in old


def test_no_table_cell_is_wider_than_the_limit(tmp_path, monkeypatch):
    """Long notes go below the table; every cell of every table stays under MAX_CELL."""
    md, _ = _run(tmp_path, monkeypatch)
    rows = _list_table_rows(md)
    rows = rows[4:]  # the summary's header, 2 chapters and the total come first
    assert len(rows) == 1 + 4 + 1 + 2  # header and rows of both chapters
    assert max(len(c) for r in rows for c in r) <= scorecard.MAX_CELL + 40  # + the ref markup
    assert all(len(r) == len(scorecard.COLUMNS) for r in rows)
    assert ":widths: " + " ".join(map(str, scorecard.WIDTHS)) in md
    assert sum(scorecard.WIDTHS) == 100 and len(scorecard.WIDTHS) == len(scorecard.COLUMNS)
    assert md.count(":class: scorecard-table") == 3  # the summary and both chapters
    new_notes = md.split("### New chapter")[1].split("Notes:")[1]
    assert LONG.strip() in new_notes  # the long note is below the table, whole
    css = (Path(scorecard.__file__).parents[1] / "book" / "_static" / "book.css").read_text()
    rule = css.split("table.scorecard-table {", 1)[1].split("}", 1)[0]
    assert "table-layout: fixed" in rule and "width: 100%" in rule


def test_a_long_claim_is_cut_in_the_table_and_given_whole_below(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_RECORDS", str(tmp_path / "r"))
    text = "word " * 60
    claims.save_claims("07_x", "X", [claims.Claim(text, "1", claims.holds(True, "checked"))],
                       "smoke")
    record = report.load_records("verdicts", tmp_path / "r")[0]
    md = scorecard.chapter_md(record, set())
    cell = _list_table_rows(md)[1][1]
    assert len(cell) <= scorecard.MAX_CELL and cell.endswith("…")
    assert "claim: " + text.strip() in md


def test_toc_chapter_without_record_fails(tmp_path, monkeypatch, capsys):
    folder = _records(tmp_path, monkeypatch)
    toc = tmp_path / "_toc.yml"
    toc.write_text("root: intro\nchapters:\n  - file: _executed/09_new\n"
                   "  - file: _executed/06_absent\n")
    assert scorecard.main([str(folder), str(tmp_path / "o"), "--toc", str(toc)]) == 1
    assert "06_absent.verdicts.json" in capsys.readouterr().err


def test_labels_from_notebook_and_myst(tmp_path):
    _chapter_nb(tmp_path / "a.ipynb", ["sec-01-fig10"])
    (tmp_path / "b.md").write_text("(sec-02-x)=\n## X\n\ntext (not-a-label)= here\n")
    assert scorecard.chapter_labels(tmp_path / "a.ipynb") == {"sec-01-fig10"}
    assert scorecard.chapter_labels(tmp_path / "b.md") == {"sec-02-x"}
    assert scorecard.chapter_labels(tmp_path / "none.ipynb") == set()


@pytest.mark.parametrize("records", [[], [{"chapter": "09", "title": "T", "items": []}]])
def test_empty_inputs(records):
    md = scorecard.scorecard_md(records, {})
    assert "No chapter" in md or "saved no claims" in md
    json.dumps(md)


def test_a_composite_claim_shows_its_parts_estimates_and_intervals():
    a = Estimate(0.3, 0.1, 0.5, 0.95, n_points=200, n_seeds=3, method="bootstrap")
    b = Estimate(1.2, 0.9, 1.6, 0.95, n_points=50, n_seeds=1, method="bootstrap")
    both = claims.Claim("Table 4.2 holds on every row", "rows",
                        claims.all_of(claims.at_least(a, 0.0), claims.at_least(b, 2.0),
                                      claims.zero_of(0, 10)))
    rec = both.record("full")
    assert rec["estimate"] is None and [p["status"] for p in rec["part_estimates"]] == [
        claims.REPRODUCED, claims.NOT_REPRODUCED, claims.REPRODUCED]
    cells = scorecard.composite_cells(rec)
    assert cells["ours"] == "1: 0.300; 2: 1.20; 3: 0"
    assert cells["interval"].startswith("1: [0.100, 0.500]; 2: [0.900, 1.60]; 3: [0, ")
    assert cells["n_points"] == 10 and cells["n_seeds"] == 1  # the thinnest part
    md = scorecard.chapter_md({"chapter": "09_x", "title": "x", "profile": "full",
                               "items": [rec]})
    assert "1: [0.100, 0.500]" in md
    single = claims.Claim("one part", "x", claims.at_least(a, 0.0)).record("full")
    assert scorecard.composite_cells(single) == {}  # its own estimate is shown
