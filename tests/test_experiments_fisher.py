"""Chapter 02's experiment functions at tiny size (the notebook's shape is checked for every
chapter by ``tests/test_notebook_shape.py``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import claims, config, report
from analysis.experiments import fisher as ex

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_fisher_jacobian.md"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import os

    old = os.environ.get("ANALYSIS_CACHE")
    os.environ["ANALYSIS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    cfg = config.resolve("02_fisher_jacobian", "smoke", n_train=64, n_val=16, n_test=24,
                         epochs=2, n_attack=8, n_minnorm=3, pgd_steps=2, l2_steps=2,
                         eps_l2=[1.0, 2.0], hoffman_lams=[0.05], toy_n=60, toy_steps=5,
                         toy_test=6, toy_rays=8, toy_loc_grid=[4, 2], n_seeds=2,
                         cost_batches=1, cost_repeats=2, batch_size=32,
                         minnorm_attacks=["deepfool"])
    chapter_data = ex.load_data(cfg)
    runs = ex.train_models(cfg, chapter_data.mnist, torch.device("cpu"))
    match = ex.match_hoffman(runs, chapter_data.x_val, chapter_data.y_val)
    evaluation = ex.evaluate_all(cfg, runs, chapter_data.mnist)
    yield {"cfg": cfg, "data": chapter_data, "runs": runs, "match": match, "ev": evaluation}
    if old is None:
        os.environ.pop("ANALYSIS_CACHE", None)
    else:
        os.environ["ANALYSIS_CACHE"] = old


def test_validation_split_is_disjoint_from_training(tiny):
    d = tiny["data"]
    train_rows = {r.flatten().numpy().tobytes() for r in d.mnist.x_train}
    assert not any(r.flatten().numpy().tobytes() in train_rows for r in d.x_val)
    assert len(d.y_val) == tiny["cfg"].n_val


def test_geometry_counts_no_violation_and_matches_closed_forms(tiny):
    g = ex.simplex_geometry(tiny["cfg"], tiny["data"].blobs, n_random=500)
    assert g.violations == 0 and g.gap_min >= -1e-12
    assert g.delta_max10 == pytest.approx(2 * np.arccos(10 ** -0.5))
    # θ = (0.6, 0.2, 0.2): d(θ, B) = 2 arcsin((√0.6 − √0.2)/√2) < δ = 2 arccos(Σ √(θ/3))
    assert g.seg_d_B == pytest.approx(2 * np.arcsin((0.6 ** 0.5 - 0.2 ** 0.5) / 2 ** 0.5))
    assert g.seg_delta > g.seg_d_B


def test_toy_radii_and_table(tiny):
    cfg, moons = tiny["cfg"], tiny["data"].moons
    toy = ex.toy_models(cfg, moons)
    assert set(toy.runs) == {"vanilla", toy.reg_name, toy.inv_name}
    rad = {k: ex.toy_radii(cfg, moons, m) for k, m in toy.models.items()}
    for r in rad.values():
        assert bool((r["r_glob"] <= r["r_margin"] * (1 + 1e-12)).all())
    table = ex.toy_table(rad)
    assert list(table["model"]) == list(rad) and all(len(c) <= 18 for c in table.columns)
    curves = ex.toy_robust_curves(rad, [0.0, 10.0])
    for name, (at0, at10) in curves.items():
        assert at0 == pytest.approx(rad[name]["acc"]) and at10 == 0.0


def test_seeds_and_hoffman_match(tiny):
    runs, match, cfg = tiny["runs"], tiny["match"], tiny["cfg"]
    assert list(runs.by_seed) == [cfg.seed, cfg.seed + 1]
    assert runs.runs["Hoffman"] is runs.hoffman[match.lam]
    assert match.gap_val == pytest.approx(match.val_acc[match.lam] - match.val_reg)
    # two seeds give two different vanilla models
    w0, w1 = (runs.by_seed[s]["vanilla"].model.state_dict() for s in runs.by_seed)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)


def test_a_diverged_seed_is_reported_and_left_out(tiny, monkeypatch):
    """A run whose loss turns non-finite is a finding: recorded, excluded, never retuned."""
    from analysis import train

    cfg, mnist = tiny["cfg"], tiny["data"].mnist
    real_fit, calls = train.fit, []

    def fit(*args, desc="", **kw):
        calls.append(desc)
        if desc == f"regularised seed {cfg.seed}":
            raise train.TrainingDiverged("cnn_small", 2, 7, float("nan"))
        return real_fit(*args, desc=desc, **kw)

    monkeypatch.setattr(train, "fit", fit)
    runs = ex.train_models(cfg, mnist, torch.device("cpu"))
    assert list(runs.by_seed) == [cfg.seed + 1]  # the diverged seed is out of every verdict
    assert runs.seed == cfg.seed + 1 and runs.n_seeds == 2
    assert runs.runs["vanilla"] is runs.by_seed[cfg.seed + 1]["vanilla"]
    assert [str(d) for d in runs.diverged] == [f"regularised seed {cfg.seed} (epoch 2, batch 7)"]
    assert runs.divergence_note().startswith("1 of 2 training seeds diverged")
    # the grid runs train on the headline seed, with the chapter's settings unchanged
    assert f"hoffman {cfg.hoffman_lams[0]:g}" in calls
    ev = ex.evaluate_all(cfg, runs, mnist)
    assert list(ev["by_seed"]) == [cfg.seed + 1]
    assert ex.table1_evidence(cfg, ev["by_seed"]).gain_pts[0].n_seeds == 1


def test_every_seed_diverged_is_a_clear_error(tiny, monkeypatch):
    from analysis import train

    def fit(*args, desc="", **kw):
        raise train.TrainingDiverged("cnn_small", 1, 1, float("inf"))

    monkeypatch.setattr(train, "fit", fit)
    with pytest.raises(RuntimeError, match="every training seed diverged"):
        ex.train_models(tiny["cfg"], tiny["data"].mnist, torch.device("cpu"))
    assert tiny["runs"].divergence_note() == ""


def test_evaluation_outcomes_are_per_point_and_monotone(tiny):
    cfg, ev = tiny["cfg"], tiny["ev"]
    van = ev["evals"]["vanilla"]
    assert van["linf"].shape == (len(cfg.eps_linf), cfg.n_attack)
    assert bool((van["linf"] <= van["correct"]).all())  # robust implies correct
    assert bool((van["linf"][1:] <= van["linf"][:-1]).all())  # monotone in ε
    assert bool((van["linf_cw"] <= van["linf"]).all())  # the worst case of two attacks
    assert set(ev["by_seed"]) == {cfg.seed, cfg.seed + 1}
    other = ev["by_seed"][cfg.seed + 1]["vanilla"]
    assert "r_adv" not in other and "geo" not in other  # Table 1's attack only
    with pytest.raises(ValueError, match="geometry"):
        ex.evaluate(cfg, tiny["runs"].runs["vanilla"].model, tiny["data"].mnist, full=True,
                    geometry=False)


def test_table1_evidence_is_the_paired_mean_difference(tiny):
    cfg, by_seed = tiny["cfg"], tiny["ev"]["by_seed"]
    evid = ex.table1_evidence(cfg, by_seed)
    for i, gain in enumerate(evid.gain_pts):
        want = np.mean([100 * (p["regularised"]["linf"][i].double()
                               - p["vanilla"]["linf"][i].double()).mean().item()
                        for p in by_seed.values()])
        assert gain.value == pytest.approx(want)
        assert gain.n_seeds == 2 and gain.n_points == cfg.n_attack
        assert gain.low <= gain.value <= gain.high
    assert evid.doc_gain_pts[0] == pytest.approx(100 * (8040 - 4138) / 10_000)
    assert evid.doc_clean_drop_pts == pytest.approx(9.11)
    assert evid.clean_drop_pts.n_points == cfg.n_test


def test_curve_evidence_reads_every_seed(tiny):
    curves = ex.curve_evidence(tiny["cfg"], tiny["runs"])
    assert curves.alpha_rise_decades.n_seeds == 2 and len(curves.min_epoch) == 2
    h = tiny["runs"].by_seed[tiny["cfg"].seed]["regularised"].history
    assert 1 <= curves.min_epoch[0] <= len(h)


def test_tables_have_short_columns(tiny):
    cfg, runs, evals = tiny["cfg"], tiny["runs"], tiny["ev"]["evals"]
    for table in (ex.table1(cfg, runs, evals), ex.l2_table(cfg, runs, evals),
                  ex.certificate_table(evals)):
        assert all(len(str(c)) <= 18 for c in table.columns), list(table.columns)
    pv = ex.table1_paper_vs_ours(cfg, tiny["ev"]["by_seed"])
    assert len(pv) == 2 * (1 + len(cfg.eps_linf))
    pole = ex.pole_class(evals)
    assert set(pole.top_class) == {"vanilla", "regularised"} and len(pole.rows) == 4


def test_cost_probe_gives_an_interval_over_repeats(tiny):
    cfg, runs = tiny["cfg"], tiny["runs"]
    probe = ex.cost_probe(cfg, tiny["data"].mnist, runs, tiny["match"].lam, torch.device("cpu"))
    assert all(v.shape == (cfg.cost_repeats,) for v in probe.seconds.values())
    assert probe.ratio["plain CE"].value == pytest.approx(1.0)
    assert probe.ratio["exact"].n_points == cfg.cost_repeats
    assert len(ex.cost_table(probe)) == len(probe.seconds)


def test_verdict_table_shows_composite_parts():
    from analysis import stats

    e1, e2 = stats.exact(1.0), stats.exact(-1.0)
    c = claims.Claim("demo", "x", claims.all_of(claims.at_least(e1, 0), claims.at_least(e2, 0)))
    row = ex.verdict_table([c], "smoke").iloc[0]
    assert row["ours"] == "1.00 / -1.00" and row["status"] == claims.PARTLY


def test_errata_records():
    from analysis.report import Erratum

    errs = ex.errata()
    assert len(errs) >= 10 and all(isinstance(e, Erratum) for e in errs)


def _fake_eval(linf_rows, correct):
    return {"linf": torch.tensor(linf_rows, dtype=torch.bool),
            "test_correct": torch.tensor(correct, dtype=torch.bool)}


def test_a_one_image_gain_is_not_evidence_of_more_robustness():
    """The old verdict called any positive gain 'partly' (smoke: +1 image of 26); a paired
    interval over the points contains 0, so the rules call it inconclusive."""
    cfg = config.resolve("02_fisher_jacobian", "smoke")
    n = 26
    van = [[True] * 10 + [False] * 16] * 3
    reg = [[True] * 11 + [False] * 15] * 3
    by_seed = {0: {"vanilla": _fake_eval(van, [True] * n),
                   "regularised": _fake_eval(reg, [True] * n)}}
    evid = ex.table1_evidence(cfg, by_seed)
    assert evid.gain_pts[0].value == pytest.approx(100 / 26)
    runs = ex.MnistRuns({}, {})
    assert ex.claims_table1(evid, runs)[0].status == claims.INCONCLUSIVE
    # the same gain on every one of 26 points is evidence, above half the document's gain
    big = {0: {"vanilla": _fake_eval([[False] * n] * 3, [True] * n),
               "regularised": _fake_eval([[True] * n] * 3, [True] * n)}}
    verdicts = ex.claims_table1(ex.table1_evidence(cfg, big), runs)
    assert [v.status for v in verdicts[:3]] == [claims.REPRODUCED, claims.REPRODUCED,
                                                claims.NOT_REPRODUCED]  # 0.3: not "no gain"


def test_row_figures_have_one_panel_per_model(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import fisher as fplots

    cfg, moons = tiny["cfg"], tiny["data"].moons
    toy = ex.toy_models(cfg, moons)
    fig = fplots.plot_regions_row(toy.models, moons.x_train, moons.y_train, moons.x_test,
                                  moons.y_test)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split(":")[0] for t in titles] == list(toy.models)  # one panel per model
    radii = {k: {"r_adv": torch.tensor([1.0, 2.0]), "r_doc": torch.tensor([0.5, 3.0]),
                 "r_margin": torch.tensor([0.1, 0.2]), "r_glob": torch.tensor([0.05, 0.1])}
             for k in ("a", "b")}
    fig2 = fplots.plot_certificates(radii)
    assert len(fig2.axes) == 2 and all(ax.get_xlabel() for ax in fig2.axes)
    plt.close("all")


def test_training_without_per_epoch_evaluation_gives_the_same_weights(tiny):
    """train_models skips the per-epoch accuracies (a cost); the weights must not change."""
    from analysis import train

    cfg, mnist = tiny["cfg"], tiny["data"].mnist
    ref = train.fit("cnn_small", ex.CNN_KW, mnist, ex._train_config(cfg, cfg.seed),
                    device="cpu", cache=False, progress=False, eval_every_epoch=True)
    ours = tiny["runs"].runs["vanilla"]
    assert all(torch.equal(ref.model.state_dict()[k], v) for k, v in
               ours.model.state_dict().items())
    assert ours.history[-1]["test_acc"] == pytest.approx(ref.history[-1]["test_acc"])


# ------------------------------------------------------------------------- verdicts


def test_verdicts_keep_their_order_sections_and_divergence_notes(tiny):
    cfg, runs = tiny["cfg"], tiny["runs"]
    evidence = ex.table1_evidence(cfg, tiny["ev"]["by_seed"])
    curves = ex.curve_evidence(cfg, runs)
    cert = ex.certificate_radii(tiny["ev"]["evals"])
    geometry = ex.simplex_geometry(cfg, tiny["data"].blobs, n_random=200)
    verdicts = ex.verdicts(cfg, runs, evidence, curves, cert, geometry)
    assert [v.section for v in verdicts] == ["sec-02-table1"] * 4 + ["sec-02-fig1"] * 2 + [
        "sec-02-certificates", "sec-02-geometry"]
    assert verdicts[0].estimate is evidence.gain_pts[0]
    assert verdicts[3].estimate is evidence.clean_drop_pts
    assert verdicts[4].estimate is curves.alpha_rise_decades
    assert verdicts[7].status == claims.REPRODUCED  # eq. 6 holds: 0 violations of 200
    labels = set(re.findall(r"^\((sec-02-[a-z0-9-]+)\)=$", NOTEBOOK.read_text(), re.M))
    assert {v.section for v in verdicts} <= labels  # the anchors are labels of the notebook
    # no seed diverged here: the notes say nothing about divergence
    assert not any("diverged" in v.note for v in verdicts)
    lost = ex.MnistRuns(runs.runs, runs.hoffman, runs.by_seed, seed=runs.seed, n_seeds=3,
                        diverged=[ex.Divergence("regularised seed 9", 9, 2, 5)])
    noted = ex.claims_table1(evidence, lost) + ex.claims_fig1(cfg, curves, lost)
    note = "1 of 3 training seeds diverged and are left out: regularised seed 9 (epoch 2, batch 5)"
    assert [note in v.note for v in noted] == [True, True, True, True, False, True]
    assert noted[3].note.startswith("embedded sample, fewer epochs; ")
    assert noted[5].note.startswith(f"lowest loss at epochs {curves.min_epoch} of {cfg.epochs}")


def test_eq14_claim_counts_each_point_where_r_doc_beats_the_attack():
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    two_beaten = {"regularised": {"r_adv": adv, "r_doc": torch.tensor([2.0, 0.5, 3.0, 1.0, .9])}}
    (claim,) = ex.claims_certificates(two_beaten)
    assert claim.status == claims.REFUTED and claim.estimate.value == pytest.approx(2 / 5)
    (safe,) = ex.claims_certificates({"regularised": {"r_adv": adv, "r_doc": adv / 2}})
    assert safe.status == claims.REPRODUCED and safe.estimate.n_points == 5
    empty = torch.zeros(0)
    (untested,) = ex.claims_certificates({"regularised": {"r_adv": empty, "r_doc": empty}})
    assert untested.status == claims.NOT_TESTABLE


def test_cost_claims_judge_the_training_estimator():
    from analysis import stats

    cfg = config.resolve("02_fisher_jacobian", "smoke")
    ratios = {"plain CE": [1.0, 1.0, 1.0], "rp": [3.0, 3.2, 2.9], "exact": [11.0, 12.0, 12.5]}
    probe = ex.CostProbe({k: np.array(v) for k, v in ratios.items()},
                         {k: stats.bootstrap_ci(np.array(v)) for k, v in ratios.items()},
                         stats.bootstrap_ci(np.array([3.8, 4.0, 3.9])),
                         stats.bootstrap_ci(np.array([1.2, 1.3, 1.25])), 2.0)
    slower, svd = ex.claims_cost(cfg, probe)
    assert cfg.estimator == "rp" and slower.estimate is probe.ratio["rp"]
    assert slower.status == claims.NOT_REPRODUCED  # 3× is outside a factor 2 of 12
    assert "exact estimator 11.8×" in slower.note
    assert svd.status == claims.REPRODUCED and svd.section == "sec-02-cost"


def test_hoffman_match_summary_and_tolerance():
    match = ex.HoffmanMatch({0.1: 0.8, 1.0: 0.7}, 0.71, 1.0, -0.01, 0.03)
    assert match.matched
    assert match.summary() == (
        "Hoffman λ grid (clean validation accuracy): {0.1: '0.800', 1.0: '0.700'} -> λ = 1.0 "
        "| regularised: 0.710 | validation gap: -1.00 points (matched within 2 points) "
        "| test gap: 3.00 points")
    far = ex.HoffmanMatch({0.1: 0.8}, 0.7, 0.1, 0.1, 0.1)
    assert not far.matched and "(NOT matched within 2 points)" in far.summary()


def test_ellipse_points_and_model(tiny):
    cfg, moons = tiny["cfg"], tiny["data"].moons
    toy = ex.toy_models(cfg, moons)
    assert list(toy.shown) == ["vanilla", toy.reg_name, toy.inv_name]
    radii = {"x": torch.arange(20.0).reshape(10, 2), "x_star": -torch.arange(20.0).reshape(10, 2)}
    points, nearest = ex.ellipse_points(radii, n=4)
    assert points[:, 0].tolist() == [0.0, 6.0, 12.0, 18.0] and torch.equal(nearest, -points)
    good, bad = {toy.reg_name: {"acc": 0.95}}, {toy.reg_name: {"acc": 0.5}}
    assert ex.ellipse_model(toy, good) == toy.reg_name
    assert ex.ellipse_model(toy, bad) == toy.inv_name  # the faithful model collapsed


def test_pole_class_figure_names_the_largest_class(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import fisher as fplots

    pole = ex.pole_class(tiny["ev"]["evals"])
    fig = fplots.plot_pole_class(pole.medians, pole.top_class)
    title = fig.axes[0].get_title()
    for model, c in pole.top_class.items():
        assert f"class {c} ({model})" in title
    plt.close("all")


def _tiny_cnn(activation: str = "relu") -> torch.nn.Module:
    """A cnn_small on 8×8 images fitted by 100 Adam steps to 'which third is brightest'."""
    from analysis import models

    model = models.build("cnn_small", seed=1, in_shape=(1, 8, 8), num_classes=3,
                         channels=(2, 3), hidden=8, activation=activation).double()
    x = torch.rand(60, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.stack([x[..., :3].mean((1, 2, 3)), x[..., 3:5].mean((1, 2, 3)),
                     x[..., 5:].mean((1, 2, 3))], 1).argmax(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_verifiable_cnn_is_the_same_function_and_needs_relu_max_pooling():
    model = _tiny_cnn()
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(ex.verifiable(model)(x), model(x))  # max∘relu = relu∘max, exactly
    with pytest.raises(ValueError, match="ReLU"):
        ex.verifiable(_tiny_cnn("tanh"))


def test_crown_radii_are_sound_at_the_attacked_points_and_tabled(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from analysis import attacks, report
    from analysis.bounds import fisher as fb

    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    cfg = config.resolve("02_fisher_jacobian", "smoke", n_attack=6, n_minnorm=5)
    model = _tiny_cnn()
    x = torch.rand(12, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x).argmax(1)
    mnist = SimpleNamespace(x_test=x, y_test=y)
    xm, ym = (t[: cfg.n_minnorm] for t in ex.attack_set(cfg, mnist))
    r_adv = torch.as_tensor(attacks.min_norm(model, xm, ym, attacks=("deepfool",)).distance,
                            dtype=torch.float64)
    r_adv[1] = math.inf  # a point no attack broke is left out
    ev = {"r_adv": r_adv, "rad": {k: v.detach() for k, v in fb.certified_radii(model, xm).items()}}
    runs = SimpleNamespace(runs={"vanilla": SimpleNamespace(model=model)})
    crown = ex.crown_radii(cfg, runs, {"vanilla": ev}, mnist, names=("vanilla",))["vanilla"]
    kept = torch.isfinite(r_adv) & (r_adv > 0)
    assert len(crown["crown"]) == int(kept.sum()) >= 2
    assert torch.equal(crown["r_adv"], r_adv[kept])
    # CROWN is sound: strictly below a verified attack (its closed ε-ball would contain it)
    assert bool((crown["crown"] < crown["r_adv"]).all())
    assert bool((crown["crown"] > 0).all())  # correctly classified points: some ball certified
    row = ex.crown_table({"vanilla": crown}, seconds=True).iloc[0]
    assert row["points"] == report.sig3(len(crown["r_adv"]))
    assert row["med CROWN/adv"] == report.sig3((crown["crown"] / crown["r_adv"]).median())
    assert row["med margin/CROWN"] == report.sig3((crown["r_margin"] / crown["crown"]).median())
    assert "s/image" in row and "s/image" not in ex.crown_table({"vanilla": crown}).columns
    gap = (torch.log(crown["crown"] / crown["r_margin"])
           / torch.log(crown["r_adv"] / crown["r_margin"])).median()
    assert row["gap closed"] == report.sig3(gap)


def test_toy_crown_is_sound_and_its_table_reads_the_ratios(tiny):
    cfg, moons = tiny["cfg"], tiny["data"].moons
    model = ex.fit_toy(cfg, moons, 2)["model"]
    radii = ex.toy_radii(cfg, moons, model)
    crown = ex.toy_crown(cfg, model, radii)
    finite = torch.isfinite(radii["r_star"])
    assert crown.shape == radii["r_star"].shape and bool((crown >= 0).all())
    assert bool((crown[finite] <= radii["r_star"][finite] * (1 + 1e-9)).all())
    assert bool((crown[finite] > 0).any())
    tab = ex.toy_crown_table({"vanilla": radii}, {"vanilla": crown})
    assert list(tab.columns) == ["model", "points", "r_margin/r*", "r_glob/r*", "CROWN/r*",
                                 "r_margin/CROWN"]
    assert int(tab["points"][0]) == int(finite.sum())
    med = float(np.median((crown[finite] / radii["r_star"][finite]).numpy()))
    assert tab["CROWN/r*"][0].startswith(report.sig3(med))
