"""Test helper shared by the checkpoint-resume tests: a training run stopped part-way.

Test modules import it as ``from interrupted_fit import fit_interrupted`` (pytest puts the tests
folder on ``sys.path``, which has no ``__init__.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from analysis import train


def fit_interrupted(monkeypatch: pytest.MonkeyPatch, *args: Any, at_evaluation: int = 5,
                    **kwargs: Any) -> None:
    """Run ``train.fit(*args, **kwargs)`` and stop it with ``KeyboardInterrupt`` at the
    ``at_evaluation``-th call of ``train.accuracy``.

    ``fit`` evaluates twice an epoch (train and test accuracy), so the default 5 stops the third
    epoch's evaluation: epochs 1 and 2 are checkpointed, epoch 3 is not. Fails if the run ends
    without being interrupted; ``train.accuracy`` is the real one again afterwards.
    """
    real_accuracy, evals = train.accuracy, {"n": 0}

    def failing_accuracy(*a: Any, **k: Any) -> Any:
        evals["n"] += 1
        if evals["n"] == at_evaluation:
            raise KeyboardInterrupt
        return real_accuracy(*a, **k)

    monkeypatch.setattr(train, "accuracy", failing_accuracy)
    try:
        with pytest.raises(KeyboardInterrupt):
            train.fit(*args, **kwargs)
    finally:
        monkeypatch.setattr(train, "accuracy", real_accuracy)
