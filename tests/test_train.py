"""Tests of analysis.train: learning, determinism, caching, resuming, regulariser logs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis import cache, data, train

MLP = {"in_shape": (4,), "widths": (16,), "num_classes": 3}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread (two threads on a busy 2-core machine are ~50x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def blobs():
    return data.synthetic("blobs", 240, 4, seed=0, num_classes=3, sep=4.0)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _weights(model):
    return [v.detach().clone() for v in model.state_dict().values()]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


class LogitPenalty:
    """A toy regulariser: lam * mean squared logit, logging the unscaled value."""

    name = "logit_penalty"

    def __init__(self, lam: float):
        self.lam = lam
        self.params = {"lam": lam}

    def __call__(self, model, x, y, logits):
        sq = logits.pow(2).mean()
        return self.lam * sq, {"logit_sq": sq.detach()}


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer"):
        train.TrainConfig(epochs=1, optimizer="adagrad")
    with pytest.raises(ValueError, match="epochs"):
        train.TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        train.TrainConfig(epochs=1, schedule="linear")
    cos = train.TrainConfig(epochs=4, lr=1.0, schedule="cosine")
    assert [cos.lr_at(e) for e in range(4)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    step = train.TrainConfig(epochs=4, lr=1.0, schedule="step", gamma=0.5)
    assert [step.lr_at(e) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]


def test_learns_separable_blobs(blobs):
    cfg = train.TrainConfig(epochs=8, batch_size=32, lr=1e-2, seed=0)
    res = train.fit("mlp", MLP, blobs, cfg, cache=False)
    chance = 1 / 3
    assert res.history[-1]["test_acc"] > chance + 0.4
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert not res.model.training and not res.from_cache
    assert [r["epoch"] for r in res.history] == list(range(1, 9))
    for key in ("loss", "reg", "train_acc", "test_acc", "seconds", "lr"):
        assert key in res.history[0]
    # the history's final accuracy is the returned model's accuracy
    assert train.accuracy(res.model, blobs.x_test, blobs.y_test) == res.history[-1]["test_acc"]


def test_seeded_fits_are_identical_and_seed_matters(blobs):
    cfg = train.TrainConfig(epochs=2, batch_size=32, lr=1e-2, optimizer="sgd", seed=5)
    a = train.fit("mlp", MLP, blobs, cfg, cache=False)
    b = train.fit("mlp", MLP, blobs, cfg, cache=False)
    c = train.fit("mlp", MLP, blobs, train.TrainConfig(epochs=2, batch_size=32, lr=1e-2,
                                                       optimizer="sgd", seed=6), cache=False)
    assert _same(_weights(a.model), _weights(b.model))
    assert not _same(_weights(a.model), _weights(c.model))


def test_fit_leaves_caller_rng_untouched(blobs):
    torch.manual_seed(11)
    np.random.seed(11)
    expected = (torch.rand(2), np.random.rand(2))
    torch.manual_seed(11)
    np.random.seed(11)
    train.fit("linear", {"in_shape": (4,), "num_classes": 3}, blobs,
              train.TrainConfig(epochs=1), cache=False)
    assert torch.equal(torch.rand(2), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1])


def test_cache_hit_identical_weights(blobs, tmp_cache):
    cfg = train.TrainConfig(epochs=2, batch_size=64, lr=1e-2)
    first = train.fit("mlp", MLP, blobs, cfg)
    assert not first.from_cache and any(tmp_cache.rglob("*.pt"))
    second = train.fit("mlp", MLP, blobs, cfg)
    assert second.from_cache
    assert _same(_weights(first.model), _weights(second.model))
    assert second.history == first.history and second.seconds == first.seconds
    assert not second.model.training
    # any part of the key misses: the config, the model arguments, the data
    assert not train.fit("mlp", MLP, blobs, train.TrainConfig(epochs=2, batch_size=64,
                                                              lr=2e-2)).from_cache
    assert not train.fit("mlp", {**MLP, "widths": (8,)}, blobs, cfg).from_cache
    assert not train.fit("mlp", MLP, blobs.subset(n_train=120), cfg).from_cache
    # cache=False neither reads nor reports a hit
    assert not train.fit("mlp", MLP, blobs, cfg, cache=False).from_cache


def test_regulariser_logs_and_key(blobs, tmp_cache):
    cfg = train.TrainConfig(epochs=2, batch_size=64, lr=1e-2)
    res = train.fit("mlp", MLP, blobs, cfg, regularizer=LogitPenalty(0.1))
    for row in res.history:
        assert row["reg"] == pytest.approx(0.1 * row["logit_sq"], rel=1e-5)
        assert row["loss"] == pytest.approx(row["ce"] + row["reg"], rel=1e-5)
        assert row["reg"] > 0
    # the regulariser's parameters are part of the key, and so is its presence
    assert train.fit("mlp", MLP, blobs, cfg, regularizer=LogitPenalty(0.1)).from_cache
    assert not train.fit("mlp", MLP, blobs, cfg, regularizer=LogitPenalty(0.2)).from_cache
    plain = train.fit("mlp", MLP, blobs, cfg)
    assert not plain.from_cache and plain.history[0]["reg"] == 0.0


def test_objective_replaces_the_loss(blobs):
    calls = []

    def half_ce(model, x, y):
        calls.append(len(x))
        ce = torch.nn.functional.cross_entropy(model(x), y)
        return 0.5 * ce, {"ce": ce.detach(), "batch": float(len(x))}

    res = train.fit("mlp", MLP, blobs, train.TrainConfig(epochs=1, batch_size=100),
                    objective=half_ce, cache=False)
    assert calls == [100, 100, 40]
    row = res.history[0]
    assert row["loss"] == pytest.approx(0.5 * row["ce"], rel=1e-5)
    assert row["batch"] == pytest.approx((100 * 100 + 100 * 100 + 40 * 40) / 240)


def test_resume_from_checkpoint_equals_uninterrupted(blobs, tmp_cache, monkeypatch):
    cfg = train.TrainConfig(epochs=3, batch_size=32, lr=1e-2, schedule="cosine", seed=1)
    full = train.fit("mlp", MLP, blobs, cfg, cache=False)

    # interrupt the cached run in epoch 3 (after two finished epochs were checkpointed)
    real_accuracy = train.accuracy
    evals = {"n": 0}

    def failing_accuracy(*args, **kwargs):
        evals["n"] += 1
        if evals["n"] == 5:  # the 3rd epoch's train-accuracy evaluation
            raise KeyboardInterrupt
        return real_accuracy(*args, **kwargs)

    monkeypatch.setattr(train, "accuracy", failing_accuracy)
    with pytest.raises(KeyboardInterrupt):
        train.fit("mlp", MLP, blobs, cfg)
    monkeypatch.setattr(train, "accuracy", real_accuracy)
    n_ckpt = len(list(tmp_cache.rglob("*.pt")))
    assert n_ckpt == 2  # epochs 1 and 2

    counted = {"n": 0}

    def counting_accuracy(*args, **kwargs):
        counted["n"] += 1
        return real_accuracy(*args, **kwargs)

    monkeypatch.setattr(train, "accuracy", counting_accuracy)
    resumed = train.fit("mlp", MLP, blobs, cfg)
    assert counted["n"] == 2  # only epoch 3 was trained (and evaluated) again
    assert not resumed.from_cache
    assert _same(_weights(resumed.model), _weights(full.model))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert [r["test_acc"] for r in resumed.history] == [r["test_acc"] for r in full.history]
    # checkpoints are removed once the final entry is stored
    assert len(list(tmp_cache.rglob("*.pt"))) == 1


def test_cache_off(blobs, monkeypatch, tmp_path):
    monkeypatch.setenv("ANALYSIS_CACHE", "off")
    cfg = train.TrainConfig(epochs=1)
    assert not train.fit("linear", {"in_shape": (4,), "num_classes": 3}, blobs, cfg).from_cache
    assert not train.fit("linear", {"in_shape": (4,), "num_classes": 3}, blobs, cfg).from_cache
    assert cache.cache_dir() is None


def test_unknown_model_and_device(blobs):
    with pytest.raises(ValueError, match="unknown model"):
        train.fit("perceptron", {}, blobs, train.TrainConfig(epochs=1), cache=False)
    with pytest.raises(ValueError, match="device"):
        train.fit("linear", {"in_shape": (4,), "num_classes": 3}, blobs,
                  train.TrainConfig(epochs=1), device="tpu", cache=False)


def test_predict_and_accuracy_batches(blobs):
    res = train.fit("linear", {"in_shape": (4,), "num_classes": 3}, blobs,
                    train.TrainConfig(epochs=1), cache=False)
    full = res.model(blobs.x_test).detach()
    assert torch.allclose(train.predict(res.model, blobs.x_test, batch_size=7), full, atol=1e-6)
    acc = (full.argmax(1) == blobs.y_test).float().mean().item()
    assert train.accuracy(res.model, blobs.x_test, blobs.y_test, batch_size=7) == pytest.approx(acc)
