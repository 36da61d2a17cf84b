"""Parameters of chapter 05, Mustafa, Vandermeulen & Kloft (2020): input-Hessian (Cross-Hölder)
regularisation, Theorem 2's certificate, the Hessian-norm estimators.

``smoke`` runs in under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the book's
run (target: under 20 minutes on an idle 2-core CPU). MNIST is the embedded 4 000/1 000 sample
(``data_source="torchvision"`` for the full set); Fashion-MNIST is the full official set of which
``fmnist_n_train`` training images are used (stratified subsample, for training time).
Radii ε are L2 in *standardised* units (pixels minus the training mean, divided by the training
standard deviation; erratum E13); ε_px = σ·ε.

Every CNN compared in a claim is trained with ``n_seeds`` seeds (3 at full). ``paper`` holds the
document's own sizes where it states them (full MNIST from torchvision, the full Fashion-MNIST
training set, the document's width, all 9 wrong classes, 50 PGD iterations × 10 restarts on the
whole test set, T = 10 estimator steps at every training step); it is meant for a GPU and is
never run by the tests. The document gives no optimiser, learning rate, batch size or epochs
(erratum E14): those stay at the full values (epochs at 8, the full value before the time budget).

Cuts of ``full`` for the 35-minute book budget (issue 14: the chapter's full run must take about
15 minutes on one idle core; it took 45.8), chosen by the sections' costs alone: ``fmnist_n_train``
8000 → 4000 and ``epochs`` 8 → 4 (training the 24 CNNs was 1460 s), ``n_test`` 300 → 100 and
``pgd_restarts`` 2 → 1 (the robustness curves of the 24 CNNs were 871 s), ``est_points``
200 → 100 (the norm estimates of the 24 CNNs were 171 s). ``paper`` keeps the document's sizes.
"""

from analysis.config import Param, common_schema

_COMMON = common_schema(("embedded", "torchvision"))
_COMMON["data_source"] = Param("embedded", "embedded", paper="torchvision", kind=str,
                               choices=("embedded", "torchvision"),
                               help="MNIST source (paper: the full 60 000 / 10 000 set)")

SCHEMA = {
    **_COMMON,
    "fmnist_source": Param("debian", kind=str, choices=("debian", "torchvision"),
                           help="source of Fashion-MNIST (the full official set)"),
    "mnist_n_train": Param(1000, 4000, paper=60000, kind=int, low=100, high=60000,
                           help="MNIST training images (stratified; the embedded set has 4000)"),
    "fmnist_n_train": Param(1000, 4000, paper=60000, kind=int, low=100, high=60000,
                            help="Fashion-MNIST training images (stratified subsample; full: "
                                 "8000 → 4000 for the 35-minute book budget)"),
    "n_test": Param(100, 100, paper=10000, kind=int, low=10,
                    help="test images attacked per model (paper: the whole test set; full: "
                         "300 → 100 for the 35-minute book budget)"),
    "n_seeds": Param(1, 3, kind=int, low=1, high=10,
                     help="training seeds of every CNN compared in a claim (seed, seed+1, ...)"),
    "width": Param(0.25, 0.25, paper=1.0, kind=float, positive=True,
                   help="channel multiplier of the SWISH CNN (1 = the document's network)"),
    "fc": Param(64, 64, paper=200, kind=int, low=1, help="hidden FC width (200 in the document)"),
    "epochs": Param(3, 4, paper=8, kind=int, low=1,
                    help="training epochs of every CNN (full: 8 → 4 for the 35-minute book "
                         "budget; paper keeps 8, the document gives none, E14)"),
    "batch_size": Param(32, 128, kind=int, low=1,
                        help="minibatch size (smoke: 32, so that 1000 images give enough steps)"),
    "ch_classes": Param(1, 1, paper=9, kind=int, low=1, high=9,
                        help="wrong classes regularised per example (runner-ups; 9 = all)"),
    "ch_iters": Param(3, 10, kind=int, low=1,
                      help="power-iteration steps T of CH training from a random start"),
    "ch_warm_iters": Param(1, 1, paper=10, kind=int, low=0,
                           help="power steps of a warm-started example (its direction kept "
                                "from the previous epoch), plus the penalty's own product"),
    "at_steps": Param(3, 7, kind=int, low=1, help="PGD steps of adversarial training"),
    "pgd_steps": Param(10, 50, paper=50, kind=int, low=1, help="PGD iterations of the evaluation"),
    "pgd_restarts": Param(1, 1, paper=10, kind=int, low=1,
                          help="PGD random restarts (document: 10; full: 2 → 1 for the "
                               "35-minute book budget)"),
    "eps": Param([2.0, 4.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], kind=list, low=0.0,
                 help="L2 radii (standardised units) of the robustness curves"),
    "fig3_points": Param(100, 500, paper=10000, kind=int, low=10,
                         help="test points of Fig. 3 (paper: the whole evaluation set)"),
    "fig3_iters": Param(20, 100, kind=int, low=5, help="power iterations for |Hv*| (Fig. 3)"),
    "est_points": Param(50, 100, paper=200, kind=int, low=5,
                        help="test points of the estimator table (erratum E10; full: 200 → 100 "
                             "for the 35-minute book budget)"),
    "mlp_hidden": Param(64, 64, kind=int, low=4, help="hidden units of the certified SWISH MLP"),
    "mlp_epochs": Param(3, 10, kind=int, low=1, help="training epochs of the SWISH MLPs"),
    "cert_points": Param(50, 200, kind=int, low=5,
                         help="test points of the certificate-vs-attack comparison"),
    "cert_attack_steps": Param(30, 100, kind=int, low=5,
                               help="PGD steps per bisection step of the min-norm attack"),
    "time_repeats": Param(5, 7, kind=int, low=2, help="rounds of the per-batch step timing"),
    "cert_cw_steps": Param(100, 200, kind=int, low=1,
                           help="Adam steps per value of c of the certificate's C&W-L2 attack"),
    "literal_batch": Param(16, 128, kind=int, low=1, high=128,
                           help="batch size at which plain, CH and the literal Alg. 1 are timed "
                                "at the document's width (no scaling; 128 = the claim's batch)"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('mnist_n_train', 'epochs', 'ch_classes', 'width')
