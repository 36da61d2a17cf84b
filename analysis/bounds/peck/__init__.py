"""Peck (2017): layer-wise lower bounds on adversarial perturbation norms (chapter 03).

* :mod:`analysis.bounds.peck.rules`: the bounds (linear, MLP/Taylor, convolution, pooling,
  batch norm, LRN; ``published``/``corrected``/``sound``), their composition (Alg 5.1) and the
  §5.4 corollaries.
* the thesis's experiments (random linear classifiers and MLPs, trained MLPs, CNN
  bound-vs-attack comparison, brute-force ray search in 2-D) are in
  :mod:`analysis.experiments.peck`.
"""

from analysis.bounds.peck.rules import *  # noqa: F401,F403
from analysis.bounds.peck.rules import (  # noqa: F401
    ACTIVATIONS,
    DT,
    LRN,
    VARIANTS,
    ChainResult,
    LinearBound,
    MarginRegularizer,
    MLPBound,
    _act_grad,
    _pair,
)
