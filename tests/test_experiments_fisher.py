"""Chapter 02's experiment functions at tiny size, and the notebook's shape (thin, no typed
statuses, captioned figures)."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch

from analysis import claims, config
from analysis.experiments import fisher as ex

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "02_fisher_jacobian.md"


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


# ------------------------------------------------------------------------- notebook shape


def _code_cells():
    nb = jupytext.read(NOTEBOOK)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_types_no_status():
    assert claims.find_typed_statuses(NOTEBOOK.read_text()) == []


def _code_lines(src: str) -> int:
    return sum(1 for line in src.splitlines() if line.strip() and not line.strip().startswith("#"))


def test_notebook_is_thin():
    cells = _code_cells()
    per_cell = [_code_lines(c.source) for c in cells]
    assert sum(per_cell) <= 200, sum(per_cell)
    assert max(per_cell) <= 25, [(n, c.source[:40]) for n, c in zip(per_cell, cells) if n > 25]


def test_every_code_cell_but_parameters_hides_its_input():
    for c in _code_cells():
        tags = c.metadata.get("tags", [])
        if "parameters" in tags:
            assert tags == ["parameters"]
        else:
            assert "hide-input" in tags, c.source[:60]


def test_every_figure_cell_has_a_caption_and_a_name():
    figure_cells = [c for c in _code_cells() if re.search(r"\bplot_\w+\(", c.source)]
    assert figure_cells
    names = []
    for c in figure_cells:
        figure = c.metadata.get("mystnb", {}).get("figure", {})
        assert figure.get("caption", "").strip(), c.source[:60]
        assert re.fullmatch(r"fig-02-[a-z0-9-]+", figure.get("name", "")), c.source[:60]
        assert len(re.findall(r"\bplot_\w+\(", c.source)) == 1, c.source[:60]
        assert not c.source.rstrip().endswith("\nfig")  # pyplot shows it: no second image
        names.append(figure["name"])
    assert len(set(names)) == len(names)


def test_every_claim_section_is_a_label_of_the_notebook():
    text = NOTEBOOK.read_text()
    labels = set(re.findall(r"^\((sec-02-[a-z0-9-]+)\)=$", text, re.M))
    used = set(re.findall(r'section="(sec-02-[a-z0-9-]+)"', text))
    assert used and used <= labels, used - labels


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
    status = claims.graded(claims.at_least(evid.gain_pts[0], evid.doc_gain_pts[0] / 2),
                           claims.at_least(evid.gain_pts[0], 0.0))
    assert status.label == claims.INCONCLUSIVE
    # the same gain on every one of 26 × 10 points is evidence
    big = {0: {"vanilla": _fake_eval([[False] * n] * 3, [True] * n),
               "regularised": _fake_eval([[True] * n] * 3, [True] * n)}}
    assert claims.at_least(ex.table1_evidence(cfg, big).gain_pts[0], 0.0).label == \
        claims.REPRODUCED


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
