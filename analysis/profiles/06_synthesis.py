"""Parameters of chapter 06, the synthesis: every defence and certificate of the five documents
on one network, one data set and one evaluation.

``smoke`` runs in under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the book's
run (target: at most 12 minutes on an idle 2-core CPU, so that the whole book builds in 35);
``paper`` the issue's larger sweeps and samples, meant for a GPU and never run by the tests.
Inputs are pixels in [0, 1]; L∞ and L2 radii are in pixel units.

Every defence's strength is chosen from its ``grid_<defence>`` (increasing strength) on a
validation split of the training data (``n_val`` images) by the rule of
:func:`analysis.experiments.synthesis.select_strengths`: the strongest value whose validation
clean accuracy is within ``select_tolerance`` of plain training's. Test points never enter the
choice.
"""

from analysis.config import Param, common_schema

_COMMON = common_schema(("embedded", "torchvision"))

SCHEMA = {
    **_COMMON,
    "dataset": Param("mnist", kind=str, choices=("mnist", "fashion_mnist"),
                     help="data set (MNIST: data_source; Fashion-MNIST: the official files)"),
    "n_train": Param(1000, 2400, paper=4000, kind=int, low=200, high=60000,
                     help="training images (stratified), validation split included"),
    "n_val": Param(200, 400, paper=1000, kind=int, low=50,
                   help="of which held out to choose each defence's strength"),
    "hidden": Param(64, 64, paper=256, kind=int, low=4, help="hidden units of the MLP"),
    "epochs": Param(3, 6, paper=20, kind=int, low=1, help="training epochs of every model"),
    "batch_size": Param(64, 64, paper=128, kind=int, low=1, help="minibatch size"),
    "n_seeds": Param(1, 3, kind=int, low=1, high=10,
                     help="training seeds of every defence at its chosen strength"),
    "select_tolerance": Param(0.02, kind=float, low=0.0, high=1.0,
                              help="validation clean accuracy may fall this much below plain's"),
    "grid_jacobian": Param([0.01, 0.1], [0.01, 0.1, 1.0], paper=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                           kind=list, positive=True, help="λ of the Jacobian (Hoffman) penalty"),
    "grid_fisher": Param([0.01, 0.1], [0.01, 0.1, 1.0], paper=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                         kind=list, positive=True, help="η of the Fisher-metric Jacobian penalty"),
    "grid_hessian": Param([0.01, 0.1], [0.01, 0.1, 1.0], paper=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                          kind=list, positive=True, help="λ of the Hessian Frobenius penalty"),
    "grid_cross_lipschitz": Param([0.01, 0.1], [0.01, 0.1, 1.0],
                                  paper=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0], kind=list,
                                  positive=True, help="λ1 of Cross-Lipschitz"),
    "grid_cross_holder": Param([0.01, 0.1], [0.01, 0.1, 1.0],
                               paper=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0], kind=list,
                               positive=True, help="λ1 of Cross-Hölder (λ2 = ch_lambda2)"),
    "grid_peck_margin": Param([0.1, 1.0], [0.1, 1.0, 10.0], paper=[0.1, 0.3, 1.0, 3.0, 10.0],
                              kind=list, positive=True, help="ℓ of Peck's output-margin term"),
    "grid_adv_training": Param([0.5, 1.0], [0.5, 1.0, 2.0], paper=[0.25, 0.5, 1.0, 1.5, 2.0],
                               kind=list, positive=True, help="L2 ε of PGD adversarial training"),
    "grid_noise": Param([0.25, 0.5], [0.1, 0.25, 0.5], paper=[0.12, 0.25, 0.5, 1.0],
                        kind=list, positive=True, help="σ of Gaussian noise augmentation"),
    "ch_lambda2": Param(0.5, kind=float, low=0.0, help="λ2 of Cross-Hölder (R/2, R ≈ 1 px)"),
    "reg_iters": Param(2, 3, paper=10, kind=int, low=1,
                       help="power steps of Cross-Hölder's Hessian norm in training"),
    "at_steps": Param(3, 5, paper=10, kind=int, low=1, help="PGD steps of adversarial training"),
    "n_test": Param(30, 100, paper=1000, kind=int, low=10,
                    help="test points attacked per model (the same for every model)"),
    "eps_linf": Param([0.05, 0.1, 0.2], [0.03, 0.05, 0.1, 0.15, 0.2],
                      paper=[0.02, 0.05, 0.1, 0.15, 0.2, 0.3], kind=list, positive=True,
                      help="L∞ radii of the robust-accuracy curves (pixels)"),
    "eps_l2": Param([0.5, 1.0, 2.0], [0.25, 0.5, 1.0, 1.5, 2.0],
                    paper=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0], kind=list, positive=True,
                    help="L2 radii of the robust-accuracy curves (pixels)"),
    "pgd_steps": Param(10, 20, paper=100, kind=int, low=1, help="PGD iterations"),
    "pgd_restarts": Param(1, 2, paper=10, kind=int, low=1, help="PGD random restarts"),
    "strong_factor": Param(3, 3, paper=5, kind=int, low=2,
                           help="the convergence check runs PGD with this many times the steps "
                                "and restarts"),
    "eps_huge": Param(0.5, kind=float, positive=True,
                      help="L∞ radius of the 'success reaches 100 %' check"),
    "cw_steps": Param(30, 50, paper=1000, kind=int, low=1, help="Adam steps per c of C&W-L2"),
    "cw_binary_steps": Param(4, 5, paper=9, kind=int, low=1, help="values of c of C&W-L2"),
    "n_decision": Param(5, 20, paper=200, kind=int, low=1,
                        help="test points of the decision-based attack (HopSkipJump)"),
    "hsj_steps": Param(8, 15, paper=64, kind=int, low=1, help="HopSkipJump iterations"),
    "n_cert": Param(12, 40, paper=500, kind=int, low=5,
                    help="test points certified per model (the first of the attacked points)"),
    "cert_radii": Param([0.1, 0.25, 0.5, 1.0], kind=list, positive=True,
                        help="L2 radii of the certified-accuracy table and curves (pixels)"),
    "claim_radius": Param(0.5, kind=float, positive=True,
                          help="L2 radius of the 'certifies a share of what attacks leave' claims "
                               "(half the undefended median minimal distance, ~1: a radius where "
                               "attacks leave a real share standing, so the claim can fail)"),
    "smooth_sigma": Param(0.25, kind=float, positive=True,
                          help="σ of randomized smoothing at certification (pixels)"),
    "smooth_n0": Param(20, 50, paper=100, kind=int, low=1, help="smoothing: selection samples"),
    "smooth_n": Param(200, 1000, paper=100000, kind=int, low=10,
                      help="smoothing: estimation samples"),
    "smooth_alpha": Param(0.001, kind=float, positive=True, high=0.5,
                          help="smoothing: 1 − confidence of the Clopper-Pearson bound"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('n_train', 'epochs', 'n_seeds')
