"""Input-gradient regularisers: each a small class with ``name``, ``params`` and
``__call__(model, x, y, logits) -> Tensor | (Tensor, dict)`` for :func:`analysis.train.fit`.

One module per family; re-exported here (chapters append their lines).
"""

from analysis.regularizers.crossholder import CrossHolder, CrossLipschitz, PGDTraining  # noqa: F401
from analysis.regularizers.fisher import FisherJacobian, eta_schedule, fisher_alpha  # noqa: F401
from analysis.regularizers.hessian import HessianRegularizer, hessian_frobenius_sq  # noqa: F401
from analysis.regularizers.jacobian import JacobianRegularizer, jacobian_frobenius_sq  # noqa: F401
