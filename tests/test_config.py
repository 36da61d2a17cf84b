import pytest

from analysis import config
from analysis.config import Param, common_schema, validate

SCHEMA = {
    **common_schema(),
    "n_train": Param(100, 4000, kind=int, low=1, help="training images"),
    "eps": Param(0.1, 0.3, kind=float, low=0.0),
    "widths": Param([8], [64, 64], kind=list, low=1),
    "mode": Param("a", kind=str, choices=("a", "b")),
    "clip": Param(None, kind=float, nullable=True, positive=True),
}


def test_profiles_expand():
    s = validate(SCHEMA, "smoke", {})
    f = validate(SCHEMA, "full", {})
    assert (s.n_train, f.n_train) == (100, 4000)
    assert (s.eps, f.eps) == (0.1, 0.3)
    assert f.widths == [64, 64] and s.mode == f.mode == "a"
    assert s.seed == 0 and s.device == "auto" and s.data_source == "embedded"


def test_overrides_and_none_means_default():
    c = validate(SCHEMA, "smoke", {"n_train": 7, "eps": None})
    assert c.n_train == 7 and c.eps == 0.1
    assert validate(SCHEMA, "smoke", {"eps": 1}).eps == 1.0  # int accepted for float
    assert c.as_dict()["profile"] == "smoke"


@pytest.mark.parametrize("profile", ["", "Full", "paper"])
def test_unknown_profile(profile):
    with pytest.raises(ValueError, match="unknown profile .* valid profiles"):
        validate(SCHEMA, profile, {})


@pytest.mark.parametrize(("over", "pattern"), [
    ({"n_trian": 5}, r"unknown parameter\(s\) \['n_trian'\].*valid"),
    ({"n_train": 0}, r"'n_train' = 0 must be >= 1"),
    ({"n_train": 2.0}, r"'n_train' must be an int"),
    ({"n_train": "10"}, r"'n_train' must be of type int"),
    ({"eps": -0.1}, r"'eps' = -0.1 must be >= 0"),
    ({"eps": float("nan")}, r"'eps' is NaN"),
    ({"mode": "c"}, r"'mode' = 'c' is not one of \['a', 'b'\]"),
    ({"device": "tpu"}, r"'device' = 'tpu' is not one of"),
    ({"widths": [8, 0]}, r"'widths' = 0 must be >= 1"),
    ({"clip": 0.0}, r"'clip' = 0.0 must be > 0"),
    ({"seed": True}, r"'seed' must be of type int"),
])
def test_bad_values_name_the_parameter(over, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate(SCHEMA, "smoke", over)


def test_nullable_and_folder_source():
    assert validate(SCHEMA, "smoke", {}).clip is None
    assert validate(SCHEMA, "smoke", {"data_source": "/data/mnist"}).data_source == "/data/mnist"


def test_config_is_read_only():
    c = validate(SCHEMA, "smoke", {})
    with pytest.raises(AttributeError):
        c.n_train = 3
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        _ = c.nope


def test_unknown_chapter():
    with pytest.raises(ValueError, match="unknown chapter 'zz_nothing'"):
        config.resolve("zz_nothing", "smoke")


def test_progress_switch(monkeypatch):
    from analysis import env
    monkeypatch.setenv("ANALYSIS_PROGRESS", "1")
    assert env.progress_enabled() and env.progress_enabled(True) and not env.progress_enabled(False)
    for off in ("0", "off", "False"):
        monkeypatch.setenv("ANALYSIS_PROGRESS", off)
        assert not env.progress_enabled() and not env.progress_enabled(True)
