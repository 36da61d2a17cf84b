"""Robustness bounds, one module per document.

* :mod:`analysis.bounds.curvature`: Warwick, Thm 3.0.1 (curvature bounds on the minimal perturbation).
* :mod:`analysis.bounds.probabilistic`: Warwick, Thm 4.0.1 / Lemma 4.0.1 / Alg 1 (misclassification on
  a ρ-sphere, Monte Carlo).
* :mod:`analysis.bounds.fisher`: Fisher-Rao geometry of the simplex, the exact distance to the
  decision boundary and certified radii (Fisher-Jacobian draft, spec 001).
"""
