"""Tests of analysis.claims: every rule, its boundary cases, composites, records, the checker."""

import json
import math

import pytest

from analysis import claims as C
from analysis import report, stats
from analysis.stats import Estimate, exact


def est(value, low, high, n=100, seeds=1):
    return Estimate(value, low, high, 0.95, n, seeds, "test")


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_and_legend_cover_every_status():
    assert C.STATUSES == ("reproduced", "partly", "not reproduced", "inconclusive", "refuted",
                          "not testable")
    assert set(C.LEGEND) == set(C.STATUSES) and all(C.LEGEND.values())
    md = C.legend_md()
    assert all(f"**{s}**" in md for s in C.STATUSES)
    assert "never a refutation" in C.LEGEND["refuted"]


def test_status_checks_its_label_and_reason():
    with pytest.raises(ValueError, match="not one of"):
        C.Status("maybe", "r", "rule")
    with pytest.raises(ValueError, match="reason"):
        C.Status("reproduced", "", "rule")


# ---------------------------------------------------------------- at_least / at_most


@pytest.mark.parametrize(("low", "high", "label"), [
    (0.1, 0.3, "reproduced"),
    (-0.3, -0.1, "not reproduced"),
    (-0.1, 0.3, "inconclusive"),       # straddles
    (0.0, 0.3, "inconclusive"),        # touches from above: equality not excluded
    (-0.3, 0.0, "inconclusive"),       # touches from below
    (-math.inf, math.inf, "inconclusive"),  # one observation: unbounded
])
def test_at_least_boundaries(low, high, label):
    s = C.at_least(est((low + high) / 2 if math.isfinite(low + high) else 0.0, low, high), 0.0)
    assert s.label == label and s.rule == "at_least" and s.tolerance == "threshold 0"


def test_at_least_exact_values_at_the_threshold():
    assert C.at_least(exact(0.0), 0.0).label == "inconclusive"
    assert C.at_least(exact(1e-12), 0.0).label == "reproduced"
    assert C.at_least(exact(2.0), 2.5).label == "not reproduced"


@pytest.mark.parametrize(("low", "high", "label"), [
    (-0.3, -0.1, "reproduced"), (0.1, 0.3, "not reproduced"), (-0.1, 0.0, "inconclusive"),
    (0.0, 0.2, "inconclusive"),
])
def test_at_most_boundaries(low, high, label):
    assert C.at_most(est((low + high) / 2, low, high)).label == label


def test_rules_reject_non_estimates_and_nan():
    with pytest.raises(TypeError, match="Estimate"):
        C.at_least(0.5, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        C.at_least(exact(1.0), float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        exact(float("nan"))  # a NaN estimate cannot even be built
    with pytest.raises(ValueError, match="NaN"):
        C.within(exact(1.0), float("nan"), 0.1)


# ---------------------------------------------------------------- within / within_orders


@pytest.mark.parametrize(("low", "high", "label"), [
    (0.95, 1.05, "reproduced"),
    (0.9, 1.1, "reproduced"),          # both ends on the (closed) band's edges
    (1.2, 1.3, "not reproduced"),
    (0.5, 0.8, "not reproduced"),
    (1.05, 1.2, "inconclusive"),       # crosses the upper edge
    (0.8, 0.95, "inconclusive"),       # crosses the lower edge
    (0.5, 1.5, "inconclusive"),        # wider than the band
    (1.1, 1.3, "inconclusive"),        # touches the edge from outside
])
def test_within_boundaries(low, high, label):
    s = C.within(est((low + high) / 2, low, high), paper=1.0, rel=0.1)
    assert s.label == label, s.reason
    assert s.tolerance == "rel 0.1"


def test_within_negative_paper_zero_paper_and_bad_tolerances():
    assert C.within(exact(-1.05), -1.0, 0.1).label == "reproduced"
    assert C.within(exact(-1.2), -1.0, 0.1).label == "not reproduced"
    assert C.within(exact(0.01), 0.0, 0.1, abs_tol=0.02).label == "reproduced"
    with pytest.raises(ValueError, match="zero width"):
        C.within(exact(0.0), 0.0, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        C.within(exact(1.0), 1.0, -0.1)


@pytest.mark.parametrize(("low", "high", "label"), [
    (2e6, 5e7, "reproduced"),           # within one decade of 1e7
    (1e6, 1e8, "reproduced"),           # exactly on the edges
    (1e3, 1e5, "not reproduced"),
    (5e5, 5e6, "inconclusive"),
    (-1.0, 1e7, "inconclusive"),        # reaches below zero
])
def test_within_orders_boundaries(low, high, label):
    v = min(max(1e6, low), high)
    assert C.within_orders(est(v, low, high), 1e7, 1).label == label


def test_within_orders_needs_positive_paper_and_k():
    with pytest.raises(ValueError, match="paper > 0"):
        C.within_orders(exact(1.0), -1.0, 1)
    with pytest.raises(ValueError, match="k > 0"):
        C.within_orders(exact(1.0), 1.0, 0)


# ---------------------------------------------------------------- zero_of


def test_zero_of_no_violation_reports_the_binomial_upper_limit():
    s = C.zero_of(0, 100)
    assert s.label == "reproduced"
    assert s.estimate.high == pytest.approx(1 - 0.05 ** (1 / 100))  # 0.0295
    assert "0.0295" in s.reason


def test_zero_of_one_violation_refutes_and_max_rate_asks_for_enough_points():
    assert C.zero_of(1, 10_000).label == "refuted"
    assert C.zero_of(0, 10, max_rate=0.05).label == "inconclusive"   # upper limit 0.259
    assert C.zero_of(0, 100, max_rate=0.05).label == "reproduced"    # 0.0295
    # boundary: the upper limit exactly at max_rate counts as small enough
    up = stats.binomial_upper(0, 50).high  # 1 - 0.05 ** (1 / 50), as scipy computes it
    assert C.zero_of(0, 50, max_rate=up).label == "reproduced"


def test_zero_of_rejects_bad_counts():
    for k, n in [(-1, 10), (11, 10), (0, 0)]:
        with pytest.raises(ValueError):
            C.zero_of(k, n)
    with pytest.raises(TypeError):
        C.zero_of(False, 10)


# ---------------------------------------------------------------- refutations, exact checks


def test_counterexample_proof_error_holds_not_testable():
    assert C.counterexample(True, "J=(0.1,0), H=diag(0.01,-10)").label == "refuted"
    assert C.counterexample(False, "grid of 400 points").label == "inconclusive"
    other = C.zero_of(0, 400)
    assert C.counterexample(False, "grid", otherwise=other) is other
    assert C.proof_error("complement of F_sc dropped in Lemma 4.0.1").label == "refuted"
    assert C.holds(True, "identity to 1e-12").label == "reproduced"
    assert C.holds(False, "identity off by 0.3").label == "not reproduced"
    s = C.not_testable("needs CIFAR-10, not available offline")
    assert s.label == "not testable" and "CIFAR" in s.reason
    for bad in (lambda: C.not_testable("  "), lambda: C.counterexample(True, ""),
                lambda: C.proof_error(""), lambda: C.holds(True, "")):
        with pytest.raises(ValueError):
            bad()


# ---------------------------------------------------------------- composites


R_, P_, N_, I_, F_, T_ = (C.holds(True, "a"), None, C.holds(False, "b"),
                          C.at_least(est(0.0, -1.0, 1.0)), C.counterexample(True, "c"),
                          C.not_testable("d"))
P_ = C.all_of(R_, N_)  # a partly


@pytest.mark.parametrize(("parts", "label"), [
    ((R_, R_), "reproduced"),
    ((R_, N_), "partly"),
    ((R_, I_), "partly"),
    ((R_, T_), "partly"),
    ((P_, R_), "partly"),
    ((N_, N_), "not reproduced"),
    ((N_, I_), "inconclusive"),
    ((T_, T_), "not testable"),
    ((N_, T_), "not reproduced"),
    ((R_, F_), "refuted"),   # a counterexample to one part refutes the conjunction
    ((R_,), "reproduced"),
])
def test_all_of(parts, label):
    s = C.all_of(*parts)
    assert s.label == label and s.parts == parts and s.rule == "all_of"


@pytest.mark.parametrize(("parts", "label"), [
    ((R_, N_), "reproduced"),
    ((F_, R_), "reproduced"),
    ((P_, N_), "partly"),
    ((F_, F_), "refuted"),
    ((F_, N_), "not reproduced"),
    ((F_, T_), "inconclusive"),
    ((N_, I_), "inconclusive"),
    ((N_, N_), "not reproduced"),
    ((T_, T_), "not testable"),
])
def test_any_of(parts, label):
    assert C.any_of(*parts).label == label


def test_composites_take_a_list_and_reject_strings_and_empty():
    assert C.all_of([R_, R_]).label == "reproduced"
    with pytest.raises(TypeError, match="Status"):
        C.all_of(R_, "reproduced")
    with pytest.raises(ValueError, match="at least one"):
        C.any_of()


def test_graded_strict_then_weak():
    gain = est(12.0, 8.0, 16.0)
    assert C.graded(C.at_least(gain, 5), C.at_least(gain, 0)).label == "reproduced"
    s = C.graded(C.at_least(gain, 20), C.at_least(gain, 0))
    assert s.label == "partly" and s.estimate is gain
    assert C.graded(C.at_least(gain, 20), C.at_least(gain, 10)).label == "inconclusive"
    assert C.graded(C.at_least(gain, 30), C.at_least(gain, 20)).label == "not reproduced"


# ---------------------------------------------------------------- Claim and records


def test_claim_refuses_a_typed_status():
    with pytest.raises(TypeError, match="not be typed"):
        C.Claim("A beats B", "A > B", "reproduced")


def test_claim_record_carries_interval_points_seeds_rule_profile_section(tmp_path, monkeypatch):
    e = Estimate(0.031, 0.012, 0.05, 0.95, 500, 3, "two-stage bootstrap")
    c = C.Claim("Fig 10: HR beats none", "HR > none", C.at_least(e, 0.0), section="fig-10",
                note="AUC difference")
    assert c.status == "reproduced" and c.estimate is e
    r = c.record("full")
    assert (r["estimate"], r["low"], r["high"], r["n_points"], r["n_seeds"]) == (
        0.031, 0.012, 0.05, 500, 3)
    assert (r["rule"], r["tolerance"], r["profile"], r["section"]) == (
        "at_least", "threshold 0", "full", "fig-10")
    assert r["interval"] == "[0.0120, 0.0500]" and r["ours"] == "0.0310"
    # old Verdict keys are kept, so the scorecard can read either record
    assert set(report.Verdict("x", 1, 2, "reproduced").__dict__) <= set(r)
    monkeypatch.setenv("ANALYSIS_RECORDS", str(tmp_path))
    inf = C.Claim("one point", "-", C.at_least(Estimate(1.0, -math.inf, math.inf, 0.95, 1)))
    nt = C.Claim("needs CIFAR", "-", C.not_testable("no CIFAR-10 offline"))
    df = C.save_claims("09_demo", "Demo", [c, inf, nt], "smoke")
    saved = json.loads((tmp_path / "09_demo.verdicts.json").read_text())
    assert [i["status"] for i in saved["items"]] == ["reproduced", "inconclusive",
                                                     "not testable"]
    assert saved["items"][1]["low"] is None and saved["items"][1]["interval"] == "[-inf, inf]"
    assert saved["items"][2]["estimate"] is None
    assert list(df["status"]) == ["reproduced", "inconclusive", "not testable"]
    assert report.load_records("verdicts", tmp_path)[0]["chapter"] == "09_demo"


# ---------------------------------------------------------------- checker


MYST_BAD = '''---
jupytext:
  text_representation:
    format_name: myst
---
# Title

Prose that says reproduced is fine.

```{code-cell} ipython3
:tags: [hide-input]
%matplotlib inline
ok = gain > 0
verdicts = [report.Verdict("A beats B", 1, gain, "reproduced" if ok else "Not Reproduced")]
```

```{code-cell} ipython3
s = claims.REFUTED
t = Status("partly", "typed", "x")
note = f"within a factor 2 = reproduced"
```
'''

MYST_GOOD = '''# Title

```{code-cell} ipython3
---
tags: [hide-input]
---
gain = stats.bootstrap_diff_ci(a, b)
c = claims.Claim("A beats B", "A > B", claims.at_least(gain, 0.0), section="s1",
                 note="reproduced needs the whole interval above 0")
```
'''


def test_checker_flags_typed_statuses_and_verdicts():
    hits = C.find_typed_statuses(MYST_BAD)
    text = "\n".join(hits)
    assert len(hits) == 6, text
    assert text.count("Verdict(...)") == 1
    assert "'reproduced'" in text and "'Not Reproduced'" in text and "'partly'" in text
    assert "REFUTED used by name" in text and "Status(...) built by hand" in text
    assert "within a factor" not in text  # prose inside a longer string is not a status
    assert hits[0] == "line 14: Verdict(...) built without a rule"  # the source's line


def test_checker_passes_a_clean_notebook_and_reads_ipynb_and_python():
    assert C.find_typed_statuses(MYST_GOOD) == []
    nb = {"cells": [{"cell_type": "markdown", "source": "reproduced"},
                    {"cell_type": "code", "source": ["x = 'refuted'\n", "y = 1\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert C.find_typed_statuses(json.dumps(nb)) == [
        "cell 2, line 1: status string literal 'refuted'"]
    assert C.find_typed_statuses("v = Verdict('c', 1, 2, status)\n") == [
        "line 1: Verdict(...) built without a rule"]
    assert C.find_typed_statuses("x = 'not testable'") != []


def test_checker_reports_a_cell_it_cannot_parse():
    src = "```{code-cell} ipython3\nx = (\n```\n"
    assert "does not parse" in C.find_typed_statuses(src)[0]


def test_at_least_tested_needs_the_test_for_reproduced():
    above, straddle, below = est(1.0, 1.0, 1.0), est(0.5, -0.2, 0.9), est(-1.0, -1.0, -1.0)
    assert C.at_least_tested(above, 0.0, 1 / 120).label == C.REPRODUCED
    weak = C.at_least_tested(above, 0.0, 1 / 24, test="permutation test")
    assert weak.label == C.INCONCLUSIVE and "permutation test gives p = 0.0417" in weak.reason
    assert weak.rule == "at_least_tested" and weak.estimate is above
    assert C.at_least_tested(straddle, 0.0, 0.001).label == C.INCONCLUSIVE
    # the test cannot rescue an interval below the threshold, nor block "not reproduced"
    assert C.at_least_tested(below, 0.0, 1 / 24).label == C.NOT_REPRODUCED
    assert C.at_least_tested(below, 0.0, 0.001).label == C.NOT_REPRODUCED
    with pytest.raises(ValueError):
        C.at_least_tested(above, 0.0, float("nan"))
