"""Chapter 02: the Fisher-metric Jacobian regulariser (spec 001). Smoke < 3 min, full < 20 min.

For the 35-minute book budget (issue 14) ``full`` cuts the costliest parts of the 12.5-minute
full run that do not train the vanilla and regularised seeds (those keep 3 seeds, 3 500 images
and 12 epochs): the Hoffman λ grid ``hoffman_lams`` 5 → 3 values (every other one, both ends
kept; those 5 runs were 200 of the 446 s of training), the η sensitivity ``eta_max_grid``
2 → 1 value (0.06), the attacked images ``n_attack`` 200 → 100 and the minimal-distance
images ``n_minnorm`` 60 → 20 (the 216 s of evaluation, over half of it the minimal-distance
search). ``paper`` keeps the old values (or the document's).
"""

from dataclasses import replace

from analysis.config import Param, common_schema

_COMMON = common_schema(("embedded", "torchvision"))

SCHEMA = {
    **_COMMON,
    # the document trains on the full MNIST (60 000 / 10 000): torchvision under `paper`
    "data_source": replace(_COMMON["data_source"], paper="torchvision"),
    # toy (spec 3.1)
    "toy_n": Param(280, 700, kind=int, low=20,
                   help="toy training points (70 % of the set; the spec's 1000 = 700 + 300)"),
    "toy_steps": Param(300, 1000, kind=int, low=1, help="full-batch Adam steps on the toy"),
    "toy_eps": Param([0.3], [0.1, 0.3], kind=list, positive=True,
                     help="toy training radii eps (true L2 radii); the first is plotted"),
    "toy_eta": Param(0.05, kind=float, low=0.0, high=1.0, help="fixed eta on the toy"),
    "toy_test": Param(24, 80, kind=int, low=6, help="toy test points for r*, r_loc"),
    "toy_rays": Param(120, 360, kind=int, low=8, help="rays of the exact-radius search"),
    "toy_step": Param(0.02, kind=float, positive=True, help="ray marching step"),
    "toy_loc_grid": Param([24, 8], [32, 10], kind=list, low=1,
                          help="polar grid (angles, radii) of the local sup in r_loc"),
    # MNIST (spec 3.2)
    "n_train": Param(1000, 3500, paper=55000, kind=int, low=10,
                     help="MNIST training images (n_train + n_val <= the training pool: 4000 "
                          "embedded, 60000 torchvision; the document trains on all 60000, the "
                          "paper profile keeps 5000 of them for the validation split)"),
    "n_val": Param(200, 500, paper=5000, kind=int, low=10,
                   help="held-out training images on which the Hoffman lambda is matched"),
    "n_test": Param(200, 1000, paper=10000, kind=int, low=10,
                    help="MNIST test images (document: 10000)"),
    "epochs": Param(3, 12, paper=30, kind=int, low=1,
                    help="epochs of each MNIST model (document: 30)"),
    "n_seeds": Param(1, 3, kind=int, low=1,
                     help="training seeds (seed, seed+1, ...) of vanilla and regularised for "
                          "the Table 1 and Fig. 1 claims"),
    "batch_size": Param(32, kind=int, low=1, help="SGD batch size (document: 32)"),
    "lr": Param(0.05, 0.01, kind=float, positive=True,
                help="SGD learning rate (document: 0.01; smoke 0.05 so 3 epochs learn)"),
    "estimator": Param("rp", kind=str, choices=("rp", "exact", "subbatch", "exact_svd"),
                       help="Jacobian-norm estimator of the regulariser"),
    "delta_over_eps": Param(1e-3, kind=float, positive=True, help="document's delta_m/eps"),
    "eta_min": Param(0.002, kind=float, positive=True, high=1.0),
    "eta_max": Param(0.006, kind=float, positive=True, high=1.0),
    "eta_max_grid": Param([], [0.06], paper=[0.02, 0.06], kind=list, positive=True,
                          help="extra eta_max values (sensitivity row; full [0.02, 0.06] → "
                               "[0.06] for the 35-minute book budget)"),
    "hoffman_lams": Param([0.05], [0.1, 1.5, 3.0], paper=[0.1, 1.0, 1.5, 2.0, 3.0], kind=list,
                          low=0.0,
                          help="Hoffman lambda grid; the one closest in clean accuracy is kept "
                               "(full [0.1, 1, 1.5, 2, 3] → [0.1, 1.5, 3] for the 35-minute "
                               "book budget)"),
    # attacks (spec 3.3)
    "n_attack": Param(40, 100, paper=10000, kind=int, low=4,
                      help="test images attacked (document: the whole test set; full 200 → 100 "
                           "for the 35-minute book budget)"),
    "pgd_steps": Param(20, 40, kind=int, low=1, help="PGD-Linf iterations (document: 40)"),
    "eps_linf": Param([0.1, 0.2, 0.3], kind=list, positive=True),
    "eps_l2": Param([1.0, 2.0], [0.5, 1.0, 1.5, 2.0, 3.0], kind=list, positive=True),
    "l2_steps": Param(10, 30, kind=int, low=1, help="PGD-L2 iterations"),
    "n_minnorm": Param(10, 20, paper=60, kind=int, low=2,
                       help="images for the minimal-distance search (full 60 → 20 for the "
                            "35-minute book budget)"),
    "minnorm_attacks": Param(["deepfool", "pgd_l2"], ["deepfool", "cw", "pgd_l2"], kind=list,
                             choices=("deepfool", "cw", "pgd_l2", "fgv"),
                             help="attacks of the minimal-distance search"),
    "cost_batches": Param(1, 3, kind=int, low=1,
                          help="timed SGD steps per estimator and repeat"),
    "cost_repeats": Param(3, 5, kind=int, low=2,
                          help="interleaved repeats of the step timing (the interval is over "
                               "repeats)"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('n_train', 'epochs')
