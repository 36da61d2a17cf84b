import math

import numpy as np
import pytest
import torch

from analysis import report, scorecard


@pytest.mark.parametrize(("x", "s"), [
    (0.0123456, "0.0123"), (98765.4, "9.88e+04"), (-1.5e-7, "-1.50e-07"), (1.0, "1.00"),
    (0.999, "0.999"), (0.9996, "1.00"), (123.4, "123"), (12, "12"), (123456, "1.23e+05"),
    (0, "0"), (float("nan"), "nan"), (float("inf"), "inf"), (np.float32(2.5), "2.50"),
    (torch.tensor(0.5), "0.500"), (None, "-"), ("text", "text"), (True, "True"),
])
def test_sig3(x, s):
    assert report.sig3(x) == s


def test_sig3_is_three_significant_figures_on_random_values():
    rng = np.random.default_rng(0)
    for v in rng.lognormal(0, 4, size=200) * rng.choice([-1, 1], size=200):
        s = report.sig3(float(v))
        assert math.isclose(float(s), v, rel_tol=5.01e-3)


def test_verdict_status_is_checked():
    with pytest.raises(ValueError, match="not one of"):
        report.Verdict("c", 1, 2, "maybe")


def test_records_and_scorecard(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_RECORDS", str(tmp_path / "rec"))
    v = [report.Verdict("acc > 0.9", 0.95, 0.912345, "reproduced", "ok"),
         report.Verdict("bound | tight", 1.0, 3.0, "refuted")]
    df = report.save_verdicts("09_demo", "Demo", v, "smoke")
    assert list(df["ours"]) == ["0.912", "3.00"]
    report.save_errata("09_demo", "Demo", [report.Erratum("eq 3", "sign", "flip", "cell 4")],
                       "smoke")
    out = tmp_path / "out"
    assert scorecard.main([str(tmp_path / "rec"), str(out)]) == 0
    md = (out / "scorecard_table.md").read_text()
    assert "* - 1\n  - acc › 0.9\n  - 0.950\n  - 0.912\n" in md  # old records: — for the rest
    assert "bound \\| tight" in md and "* - Demo\n  - 1\n  - 0\n  - 0\n  - 0\n  - 1\n" in md
    assert "| eq 3 | sign | flip | cell 4 |" in (out / "errata_table.md").read_text()


def test_empty_scorecard_says_so(tmp_path):
    assert scorecard.main([str(tmp_path / "none"), str(tmp_path / "o")]) == 0
    assert "No chapter has been executed" in (tmp_path / "o" / "scorecard_table.md").read_text()
