"""Chapter 05's experiment functions at tiny sizes, and the chapter notebook's conventions."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import claims, stats
from analysis.experiments import hessian as xh
from analysis.models.swish import SwishCNN, SwishMLP
from analysis.regularizers import crossholder as ch

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_hessian_crossholder.md"
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


@pytest.fixture(autouse=True)
def _setup(monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", "off")
    monkeypatch.setenv("ANALYSIS_PROGRESS", "0")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cells() -> list[tuple[dict[str, str], list[str]]]:
    """(options text, code lines) of every code cell of the MyST notebook."""
    out = []
    for body in _CELL.findall(NOTEBOOK.read_text()):
        lines = body.splitlines()
        opts = []
        if lines and lines[0].strip() == "---":
            end = lines.index("---", 1)
            opts, lines = lines[1:end], lines[end + 1:]
        else:
            while lines and lines[0].startswith(":"):
                opts.append(lines.pop(0))
        out.append(("\n".join(opts), lines))
    return out


# ------------------------------------------------------------------- the notebook itself


def test_notebook_types_no_status() -> None:
    assert claims.find_typed_statuses(NOTEBOOK.read_text()) == []


def test_notebook_is_thin_and_follows_the_book_conventions() -> None:
    cells = _cells()
    code = [[ln for ln in lines if ln.strip()] for _, lines in cells]
    assert sum(len(c) for c in code) <= 200, sum(len(c) for c in code)
    assert max(len(c) for c in code) <= 25, [len(c) for c in code]
    params = [o for o, _ in cells if "parameters" in o]
    assert len(params) == 1 and "hide-input" not in params[0]
    for opts, lines in cells:
        if "parameters" in opts:
            continue
        assert "hide-input" in opts, lines[:2]
        if any("plots.plot_" in ln for ln in lines):  # a figure cell: one figure, named, captioned
            assert re.search(r"name: fig-05-[\w-]+", opts), lines[:2]
            assert "caption:" in opts, lines[:2]
            assert sum("plots.plot_" in ln for ln in lines) == 1
            # assigned, not the cell's value: the inline backend shows an open figure once at
            # the end of the cell, and a returned figure would be shown a second time
            assert any(ln.startswith("fig = ") and "plots.plot_" in ln for ln in lines)
            assert [ln for ln in lines if ln.strip()][-1].strip() != "fig"
    labels = set(re.findall(r"^\((sec-05-[\w-]+)\)=$", NOTEBOOK.read_text(), re.M))
    sections = set(re.findall(r'section="(sec-05-[\w-]+)"', NOTEBOOK.read_text()))
    assert sections and sections <= labels, sections - labels


# -------------------------------------------------------------------- robustness claims


def _curves(alive: list[list[int]], eps=(2.0, 4.0, 6.0)) -> ch.RobustCurves:
    a = np.asarray(alive, dtype=bool)
    acc = a.mean(axis=1)
    return ch.RobustCurves(eps=np.asarray(eps), ce=acc, cw=acc, min_of_two=acc, per_example=acc,
                           alive_ce=a, alive_cw=a.copy(), clean=1.0)


def test_sum_difference_is_paired_and_beyond_4_excludes_4() -> None:
    # model A survives ε = 4 on every point, B on none; both die at 6 and survive 2
    a = _curves([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    b = _curves([[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    curves = {("mnist", "A", 0): a, ("mnist", "B", 0): b,
              ("mnist", "A", 1): a, ("mnist", "B", 1): b}
    beyond = xh.sum_difference(curves, "mnist", "A", "B", above=4.0)
    assert beyond.value == 0.0  # ε > 4 is only ε = 6: no difference there
    from4 = xh.sum_difference(curves, "mnist", "A", "B", above=3.9)
    assert from4.value == pytest.approx(1.0) and from4.n_seeds == 2 and from4.n_points == 4
    up_to = xh.sum_difference(curves, "mnist", "B", "A", up_to=4.0)
    assert up_to.value == pytest.approx(-1.0)
    assert claims.at_least(from4).label == claims.REPRODUCED
    with pytest.raises(ValueError, match="no radius"):
        xh.sum_difference(curves, "mnist", "A", "B", above=7.0)


def test_sum_difference_interval_reflects_point_noise() -> None:
    # a strict '>' on the sums would call A better; the paired interval sees one point in 50
    rng = np.random.default_rng(0)
    base = rng.random((1, 50)) < 0.5
    better = base.copy()
    better[0, 0] = True
    base[0, 0] = False
    curves = {("d", "A", 0): _curves(better.astype(int).tolist(), eps=(5.0,)),
              ("d", "B", 0): _curves(base.astype(int).tolist(), eps=(5.0,))}
    e = xh.sum_difference(curves, "d", "A", "B", above=4.0)
    assert e.value == pytest.approx(1 / 50)
    assert claims.at_least(e).label == claims.INCONCLUSIVE


def test_accuracy_at_and_table() -> None:
    c = _curves([[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]])
    curves = {("mnist", "CH", 0): c, ("mnist", "CH", 1): c}
    e = xh.accuracy_at(curves, "mnist", "CH", 4.0)
    assert e.value == pytest.approx(0.5) and e.n_seeds == 2
    t = xh.accuracy_table(curves)
    assert list(t.columns[:4]) == ["data", "model", "seeds", "clean"]
    assert t.loc[0, "ε=4"] == pytest.approx(0.5) and t.loc[0, "seeds"] == 2


# ------------------------------------------------------------------------- norm claims


def _est(hv: np.ndarray, g: np.ndarray) -> dict[str, torch.Tensor]:
    t = torch.as_tensor
    return {"hv_star": t(hv), "grad_norm": t(g), "hg": t(hv) * 0.5, "ascent": t(hv) * 0.1,
            "ascent_px": t(hv) * 0.9, "power_short": t(hv), "random": t(hv) * 0.05}


def test_log_ratio_and_norm_table() -> None:
    hv = np.linspace(1.0, 2.0, 20)
    est = {("mnist", "plain", 0): _est(hv, hv), ("mnist", "CH", 0): _est(hv / 4, hv)}
    e = xh.log_ratio(est, "mnist", "CH", "plain", "hv_star")
    assert e.value == pytest.approx(math.log(0.25)) and e.n_points == 20
    assert claims.at_most(e).label == claims.REPRODUCED
    chd = xh.ChapterData({}, {"mnist": {"std": 0.5}}, {})
    t = xh.norm_table(est, chd)
    assert t.loc[0, "median ‖H‖ px"] == pytest.approx(t.loc[0, "median ‖H‖"] / 0.25)
    tab = xh.estimator_table(est, 0)
    assert tab["ascent"].tolist() == pytest.approx([0.1, 0.1])
    assert xh.recovered(est, "mnist", "CH", 0, "ascent_px").value == pytest.approx(0.9)


def test_fig3_statistics() -> None:
    rng = np.random.default_rng(1)
    hv = rng.lognormal(size=400) + 1.0
    hg = 0.6 * hv
    f = xh.fig3({"hv_star": torch.as_tensor(hv), "hg": torch.as_tensor(hg)}, sigma=0.5)
    assert f.below == 1.0
    assert f.ratio.value == pytest.approx(0.6) and f.ratio.low <= 0.6 <= f.ratio.high
    assert f.mode_px.value == pytest.approx(f.mode.value / 0.25)
    assert f.tail_diff.value == pytest.approx(0.0, abs=1e-12)  # same shape, scaled


# ---------------------------------------------------------------------- training pieces


def test_defence_gives_fresh_regularisers() -> None:
    cfg = {"ch_classes": 1, "ch_iters": 3, "ch_warm_iters": 1, "at_steps": 2}
    a = xh.defence("mnist", "CH", cfg, (-1.0, 3.0))["objective"]
    b = xh.defence("mnist", "CH", cfg, (-1.0, 3.0))["objective"]
    assert a is not b and a.reg is not b.reg and a.reg.warm_start
    assert a.params == b.params  # the same cache key
    assert xh.defence("mnist", "plain", cfg, (0.0, 1.0)) == {}
    with pytest.raises(ValueError):
        xh.defence("mnist", "TRADES", cfg, (0.0, 1.0))
    assert xh.seeds_of({"seed": 3, "n_seeds": 3}) == [3, 4, 5]


def test_step_times_and_warm_quality_at_tiny_size() -> None:
    torch.manual_seed(0)
    model = SwishCNN(width=0.125, fc=8)
    x, y = 4 * torch.rand(8, 1, 28, 28) - 1, torch.randint(0, 10, (8,))  # inside the box
    t = xh.step_times(model, x[:2], y[:2], lam=(0.02, 0.5), lam_cl=0.2, at_eps=1.0,
                      at_steps=1, box=(-1.0, 3.0), iters=2, warm_iters=1, repeats=2,
                      literal_batch=1, seed=0)
    assert set(t.times["width"]) == {"quarter", "document"}
    assert t.ch_ratio.n_points == 2 and t.literal_s > 0
    assert (t.times.loc[t.times["method"] == "plain", "÷ plain"] == 1.0).all()
    q = xh.warm_start_quality(model, x, y, lam=(0.02, 0.5), iters=2, warm_iters=1, batch=4,
                              seed=0, truth_iters=30)
    assert q.steps_between == 1
    assert q.warm.value <= 1 + 1e-4 and q.cold.value <= 1 + 1e-4 and q.warm.value > 0


def test_certify_is_sound_on_a_tiny_mlp() -> None:
    torch.manual_seed(0)
    net = SwishMLP((1, 28, 28), hidden=6, num_classes=10).double()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    y = net(x).argmax(1)
    c = xh.certify(net, x, y, attack_steps=5, cw_steps=10, seed=0)
    assert c.violations == 0 and bool(c.ok.any())
    assert bool(((c.cert_global - c.closed_form).abs() <= c.tol).all())
    t = xh.certificate_table({"plain": c})
    assert t.loc[0, "violations"] == 0 and t.loc[0, "max c/a"] <= 1.0


def test_verdict_table_hides_timed_claims() -> None:
    e = stats.exact(1.5, 10)
    cl = [claims.Claim("timed claim", 1, claims.within_orders(e, 1.0, 0.3)),
          claims.Claim("other", 0, claims.at_least(stats.bootstrap_ci(np.arange(10.0))))]
    t = xh.verdict_table(cl, "smoke", timed=("timed claim",))
    assert t.loc[0, "ours"] == "(timing)" and t.loc[0, "status"] == "(timing)"
    assert t.loc[1, "status"] == claims.REPRODUCED and "threshold 0" in t.loc[1, "rule"]
    both = claims.Claim("composite", 0, claims.all_of(claims.at_least(e, 1.0),
                                                      claims.at_least(e, 2.0)))
    row = xh.verdict_table([both], "smoke").loc[0]
    assert row["ours"] == "1.50; 1.50" and row["points"] == 10 and row["status"] == claims.PARTLY
    assert len(xh.errata()) == 16


def test_profiles_seeds_and_paper_sizes() -> None:
    from analysis import config

    smoke, full, paper = (config.resolve("05_hessian_crossholder", p)
                          for p in ("smoke", "full", "paper"))
    assert smoke.n_seeds == 1 and full.n_seeds >= 3
    assert (paper.data_source, paper.mnist_n_train, paper.fmnist_n_train) == ("torchvision",
                                                                              60000, 60000)
    assert (paper.width, paper.fc, paper.ch_classes) == (1.0, 200, 9)
    assert (paper.pgd_steps, paper.pgd_restarts, paper.n_test) == (50, 10, 10000)
