"""Ground truth on small networks: certified radii (IBP, CROWN, Lipschitz margin) and exact
minimal adversarial distances (MILP / MIQP).

A network (an ``nn.Sequential``, nested allowed, or a module with a ``.net`` Sequential such as
:class:`analysis.models.MLP`) is read into an alternating chain of *affine* maps and
*nonlinear* layers (:func:`network`): runs of Linear, Conv2d, AvgPool2d, global average
pooling, eval-mode BatchNorm, Flatten, Identity and Dropout (eval) are composed into one affine
map ``z = A h + b`` (BatchNorm is thereby folded in); ReLU, Tanh and MaxPool2d are the
nonlinear layers. All computation is in float64 on the CPU unless a ``dtype`` says otherwise.

Input sets. A perturbation ball ``{x : ‖x − x₀‖ ≤ ε}`` (``norm`` ``"linf"`` or ``"l2"``;
inputs in the units of the data, pixels in [0, 1]) optionally intersected with a box
``lo ≤ x ≤ hi`` (``box=(0, 1)`` for images; ``None`` for standardised tabular data). The
minimum of a linear function over ball ∩ box is exact for L∞ (the set is a box); for L2 we
take the larger of the minima over the ball and over the box, a sound (not always tight)
lower bound.

Certificates (all *lower* bounds on the minimal adversarial distance in ``norm``):

* :func:`ibp_radius`: interval bound propagation (Gowal et al. 2018); the first affine map is
  bounded exactly (dual norm of each row), intervals after that.
* :func:`crown_radius`: CROWN (Zhang et al. 2018): linear lower/upper relaxations of every
  nonlinear layer, propagated backwards to the input, with intermediate bounds computed by the
  same backward pass; the margin specification ``f_y − f_j`` is folded into the last affine
  map. ReLU: upper chord, lower slope 0 or 1 (the larger side, as in CROWN-Ada). Tanh: for a
  slope ``k`` the offsets are the exact extrema of ``tanh(z) − k z`` on ``[l, u]`` (endpoints
  and the stationary points ``±atanh(√(1 − k))``), so every line is sound by construction;
  ``k`` is the chord slope, or the tangent slope at the midpoint on the concave (convex) side
  when ``[l, u]`` does not cross 0. Max pooling: lower ``max ≥ z_j`` (``j`` the largest lower
  bound), upper ``max = z_j`` when that input dominates the others, else the constant ``max u``
  (DeepPoly's relaxation).
* :func:`lipschitz_radius`: Tsuzuku et al. 2018: ``margin / (√2 L)`` with ``L`` the product of
  the exact operator 2-norms of the affine maps (Lipschitz constant 1 for ReLU, tanh and
  non-overlapping max pooling; ``√m`` where a pixel lies in ``m`` pooling windows); L2 only,
  no box.

Radii are found by bisection on ε: the returned radius was itself certified (a bound that is
not monotone in ε cannot make it unsound), and is within ``rtol`` of the largest certifiable ε
on the bisection's bracket.

Exact distances: :func:`exact_distance` solves ``min ‖x − x₀‖`` s.t. ``f_j(x) ≥ f_y(x)`` for each
target class ``j`` (one program per class) over a ReLU / max-pool network, with binary variables
for the unstable ReLUs and max-pool arguments (big-M constants from CROWN bounds over the box
``[x₀ − U, x₀ + U] ∩ box``, where ``U`` is the distance of a known adversarial point: every
point closer than it lies there, as ‖·‖∞ ≤ ‖·‖_p; for L2 also over the ball itself, with the
objective capped at the best distance so far and the domain shrunk to it, ``prune=True``). L∞ and L1: ``scipy.optimize.milp`` (HiGHS);
L2: ``pyscipopt`` (SCIP) on the epigraph of the squared distance. With a time limit the result
is a bracket ``[lower, upper]`` (``lower``: the solver's dual bound, certified up to the solver's
feasibility tolerance 1e-6 on the logit constraint; ``upper``: the distance of a point that the
model, re-evaluated in float64, misclassifies) and a status ``"solved"`` (relative gap ≤
``gap_tol``) or ``"gap"``.

Modules: :mod:`~analysis.verify.network` (the chain), :mod:`~analysis.verify.relax` (the
relaxations and CROWN's backward steps), :mod:`~analysis.verify.patches` (CROWN's backward
pass through image layers with each row kept as a patch of its receptive field:
``conv_transpose2d`` per patch, max pooling fused with the convolution before it),
:mod:`~analysis.verify.crown` (CROWN / IBP bounds and radii), :mod:`~analysis.verify.lipschitz` (operator norms, the Lipschitz margin),
:mod:`~analysis.verify.exact` (MILP / MIQP); this package exports their public names.
"""

from analysis.verify.crown import (
    Radius,
    certified_radius,
    crown_bounds,
    crown_radius,
    ibp_bounds,
    ibp_radius,
)
from analysis.verify.exact import Exact, exact_distance
from analysis.verify.lipschitz import lipschitz_constant, lipschitz_radius, operator_norm
from analysis.verify.network import DT, Affine, Network, Nonlinear, network
from analysis.verify.relax import relu_relaxation, tanh_relaxation

__all__ = ["DT", "Affine", "Exact", "Network", "Nonlinear", "Radius", "certified_radius",
           "crown_bounds", "crown_radius", "exact_distance", "ibp_bounds", "ibp_radius",
           "lipschitz_constant", "lipschitz_radius", "network", "operator_norm",
           "relu_relaxation", "tanh_relaxation"]
