"""Parameters of chapter 00, the toolkit: data sets, reference models, attack-suite checks.

``smoke`` runs in well under 3 minutes on a 2-core CPU (the nbval reference); ``full`` is the
book's run (about 5.5 minutes on the same machine, one thread; for the 35-minute book
budget, issue 14, the exact programs of the ground-truth section were made cheaper, same
minima, and ``n_attack`` was cut 500 → 300 by cost); ``paper`` the sizes of the standard
evaluations (C&W's 1 000 Adam steps and 9 binary steps, 100 PGD steps, 1 000 attacked images),
meant for a GPU.
"""

from analysis.config import Param, common_schema

SCHEMA = {
    **common_schema(("embedded", "torchvision")),
    "epochs": Param(3, 10, paper=20, kind=int, low=1, help="training epochs of the MNIST reference models"),
    "batch_size": Param(128, kind=int, low=1, help="training minibatch size"),
    "cnn_channels": Param([8, 16], [16, 32], kind=list, low=1,
                          help="channels of the two convolutions of cnn_small"),
    "cnn_hidden": Param(64, 100, kind=int, low=1, help="hidden FC width of cnn_small"),
    "rnn_hidden": Param(64, 128, kind=int, low=1, help="hidden units of rnn_rows"),
    "rnn_epochs": Param(6, 30, kind=int, low=1,
                        help="training epochs of rnn_rows (a tanh RNN learns slowly)"),
    "fashion_n_train": Param(5000, 60000, paper=60000, kind=int, low=100, high=60000,
                             help="Fashion-MNIST training images used (stratified subsample)"),
    "fashion_epochs": Param(3, 6, kind=int, low=1, help="training epochs on Fashion-MNIST"),
    "n_attack": Param(100, 300, paper=1000, kind=int, low=1, high=1000,
                      help="MNIST test images attacked for the robust-accuracy curves (full: "
                           "500 before the 35-minute book budget)"),
    "n_minnorm": Param(20, 150, paper=1000, kind=int, low=1, high=1000,
                       help="MNIST test images of the minimal-distance table (per model)"),
    "n_linear": Param(60, 300, kind=int, low=1, high=1000,
                      help="MNIST test images of the linear-classifier check"),
    "n_gallery": Param(4, 6, kind=int, low=1, high=12, help="images in the attack gallery"),
    "pgd_steps": Param(10, 40, paper=100, kind=int, low=1, help="PGD steps per radius"),
    "cw_steps": Param(40, 100, paper=1000, kind=int, low=1, help="Adam steps per c of C&W-L2"),
    "cw_binary_steps": Param(4, 5, paper=9, kind=int, low=1, help="values of c tried by C&W-L2"),
    "eps_linf": Param([0.0, 0.05, 0.1, 0.2, 0.3],
                      [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3],
                      kind=list, low=0.0, high=1.0, help="Linf radii of the PGD curves (pixels)"),
    "n_unit_test": Param(20, 100, paper=1000, kind=int, low=2, high=1000,
                         help="MNIST test images of the planted-adversarial attack unit test"),
    "unit_eps_linf": Param(0.1, kind=float, low=0.0, high=0.5,
                           help="L∞ radius of the attack unit test (pixels)"),
    "unit_eps_l2": Param(1.0, kind=float, low=0.0,
                         help="L2 radius of the attack unit test (pixels)"),
    "eps_l2": Param([0.0, 0.5, 1.0, 2.0, 3.0],
                    [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
                    kind=list, low=0.0, help="L2 radii of the PGD curves (pixels)"),
}

# What the chapter's time is taken to grow with (a product; analysis.run's rough estimate of a
# run's cost from the last logged run of this chapter on the machine).
COST_DRIVERS = ('epochs', 'n_attack')
