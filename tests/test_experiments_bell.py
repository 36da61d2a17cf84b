"""analysis.experiments.bell (chapter 04) at tiny sizes. The notebook's shape (thin cells, glued
figures, no typed status) is checked for every chapter by tests/test_notebook_shape.py."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from analysis import claims, stats
from analysis.experiments import bell

NB = Path(__file__).resolve().parents[1] / "notebooks" / "04_persistence_pathkernel.md"


def test_log_persistence_keeps_order_with_inf_and_zero():
    s = np.array([0.0, 1e-3, 0.5, 2.0, math.inf])
    lp = bell.log_persistence(s)
    assert np.all(np.diff(lp) > 0) and lp[-1] == bell.LOG_CAP and lp[0] == -bell.LOG_CAP
    assert lp[2] == pytest.approx(math.log10(0.5))


def test_median_log_ratio_and_less_persistent_claim():
    rng = np.random.default_rng(0)
    nat = rng.uniform(0.5, 1.5, 60)
    adv = nat / 10
    e = bell.median_log_ratio(adv, nat)
    assert e.low <= -1 + 0.2 and e.high < math.log10(0.5)
    sets = bell.PersistenceSets(nat, adv, 60, 60)
    assert bell.less_persistent_claim("c", sets, "s").status == claims.REPRODUCED
    same = bell.PersistenceSets(nat, rng.permutation(nat), 60, 60)
    assert bell.less_persistent_claim("c", same, "s").status != claims.REPRODUCED
    none = bell.PersistenceSets(nat, np.array([]), 0, 60)
    assert bell.less_persistent_claim("c", none, "s").status == claims.NOT_TESTABLE


def _freq(half_adv, hit, half_nat=1.0):
    import torch

    return bell.FrequencyResult(np.ones(3), torch.zeros(3, 2), torch.zeros(len(hit), 3, 2), 1,
                                list(range(len(hit))), np.array(hit), half_nat,
                                np.array(half_adv), torch.zeros(1), torch.zeros(1))


def test_fade_claim_zero_hits_is_not_testable_not_reproduced():
    # the old verdict counted 0 == 0 hits as "reproduced"
    assert bell.fade_claim(_freq([math.nan] * 3, [False] * 3), "s").status == claims.NOT_TESTABLE
    assert bell.fade_claim(_freq([0.1] * 9, [True] * 9), "s").status == claims.REPRODUCED
    weak = bell.fade_claim(_freq([0.8] * 9, [True] * 9), "s")
    assert weak.status == claims.PARTLY  # faster, but not by a factor 2


def test_table1_claims_paired_over_seeds():
    def run(seed, ratio):
        nat = np.linspace(0.5, 1.5, 8)
        return bell.Table1Run("FC10-4", seed, 90.0, np.full(8, 0.1), nat, nat * ratio,
                              np.ones(8, bool))

    runs = {"FC10-4": [run(0, 3.0), run(1, 2.5), run(2, 4.0)],
            "C-2": [bell.Table1Run("C-2", s, 95.0, np.full(8, 0.1), np.ones(8), np.full(8, 0.05),
                                   np.ones(8, bool)) for s in range(3)]}
    out = {c.text.split(":")[0]: c for c in bell.table1_claims(runs, "s")}
    fc = out["Table 1, FC10-4"]
    assert fc.status == claims.REPRODUCED and fc.estimate.n_seeds == 3
    assert out["Table 1, C-2"].status == claims.REPRODUCED
    frame = bell.table1_frame(runs)
    assert list(frame["seeds"]) == [3, 3] and all(len(c) <= 18 for c in frame.columns)


def test_fig21_and_fig17_misses_are_never_refuted():
    import torch

    fade = bell.FadeProfiles(np.ones(2), {}, {}, {}, {"n/a": np.array([True, True, False])})
    assert bell.fig17_claim(fade, "s").status != claims.REFUTED
    toy = bell.ToyKernel(None, None, None, None, {}, None, None,
                         type("K", (), {"contributions": torch.tensor(
                             [[[1.0]], [[1.0]], [[5.0]], [[5.0]]])})())
    assert bell.fig21_claim(toy, "s").status == claims.NOT_REPRODUCED


def test_concentration_laws_match_samples():
    conc = bell.concentration({50: 4000}, 7.0, 0)
    assert conc.ks_gaussian[50] > 1e-4 and conc.ks_ball[50] > 1e-4
    assert conc.gaussian[50].std() == pytest.approx(conc.std_gaussian_law[50], rel=0.1)
    assert conc.ball[50].std() == pytest.approx(conc.std_ball_law[50], rel=0.1)


def test_wedge_fig8_tiny(monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", "off")
    w = bell.wedge_fig8(0.7, 0.01, 200, 0.3, 0, ks=(3, 10))
    for m, c, t in zip(w.mc, w.closed, w.tolerance):
        assert abs(m - c) <= t
    assert w.small_dim == 10 and w.closed[0] > w.closed[1]


def test_orthant_probe_tiny():
    orth = bell.orthant_probe(20, 3, 600, 0)
    assert orth.dropped == {1: 1, 2: 2, 3: 3}
    assert orth.optimality < 1e-9 and orth.wedge_gap < 1e-8


def _wedge(closed, mc, mc_small):
    return bell.WedgeResult([1, 2, 3][:len(closed)], closed, mc, mc_small, [0.05] * len(closed),
                            [1000] * len(closed), 10)


def test_wedge_claims_decide_on_order_and_dimension():
    good = {c.text[:6]: c for c in bell.wedge_claims(_wedge([1.907, 1.02, 0.82], [1.9, 1.0, 0.8],
                                                            [1.92, 1.03, 0.81]), "s")}
    assert good["§4: at"].status == claims.REPRODUCED
    assert good["Fig 8:"].status == claims.REPRODUCED
    # Monte Carlo in the two dimensions 3 tolerances apart: the dimension part fails
    off = bell.wedge_claims(_wedge([1.907, 1.02, 0.82], [1.9, 1.0, 0.8], [1.9, 1.15, 0.8]), "s")
    assert off[1].status != claims.REPRODUCED
    assert bell.wedge_claims(_wedge([1.5, 1.02], [1.5, 1.0], [1.5, 1.0]), "s")[0].status \
        == claims.NOT_REPRODUCED
    frame = bell.wedge_frame(_wedge([1.907, 1.02], [1.9, 1.0], [1.92, 1.03]))
    assert list(frame["tol %"].round(3)) == [pytest.approx(100 * 0.05 / 1.907, abs=1e-3),
                                             pytest.approx(100 * 0.05 / 1.02, abs=1e-3)]


def test_segment_ends_skip_misses_and_missing_attacks():
    import torch

    x_adv = torch.arange(4.0).reshape(4, 1)  # 2 sources × targets (5, 8), source-major
    res = bell.FashionResult({}, torch.tensor([0, 1]), {}, {"vgg_mini": {
        "bim": {"x_adv": x_adv, "hit": np.array([True, False, True, True])}}})
    classes = [str(c) for c in range(10)]
    ends = bell.segment_ends(res, "vgg_mini", classes, [5, 8])
    assert list(ends.values())[0].item() == 0.0 and list(ends.values())[1] is None  # pgd not run
    res.attacks["vgg_mini"]["pgd"] = {"x_adv": x_adv, "hit": np.array([True, False, True, True])}
    ends = bell.segment_ends(res, "vgg_mini", classes, [5, 8])
    assert list(ends.values())[1] is None  # pgd missed target 8 from the first source
    assert bell.segment_ends(res, "vgg_mini", classes, [8])["VGG-mini, BIM Sneaker → 5"] is None


def test_fig19_claim_on_the_laws():
    conc = bell.concentration({784: 500}, 7.0, 0)
    assert bell.fig19_claim(conc, "s").status == claims.REPRODUCED
    conc.std_ball_law[784] = 2 * conc.std_gaussian_law[784]
    assert bell.fig19_claim(conc, "s").status == claims.NOT_REPRODUCED


def test_part3_claims():
    import types

    probes = {"p": types.SimpleNamespace(spectra={"normals": np.array([2.0, 1.0])})}
    ok = bell.OrthantProbe({}, {1: 1, 2: 2}, 0.0, 0.0)
    out = bell.part3_claims(ok, probes, "s")
    assert [c.status for c in out] == [claims.REPRODUCED, claims.NOT_TESTABLE, claims.NOT_TESTABLE]
    assert "0.5" in out[1].record("smoke")["note"]
    bad = bell.OrthantProbe({}, {1: 1, 2: 1}, 0.0, 0.0)
    assert bell.part3_claims(bad, probes, "s")[0].status == claims.NOT_REPRODUCED


def test_table1_runs_seeds_per_family(monkeypatch):
    calls = []

    def fake(name, ds, epochs, seed, *rest):
        calls.append((name, epochs, seed))
        nat = np.linspace(0.5, 1.5, 6) + seed
        return name, bell.Table1Run(name, seed, 90.0, np.full(6, 0.1), nat, nat / 4,
                                    np.ones(6, bool))

    monkeypatch.setattr(bell, "table1_run", fake)
    nets, runs = bell.table1_runs(["FC10-4", "C-2"], None, 21, 5, 3, 2, 10, 6, 50, 0.7, 0.01, 2,
                                  "cpu")
    assert calls == [("FC10-4", 21, 10), ("FC10-4", 21, 11), ("FC10-4", 21, 12),
                     ("C-2", 5, 10), ("C-2", 5, 11)]
    seeds = {c.text.split(":")[0]: c.estimate.n_seeds for c in bell.table1_claims(runs, "s")}
    assert seeds == {"Table 1, FC10-4": 3, "Table 1, C-2": 2}
    assert list(bell.table1_frame(runs)["seeds"]) == [3, 2]


def test_verdict_table_shows_whole_claims(capsys):
    c = claims.Claim("x" * 120, 1.0, claims.at_least(stats.exact(2.0), 1.0), "s")
    table = claims.claims_table([c], "smoke")
    frame = bell.verdict_frame(table, [c])
    assert "note" not in frame.columns and frame["rule"][0].startswith("at_least (")
    bell.display_whole(frame)
    assert "x" * 120 in capsys.readouterr().out


def test_every_claim_section_is_a_label_of_the_notebook():
    labels = set(re.findall(r"^\((sec-04-[a-z0-9-]+)\)=$", NB.read_text(), re.M))
    assert set(bell.SECTIONS.values()) <= labels, set(bell.SECTIONS.values()) - labels


def test_verdicts_call_every_builder_in_section_order(monkeypatch):
    """Each builder gets its own result and its section's label; the claims come back in the
    order of the chapter's sections (so the verdict table and the records keep that order)."""
    import types

    calls = []

    def fake(name, many):
        def builder(*args):
            calls.append((name, args))
            return [f"{name} claim"] if many else f"{name} claim"
        return builder

    for name, many in [("wedge_claims", True), ("fade_claim", False),
                       ("less_persistent_claim", False), ("table1_claims", True),
                       ("table2_claims", True), ("fig17_claim", False), ("segment_claim", False),
                       ("fig19_claim", False), ("fig21_claim", False), ("kernel_claims", True),
                       ("fig24_claim", False), ("part3_claims", True)]:
        monkeypatch.setattr(bell, name, fake(name, many))
    results = {k: object() for k in ("wedge", "frequencies", "fig10_sets", "table1", "table2",
                                     "fade", "segment_result", "norms", "toy", "mnist_dpk",
                                     "line", "orthant", "probes")}
    cfg = types.SimpleNamespace(fashion_targets=[5, 8], fig24_net="C-2")
    out = bell.verdicts(cfg, **results)
    names = [n for n, _ in calls]
    assert out == [f"{n} claim" for n in names]
    assert names == ["wedge_claims", "fade_claim", "less_persistent_claim", "table1_claims",
                     "table2_claims", "fig17_claim", "segment_claim", "fig19_claim",
                     "fig21_claim", "kernel_claims", "fig24_claim", "part3_claims"]
    args = dict(calls)
    assert args["wedge_claims"] == (results["wedge"], "sec-04-wedge")
    assert args["less_persistent_claim"][1:] == (results["fig10_sets"], "sec-04-fig10")
    assert args["table2_claims"] == (results["table2"], [5, 8], "sec-04-fashion")
    assert args["kernel_claims"] == (results["toy"], results["mnist_dpk"], "sec-04-mnist-dpk")
    assert args["fig24_claim"] == (results["line"], "C-2", "sec-04-fig24")
    assert args["part3_claims"] == (results["orthant"], results["probes"], "sec-04-boundary")
    assert [a[-1] for _, a in calls] == [bell.SECTIONS[k] for k in (
        "wedge", "fig9", "fig10", "table1", "table2", "fig17", "segments", "fig19", "toy",
        "kernel", "fig24", "part3")]


def test_error_text_hides_round_off_only():
    assert bell.error_text(3e-13) == "< 1e-10"
    assert bell.error_text(2.5e-3) == "0.00250"
    assert bell.error_text(1e-10) != "< 1e-10"


def _machine(output, network, max_error, contributions=None):
    import types

    return types.SimpleNamespace(output=output, network=network, max_error=max_error,
                                 contributions=contributions)


def test_toy_report_agreement_and_errors():
    import types

    import torch

    net = torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    wrong_half = torch.tensor([[2.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    contributions = torch.tensor([[[1.0, -2.0]], [[0.5, 0.5]], [[0.0, 0.1]], [[-3.0, 0.0]]])
    toy = types.SimpleNamespace(
        run=types.SimpleNamespace(losses=[0.9, 0.25]),
        grid={"exact": _machine(net, net, 1e-13), "uniform": _machine(wrong_half, net, 0.02)},
        probe_fixed=_machine(None, None, 4e-7), probe_adaptive=_machine(
            None, None, 1e-14, contributions))
    lines = bell.toy_report(toy)
    assert lines[0] == "toy: final training loss 0.250"
    assert lines[1] == "exact    prediction agreement 1.00  max |kernel − network| < 1e-10"
    assert lines[2] == "uniform  prediction agreement 0.500  max |kernel − network| 0.0200"
    assert lines[3] == "probes, 48 fixed nodes: max error 4.00e-07"
    assert lines[4].endswith("['3.00', '1.00', '0.100', '3.00']")


def test_mnist_kernel_report_lines(monkeypatch):
    import types

    import torch

    Xq = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    run = types.SimpleNamespace(steps=7, losses=[2.3, 0.5],
                                output=lambda x: torch.stack([x[:, 0], x[:, 1]], 1))
    mk = types.SimpleNamespace(
        Y=torch.arange(5), Xq=Xq, Yq=torch.tensor([0, 1, 0, 1]), run=run,
        summed={"exact": _machine(None, None, 2e-14), "start": _machine(None, None, 0.031)},
        kernel_nearest=torch.tensor([0, 1, 2, 3]), pixel_nearest=torch.tensor([0, 4, 2, 4]))
    monkeypatch.setattr(bell.pk, "parameter_norms", lambda r: [1.0, 1.1, 1.25])
    lines = bell.mnist_kernel_report(mk)
    # argmax of (x0, x1): 0, 1, 0 (tie), 0 (tie) against labels 0, 1, 0, 1 -> 3 of 4
    assert lines[0] == "MNIST DPK: M = 5  steps = 7  final loss 0.500  test acc 0.750"
    assert lines[1:3] == ["exact    max |kernel − network|: < 1e-10",
                          "start    max |kernel − network|: 0.0310"]
    assert lines[3] == "kernel-nearest = pixel-nearest: 0.500 | ‖w_N‖/‖w_0‖ along GD: 1.25"


def test_throughputs_time_the_mlp_and_the_first_cnn(monkeypatch):
    timed = []
    monkeypatch.setattr(bell, "throughput", lambda name, model, x: timed.append((name, model)))
    bell.throughputs("mlp", {"FC10-4": "fc", "C-2": "c2", "C-4": "c4"}, None)
    assert timed == [("MLP-100-20", "mlp"), ("C-2", "c2")]
    timed.clear()
    bell.throughputs("mlp", {"FC10-4": "fc"}, None)
    assert timed == [("MLP-100-20", "mlp")]
