"""Parameters of chapter 01, Warwick: robustness of sequence models (curvature bounds, the
probabilistic bound, random-matrix spectra, Jacobian/Hessian regularisation of a row-by-row RNN).

``smoke`` runs in under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the book's
run (under 20 minutes on the same machine). The document's MNIST has 55 000 training images;
the default data are a stratified subset of the embedded 5 000-image sample: 4 000/1 000 in
``full``, 2 000/500 in ``smoke`` (``data_source="torchvision"`` for more).

``paper`` holds the document's own sizes where they differ from ``full`` (§8: full MNIST split
55 000 / 5 000 / 10 000, the 10 000 test images attacked, ε ∈ [1, 30]/255 in steps of 1, 30 PGD
iterations); the document gives no epochs, width, optimiser or λ, so those stay at ``full``.
It is meant for a GPU and never run by the tests.

For the 35-minute book budget (issue 14) ``full`` halves every section that cost more than
50 s of the 9.9-minute full run except the training (3 seeds, 12 epochs kept): PGD points
``n_eval`` 1000 → 500 (Fig 10, 219 s), slice grid ``slice_grid`` 101 → 71 points per axis
(Fig 11, 89 s; 71² ≈ ½·101²), curvature points ``n_curv`` 100 → 50 (69 s) and Monte-Carlo
draws ``mc_n`` 20 000 → 10 000 (Fig 8, 55 s). ``paper`` keeps the old values (or the
document's).
"""

from analysis.config import Param, common_schema

SCHEMA = {
    **common_schema(("embedded", "torchvision")),
    "data_source": Param("embedded", "embedded", paper="torchvision", kind=str,
                         choices=("embedded", "torchvision"),
                         help="MNIST source: the embedded 5 000-image sample or full MNIST"),
    "n_seeds": Param(1, 3, kind=int, low=1, high=10,
                     help="training seeds per model (seed, seed+1, ...) for the paired claims"),
    "hr_examples": Param(16, 32, kind=int, low=1,
                         help="examples per batch carrying the HR term (uniform subset, unbiased)"),
    # RNN experiment (§8, Figs 10-11)
    "n_train": Param(2000, 4000, paper=55000, kind=int, low=100,
                     help="MNIST training images (stratified)"),
    "n_test": Param(500, 1000, paper=10000, kind=int, low=50, help="MNIST test images (stratified)"),
    "hidden": Param(64, 128, kind=int, low=4, help="RNN hidden units"),
    "epochs": Param(3, 12, kind=int, low=1, help="training epochs of each of the 3 RNNs"),
    "lr": Param(5e-3, 5e-3, kind=float, positive=True,
                help="initial Adam learning rate (cosine schedule)"),
    "lam_jr": Param(0.01, 0.01, kind=float, low=0.0, help="λ_JR (Hoffman et al.'s default)"),
    "lam_hr": Param(0.01, 0.01, kind=float, low=0.0,
                    help="λ_HR, our convention (the document's λ = 10·λ_HR)"),
    "n_eval": Param(128, 500, paper=10000, kind=int, low=8,
                    help="test images attacked by PGD (Fig 10; full 1000 → 500 for the 35-minute "
                         "book budget)"),
    "eps_255": Param([2, 8, 16, 30], [1, 2, 4, 6, 8, 12, 16, 20, 25, 30],
                     paper=list(range(1, 31)), kind=list, low=0, high=255, help="L∞ PGD radii in 1/255 units"),
    "pgd_steps": Param(10, 30, kind=int, low=1, help="PGD iterations (the document: 30)"),
    "n_curv": Param(8, 50, paper=100, kind=int, low=2,
                    help="test points of the curvature analysis (full 100 → 50 for the "
                         "35-minute book budget)"),
    "lanczos_iters": Param(30, 60, kind=int, low=2, help="HVPs per point (Lanczos)"),
    "n_reg_eval": Param(32, 64, kind=int, low=2, help="test points for ‖J‖_F², ‖H‖_F²"),
    "slice_grid": Param(41, 71, paper=101, kind=int, low=5,
                        help="grid points per axis (Fig 11; full 101 → 71 for the 35-minute "
                             "book budget)"),
    "slice_points": Param(10, 20, kind=int, low=1, high=40, help="test images sliced (Fig 11)"),
    "slice_radius": Param(8.0, 8.0, kind=float, positive=True, help="slice half-width, L2"),
    # mathematics (Figs 4, 6, 8, 9; Lemma 4.0.1)
    "fig6_points": Param(200, 2000, kind=int, low=10, help="ν values of Fig 6"),
    "mc_rho_points": Param(12, 30, kind=int, low=2, help="ρ̃ values of Fig 8"),
    "mc_n": Param(2000, 10000, paper=20000, kind=int, low=100,
                  help="Monte-Carlo draws per point (Fig 8; full 20 000 → 10 000 for the "
                       "35-minute book budget)"),
    "mc_dim": Param(1000, 1000, kind=int, low=10, help="ambient dimension d of Fig 8"),
    "lemma_n": Param(300, 1000, kind=int, low=50, help="Wigner size for Lemma 4.0.1"),
    "lemma_draws": Param(2000, 20000, kind=int, low=100, help="eigenvalue pairs (Lemma 4.0.1)"),
    "plane_draws": Param(300, 2000, kind=int, low=50, help="random 2-planes (Lemma 4.0.1)"),
    "rmt_n": Param(400, 1000, kind=int, low=50, help="matrix size of Figs 4 and 9"),
    "rmt_grid": Param(2001, 20001, kind=int, low=101, help="λ grid of Fig 9"),
    "rmt_s": Param([0.0, 0.1, 0.5, 1.0], [0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0], kind=list,
                   low=0.0, help="semicircle variances s = ε|log α| of Fig 9"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('n_train',)
