"""Parameters of chapter 03, Peck (2017): lower bounds on adversarial perturbation norms.

``smoke`` runs in under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the book's
run (15 min 42 s in the cold book of 2026-12-02, one thread, 3 min 11 s of it the ground-truth
study that chapter 00 shares through the cache). For the 35-minute book budget (issue 14)
the full profile was cut, by cost alone: ``lenet_epochs`` 10 → 6, ``n_eval`` 1000 → 500,
``n_strong`` 100 → 60 (the CNN section: 565 s → about 330 s). ``x4_ells`` keeps its six weights:
cut to four (0, 0.1, 1, 10) it lost the Spambase row of Fig 4.3's claim (every ℓ ≥ 0.1 collapses
that net to one class, so the claim needs 0.03; the sweep took 91 s at four weights in the cold book, so six add an
estimated 45 s). The thesis's sizes (100 random classifiers per
configuration, 10 000 test images, 10k training iterations) are scaled down as stated here and
in the chapter. ``paper`` holds the thesis's sizes (full MNIST, 10 000 test images, 100
random classifiers/MLPs per row, ≈ 11 LeNet epochs) for a GPU; the tests never run it.
"""

from analysis.config import Param, common_schema

SCHEMA = {
    **common_schema(("embedded", "torchvision")),
    "data_source": Param("embedded", "embedded", paper="torchvision", kind=str,
                         choices=("embedded", "torchvision"),
                         help="MNIST source: the 5 000-digit sample or full MNIST (thesis)"),
    "n_seeds": Param(1, 3, paper=3, kind=int, low=1,
                     help="training seeds of the claims that compare trained nets (LRN, Fig 4.3)"),
    "timing_repeats": Param(5, 7, kind=int, low=2, help="timed repeats after one warm-up"),
    "timing_images": Param(5, 10, kind=int, low=1,
                           help="images the strong attacks are timed on (per repeat)"),
    # X1 / X2: random linear classifiers and random tanh MLPs
    "x1_classifiers": Param(20, 100, paper=100, kind=int, low=1, help="random linear classifiers per row"),
    "x1_samples": Param(10, 10, kind=int, low=1, help="samples per linear classifier"),
    "x2_rows": Param([1, 4, 8], [1, 2, 3, 4, 5, 6, 7, 8], kind=list, low=1, high=8,
                     help="rows of Table 4.2 run"),
    "x2_mlps": Param(4, 20, paper=100, kind=int, low=1, help="random MLPs per row (thesis: 100; row 8: 10)"),
    "x2_exact_mlps": Param(2, 4, kind=int, low=0,
                           help="MLPs of each 2-D row also searched exhaustively (ray search)"),
    # X3 / X4: trained tanh MLPs and the margin regulariser
    "x3_sets": Param(["iris"], ["iris", "wine", "spambase_like"], kind=list,
                     choices=("iris", "wine", "spambase_like"), help="tabular data sets"),
    "x3_epochs": Param(150, 150, kind=int, low=1, help="training epochs of the tanh MLPs"),
    "x4_ells": Param([0.0, 1.0], [0.0, 0.03, 0.1, 0.3, 1.0, 10.0], kind=list, low=0.0,
                     help="regularisation weights ℓ of Fig 4.3"),
    "x4_radius": Param(0.5, 0.5, kind=float, positive=True,
                       help="L2 budget (standardised units) of the FGS/FGV error rate"),
    # X5 / X6: CNNs
    "mnist_train": Param(2000, 4000, paper=60000, kind=int, low=100, help="MNIST training images"),
    "n_eval": Param(200, 500, paper=10000, kind=int, low=10,
                    help="test images bounded and attacked by FGS (full: 1000 before the "
                         "35-minute book budget)"),
    "lenet_epochs": Param(5, 6, paper=11, kind=int, low=1,
                          help="LeNet epochs (Adam 1e-3, batch 64): smoke 157, full 375 steps "
                               "(10 epochs, 625 steps, before the 35-minute book budget); "
                               "paper: Caffe's 10k iterations × 64 on 60k digits ≈ 11 epochs"),
    "lrn_variants": Param(["pool1"], ["pool1", "pool2", "both"], kind=list,
                          choices=("pool1", "pool2", "both"), help="LeNet-LRN variants"),
    "fgs_steps": Param(14, 25, kind=int, low=1, help="FGS bisection steps (ε ≤ 100/255)"),
    "n_strong": Param(20, 60, paper=1000, kind=int, low=0,
                      help="test images attacked by the strong attacks (full: 100 before the "
                           "35-minute book budget)"),
    "strong_attacks": Param(["deepfool"], ["deepfool", "pgd_l2", "cw"], kind=list,
                            choices=("deepfool", "pgd_l2", "cw", "lbfgs", "fgv"),
                            help="strong minimum-norm attacks (analysis.attacks.min_norm)"),
    "crown_images": Param(1, 8, kind=int, low=0,
                          help="test images on which Peck's sound chain on LeNet-5 is held against "
                               "CROWN (about 3.5 CPU s per image)"),
    "nin_width": Param(8, 12, kind=int, low=1, help="NIN-lite width w"),
    "nin_train": Param(2000, 8000, paper=60000, kind=int, low=100, high=60000,
                       help="Fashion-MNIST training images of NIN-lite"),
    "nin_epochs": Param(4, 3, kind=int, low=1, help="NIN-lite epochs (Adam 3e-3, batch 32)"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('mnist_train', 'lenet_epochs', 'n_seeds')
