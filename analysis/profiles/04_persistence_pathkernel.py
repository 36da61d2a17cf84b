"""Parameters of chapter 04, Bell: persistence of adversarial examples, the exact discrete path
kernel, decision-boundary probes.

``smoke`` runs in under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the book's
run (target: 12 minutes on one idle core). Cuts of the full profile for the 35-minute book
budget (issue 14), chosen by cost alone: ``table1_points`` 12 → 8, ``fade_sigmas`` 20 → 10,
``segment_points`` 21 → 11, ``segment_gammas`` five → three values, ``toy_grid`` 30 → 24. MNIST is the embedded 4 000/1 000 sample by default;
the ImageNet experiments run on Fashion-MNIST with two small CNNs standing in for AlexNet and
VGG16.
"""

from dataclasses import replace

from analysis.config import Param, common_schema

_COMMON = common_schema(("embedded", "torchvision"))


def _bell_net(name: str) -> None:
    """A network name of the thesis (``FC10-k``, ``FC100-100-10``, ``C-Ch``, ...), else a
    ``ValueError`` (checked by :mod:`analysis.config` before the chapter starts)."""
    from analysis.models.bell import bell_net

    bell_net(name)

SCHEMA = {
    **_COMMON,
    # the paper profile (never run by the tests): the document's sizes, full MNIST, for a GPU
    "data_source": replace(_COMMON["data_source"], paper="torchvision"),
    "gamma": Param(0.7, 0.7, kind=float, low=0.01, high=0.99, help="γ of γ-persistence"),
    "precision": Param(0.01, 0.01, kind=float, positive=True, help="bracketing precision on p̂"),
    # Part I, wedge (Fig 8)
    "wedge_samples": Param(500, 2000, kind=int, low=10,
                           help="least Monte Carlo samples per σ (Fig 8); more where "
                                "wedge_rel_tol needs them"),
    "wedge_rel_tol": Param(0.1, 0.1, kind=float, low=0.06, high=0.5,
                           help="largest tolerance of the Fig 8 check, relative to σ* (the spec: "
                                "10 %); sets the samples per k (k = 1: ~50 000)"),
    # MNIST training
    "n_train": Param(2000, 4000, paper=60000, kind=int, low=100, help="MNIST training images (stratified)"),
    "n_test": Param(500, 1000, paper=10000, kind=int, low=50, help="MNIST test images (stratified)"),
    "mlp_epochs": Param(3, 21, kind=int, low=1, help="epochs of the 784-100-20-10 MLP (§5.1.1)"),
    "fc_epochs": Param(3, 21, kind=int, low=1, help="epochs of the FC networks of Table 1"),
    "cnn_epochs": Param(2, 5, kind=int, low=1, help="epochs of the C-Ch networks"),
    "table1_nets": Param(["FC10-4", "FC10-0", "FC100-100-10", "C-2"],
                         ["FC10-4", "FC10-2", "FC10-0", "FC100-100-10", "FC200-200-10", "C-2",
                          "C-4", "C-8", "C-16"],
                         paper=["FC10-4", "FC10-2", "FC10-0", "FC100-100-10", "FC200-200-10",
                                "C-2", "C-4", "C-8", "C-16", "C-32", "C-64", "C-128", "C-256",
                                "C-512"],
                         kind=list, check=_bell_net,
                         help="networks of Table 1 (FC10-k, FC100-100-10, "
                                         "FC200-200-10, C-Ch)"),
    "table1_points": Param(4, 8, paper=300, kind=int, low=1,
                           help="natural and adversarial points per net and seed (full: 12 → 8 "
                                "for the 35-minute book budget)"),
    "table1_seeds": Param(1, 3, paper=3, kind=int, low=1, high=10,
                          help="training seeds per Table 1 FC network (the verdicts' two-stage "
                               "bootstrap runs over seeds × points)"),
    "table1_cnn_seeds": Param(1, 1, paper=3, kind=int, low=1, high=10,
                              help="training seeds per Table 1 C-Ch network (fewer than the FC "
                                   "nets at full: they set the chapter's time, see Table 1)"),
    "table1_samples": Param(100, 200, paper=1000, kind=int, low=10, help="Monte Carlo N for Table 1"),
    "lbfgs_bisection": Param(2, 4, kind=int, low=1, help="bisection steps on c of L-BFGS"),
    # Figs 9, 10, 13
    "freq_sigmas": Param(20, 50, paper=100, kind=int, low=3, help="σ values in (0, 1.6) (Figs 9, 13)"),
    "freq_samples": Param(200, 1000, paper=1000, kind=int, low=10, help="samples per σ (Figs 9, 13)"),
    "fig10_images": Param(4, 40, paper=200, kind=int, low=1, help="images × 9 IGSM targets (Fig 10)"),
    "fig10_samples": Param(100, 300, paper=1000, kind=int, low=10, help="Monte Carlo N (Fig 10)"),
    # Fashion-MNIST substitute (Table 2, Figs 11, 12, 17, 18)
    "fashion_n_train": Param(2000, 10000, paper=60000, kind=int, low=100, high=60000,
                             help="Fashion-MNIST training images"),
    "fashion_epochs": Param(2, 2, kind=int, low=1, help="epochs of VGG-mini and AlexNet-mini"),
    "fashion_attacks": Param(["bim", "pgd"], ["bim", "mifgsm", "pgd", "fgsm", "rfgsm", "cw"],
                             kind=list, choices=("bim", "mifgsm", "pgd", "fgsm", "rfgsm", "cw"),
                             help="attacks of the Table 2 analogue"),
    "fashion_eps": Param(0.2, 0.2, kind=float, positive=True, high=1.0,
                         help="L∞ budget of the Fashion attacks (α = ε/4, 10 steps)"),
    "fashion_sources": Param(2, 4, kind=int, low=1, help="Sneaker images attacked"),
    "fashion_targets": Param([5, 8], [5, 8, 0], kind=list, low=0, high=9,
                             help="target classes (5 Sandal, 8 Bag, 0 T-shirt)"),
    "fashion_samples": Param(32, 64, paper=100, kind=int, low=10, help="Monte Carlo N (Table 2, Fig 12)"),
    "fade_sigmas": Param(20, 10, paper=50, kind=int, low=3,
                         help="σ values in (0, 2] around the Fashion adversarials (Fig 17; full: "
                              "20 → 10 for the 35-minute book budget)"),
    "fade_samples": Param(100, 100, paper=500, kind=int, low=10,
                          help="samples per σ around the Fashion adversarials (Fig 17; the "
                               "CNN forwards set its cost: 2 nets × points × σ × samples)"),
    "segment_points": Param(9, 11, paper=21, kind=int, low=3,
                            help="τ values on the segment (Figs 12, 18; full: 21 → 11 for the "
                                 "35-minute book budget)"),
    "segment_gammas": Param([0.7], [0.5, 0.7, 0.9], paper=[0.5, 0.6, 0.7, 0.8, 0.9], kind=list, low=0.01, high=0.99,
                            help="γ values of Fig 18 (full: 0.5-0.9 by 0.1 → 0.5, 0.7, 0.9 for "
                                 "the 35-minute book budget)"),
    # Fig 19
    "conc_small": Param(10000, 100000, paper=100000, kind=int, low=100, help="samples at n = 784"),
    "conc_large": Param(200, 2000, paper=5000, kind=int, low=10, help="samples at n = 196 608"),
    # Part II
    "toy_per_class": Param(200, 2000, paper=2000, kind=int, low=10, help="toy points per class (Fig 20)"),
    "toy_hidden": Param(32, 64, kind=int, low=2, help="hidden units of the toy MLP"),
    "toy_steps": Param(50, 300, kind=int, low=1, help="full-batch GD steps (toy)"),
    "toy_lr": Param(0.5, 0.5, kind=float, positive=True,
                    help="GD step size of the toy (the document's 0.5; the adaptive quadrature "
                         "refines where log-softmax turns sharply)"),
    "toy_grid": Param(12, 24, paper=50, kind=int, low=3,
                      help="grid points per axis (Fig 20; full: 30 → 24 for the 35-minute book "
                           "budget)"),
    "dpk_train": Param(200, 1000, kind=int, low=10, help="MNIST training points M (Figs 22-23)"),
    "dpk_hidden": Param(16, 64, kind=int, low=2, help="hidden units of the MNIST MLP"),
    "dpk_steps": Param(20, 100, kind=int, low=1, help="full-batch GD steps (MNIST)"),
    "dpk_test": Param(5, 20, kind=int, low=1, help="MNIST test points (Figs 22-23)"),
    "dpk_lr": Param(0.5, 0.5, kind=float, positive=True, help="GD step size (MNIST DPK run)"),
    "fig24_net": Param("C-2", "C-2", kind=str, help="CNN of Fig 24", check=_bell_net),
    "fig24_t": Param(11, 41, paper=101, kind=int, low=2, help="values of t (Fig 24)"),
    # Part III
    "orthant_n": Param(50, 200, kind=int, low=5, help="dimension of the orthant probe"),
    "orthant_kmax": Param(5, 10, kind=int, low=1, help="largest k of the orthant probe"),
    "orthant_samples": Param(2000, 8000, kind=int, low=10, help="samples of the orthant probe"),
    "probe_samples": Param(100, 1000, kind=int, low=10, help="samples of the MNIST SVD probe"),
    "probe_sigma": Param(0.05, 0.05, kind=float, positive=True, help="σ of the MNIST probe"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('table1_points', 'table1_samples')
