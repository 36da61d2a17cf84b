"""The shape every chapter notebook keeps (DESIGN.md, "A chapter notebook"): thin code cells,
collapsed code, figures placed and captioned in the text, verdict sections that exist.

Code lines are counted the way the house counter counts them: every line between a code
cell's opening and closing fence, its option lines (``:tags:``), comments and blank lines
included.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from analysis import claims

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.md"))
MAX_CHAPTER_LINES = 200
MAX_CELL_LINES = 25


def code_cell_blocks(text: str) -> list[list[str]]:
    """The lines inside each ```` ```{code-cell} ```` fence of a MyST notebook's text."""
    blocks, cur = [], None
    for line in text.splitlines():
        if cur is None and re.match(r"^```\{code-cell\}", line):
            cur = []
        elif cur is not None and line.startswith("```"):
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


def test_counter_counts_options_comments_and_blank_lines():
    text = "```{code-cell} ipython3\n:tags: [hide-input]\n\n# c\nx = 1\n```\ntext\n"
    assert [len(b) for b in code_cell_blocks(text)] == [4]


def _text(stem: str) -> str:
    return (REPO / "notebooks" / f"{stem}.md").read_text()


def _cells(stem: str):
    return [c for c in jupytext.read(REPO / "notebooks" / f"{stem}.md").cells
            if c.cell_type == "code"]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_notebook_is_thin(stem):
    sizes = [len(b) for b in code_cell_blocks(_text(stem))]
    total, widest = sum(sizes), max(sizes)
    assert total <= MAX_CHAPTER_LINES, f"{stem}: {total} code lines"
    assert widest <= MAX_CELL_LINES, f"{stem}: a cell of {widest} lines"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_only_the_parameters_cell_needs_a_tag(stem):
    """``analysis.run.prepare_for_book`` collapses every code cell in the book; the sources do
    not repeat ``hide-input`` (and the parameters cell is the one tagged ``parameters``)."""
    tagged = [c.metadata.get("tags", []) for c in _cells(stem)]
    assert sum("parameters" in t for t in tagged) == 1


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_figure_is_glued_once_and_captioned_in_the_text(stem):
    """A figure cell draws one figure and hands it to the book (``plots.to_book(name, fig)``);
    the text places it with a ``{glue:figure}`` of the same ``:name:`` and a caption."""
    text, n = _text(stem), stem[:2]
    glued = re.findall(r"to_book\(\s*[\"'](fig-[a-z0-9-]+)[\"']", text)
    placed = dict(re.findall(r"```\{glue:figure\} (fig-[a-z0-9-]+)\n:name: (fig-[a-z0-9-]+)\n", text))
    assert glued, f"{stem} shows no figure through plots.to_book"
    assert len(set(glued)) == len(glued), "a figure name is glued twice"
    for name in glued:
        assert re.fullmatch(rf"fig-{n}-[a-z0-9-]+", name), name
        assert placed.get(name) == name, f"{name} is not placed by a {{glue:figure}} with its :name:"
        block = text.split(f"```{{glue:figure}} {name}\n", 1)[1].split("```", 1)[0]
        caption = block.split("\n", 1)[1].strip()
        assert len(caption) > 40, f"{name} has no real caption"
    assert set(placed) <= set(glued), set(placed) - set(glued)
    for c in _cells(stem):
        if re.search(r"\bplot_\w+\(", c.source):
            assert "to_book(" in c.source, c.source[:60]
            assert not c.source.rstrip().endswith("\nfig")  # no second image


@pytest.mark.parametrize("stem", CHAPTERS)
def test_notebook_types_no_status(stem):
    assert claims.find_typed_statuses(_text(stem)) == []


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_claim_section_is_a_label_of_the_notebook(stem):
    text, n = _text(stem), stem[:2]
    labels = set(re.findall(rf"^\((sec-{n}-[a-z0-9-]+)\)=$", text, re.M))
    used = set(re.findall(rf"section=\"(sec-{n}-[a-z0-9-]+)\"", text))
    assert used <= labels, used - labels


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_chapter_saves_the_records_the_scorecard_needs(stem):
    """``analysis.scorecard`` fails the book when a chapter of the table of contents (other
    than those in ``WITHOUT_RECORDS``) leaves no verdict or no errata record."""
    from analysis.scorecard import WITHOUT_RECORDS

    text = _text(stem)
    if stem in WITHOUT_RECORDS:
        pytest.skip(f"{stem} is listed in analysis.scorecard.WITHOUT_RECORDS")
    assert "save_claims(" in text, f"{stem} saves no verdicts"
    assert "save_errata(" in text, f"{stem} saves no errata record"
