"""Chapter 00's computations at tiny size."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from analysis import attacks
from analysis.experiments import toolkit

D = 16


def test_attack_unit_tests_table_at_tiny_size():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    f = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(),
                            torch.nn.Linear(32, 5)).eval()
    x = torch.rand(12, D, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = f(x).argmax(1)
    kw = {"eps_linf": 0.1, "eps_l2": 0.4, "pgd_steps": 10, "cw_steps": 20,
          "cw_binary_steps": 2, "seed": 0}
    table = toolkit.attack_unit_tests(f, x, y, **kw)
    assert list(table["attack"]) == ["PGD-L∞", "PGD-L2", "C&W-L2", "DeepFool", "min-norm"]
    assert (table["points"] == 12).all() and (table["passed"] <= table["points"]).all()
    assert (table["rho"] == table["eps"] / 2).all()
    assert ((table["95% CI low"] <= table["pass rate"]) & (table["pass rate"] <= 1)).all()
    assert (table["passes 99%"] == (table["pass rate"] >= 0.99)).all()
    # the min-norm search keeps the best of DeepFool and C&W: it passes wherever they do
    rate = dict(zip(table["attack"], table["passed"], strict=True))
    assert rate["min-norm"] >= max(rate["DeepFool"], rate["C&W-L2"])
    # a float32 model's PGD lands at float32(eps) > eps: still a pass (it was not, with an
    # exact comparison in float64, which failed every point)
    assert rate["PGD-L∞"] == 12 and rate["PGD-L2"] == 12
    again = toolkit.attack_unit_tests(f, x, y, **kw)  # cached: the same table
    assert again.equals(table)


def _fake_trained() -> dict:
    def run(width: int, accs: list[float]) -> SimpleNamespace:
        return SimpleNamespace(model=torch.nn.Linear(D, width),
                               history=[{"epoch": i + 1, "test_acc": a} for i, a in enumerate(accs)])
    return {("MNIST", "linear"): run(3, [0.5, 0.7]), ("MNIST", "mlp"): run(4, [0.6]),
            ("digits", "linear"): run(5, [0.9])}


def test_models_and_training_curves_of_one_data_set():
    trained = _fake_trained()
    models = toolkit.models_of(trained, "MNIST")
    assert list(models) == ["linear", "mlp"]
    assert models["mlp"] is trained[("MNIST", "mlp")].model
    curves = toolkit.training_curves(trained, "MNIST")
    assert curves == {"linear": ([1, 2], [0.5, 0.7]), "mlp": ([1], [0.6])}
    assert toolkit.models_of(trained, "Fashion-MNIST") == {}


def _dataset(n: int = 10) -> SimpleNamespace:
    g = torch.Generator().manual_seed(3)
    return SimpleNamespace(x_test=torch.rand(n, D, generator=g), y_test=torch.arange(n) % 2)


def test_first_and_correctly_classified_test_points():
    d = _dataset()
    x, y = toolkit.first_test_points(d, 4, "cpu")
    assert torch.equal(x, d.x_test[:4]) and torch.equal(y, d.y_test[:4])
    # a "model" that predicts class 0 everywhere: only the even-indexed images are correct
    f = torch.nn.Linear(D, 2)
    with torch.no_grad():
        f.weight.zero_()
        f.bias.copy_(torch.tensor([1.0, 0.0]))
    xc, yc = toolkit.correctly_classified(f, d, 3, "cpu")
    assert torch.equal(xc, d.x_test[[0, 2, 4]]) and (yc == 0).all()


def test_gallery_panels_hold_what_the_gallery_plot_draws():
    torch.manual_seed(0)
    f = torch.nn.Linear(D, 3).eval()
    x = torch.rand(5, D, generator=torch.Generator().manual_seed(2))
    y = attacks.predict(f, x)
    r = attacks.fgsm(f, x, y, 0.3)
    panels = toolkit.gallery_panels(f, {"FGSM": (r, "linf", 0.3)})
    assert set(panels) == {"FGSM"}
    p = panels["FGSM"]
    assert torch.equal(p["x_adv"], r.x_adv) and torch.equal(p["pred"], attacks.predict(f, r.x_adv))
    assert torch.equal(p["l2"], r.norms_l2) and torch.equal(p["linf"], r.norms_linf)
    # success (re-checked by the attack) is exactly a changed prediction
    assert torch.equal(p["pred"] != y, r.success)


def test_robust_table_picks_the_requested_radii():
    eps = {"linf": [0.0, 0.1, 0.3], "l2": [0.0, 1.0]}
    robust = {"linf": {"a": np.array([0.9, 0.5, 0.125]), "b": np.array([0.8, 0.4, 0.0])},
              "l2": {"a": np.array([0.9, 0.25]), "b": np.array([0.8, 0.2])}}
    table = toolkit.robust_table(robust, eps, {"linf": (0.3, 0.1), "l2": (1.0, 2.0)})
    assert list(table.columns) == ["model", "PGD-linf ε=0.1", "PGD-linf ε=0.3", "PGD-l2 ε=1"]
    assert list(table["model"]) == ["a", "b"]
    assert list(table.iloc[0, 1:]) == ["0.500", "0.125", "0.250"]  # 3 significant figures
    assert list(table.iloc[1, 1:]) == ["0.400", "0", "0.200"]


def test_linear_summary_quantiles_and_the_one_percent_test():
    d_star = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    found = {"none": {"min-norm": d_star * torch.tensor([1.0, 1.005, 1.0], dtype=torch.float64)},
             "[0, 1]": {}}
    check = toolkit.LinearCheck(d_star=d_star, y=torch.zeros(3), box_binds=torch.zeros(3),
                                found=found)
    row = toolkit.linear_summary(check).iloc[0]
    assert (row["d* min"], row["d* median"], row["d* max"]) == ("1.00", "2.00", "4.00")
    assert row["min-norm within 1% of d* (no box)"] == "True"  # printed as report.table does
    found["none"]["min-norm"] = d_star * torch.tensor([1.0, 1.02, 1.0], dtype=torch.float64)
    assert toolkit.linear_summary(check).iloc[0]["min-norm within 1% of d* (no box)"] == "False"


def test_linear_check_finds_the_closed_form_at_tiny_size():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D, 3))
    x = torch.rand(8, D, generator=torch.Generator().manual_seed(4))
    y = model(x).argmax(1)
    check = toolkit.linear_check(model, x, y, cw_steps=30, cw_binary_steps=3, pgd_steps=10,
                                 seed=0)
    assert len(check.d_star) == 8
    for box, res in check.found.items():  # no attack beats the exact minimum
        for a, d in res.items():
            assert bool((d >= check.d_star - 1e-6).all()), (box, a)
    ratio = check.found["none"]["DeepFool"] / check.d_star
    assert float(ratio.max()) < 1.05  # about one overshoot step (0.02) on an affine model
    none = check.found["none"]
    assert bool((none["min-norm"] <= none["DeepFool"]).all())  # the search keeps the best
