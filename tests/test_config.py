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


@pytest.mark.parametrize("profile", ["", "Full", "papers"])
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


# ---- item 8: list items are type-checked; non-finite numbers, unordered pairs, bad names -----
SCHEMA8 = {
    **common_schema(),
    "eps": Param([0.0, 0.1], kind=list, low=0.0),
    "widths": Param([8, 16], kind=list, low=1),
    "names": Param(["a"], kind=list),
    "grid": Param([], [0.5], kind=list, positive=True),
    "lr": Param(0.1, kind=float, positive=True),
    "eta_min": Param(0.001, kind=float, positive=True),
    "eta_max": Param(0.01, kind=float, positive=True),
    "net": Param("C-2", kind=str, check=lambda n: None if n.startswith("C-") else
                 (_ for _ in ()).throw(ValueError("not a C-Ch name"))),
}


@pytest.mark.parametrize(("over", "pattern"), [
    ({"eps": ["a"]}, r"'eps': item 'a' must be of type float, got str"),
    ({"eps": [0.1, None]}, r"'eps': item None must be of type float"),
    ({"widths": [8, 2.5]}, r"'widths': item 2.5 must be of type int, got float"),
    ({"widths": [True]}, r"'widths': item True must be of type int"),
    ({"names": [1]}, r"'names': item 1 must be of type str"),
    ({"grid": ["x"]}, r"'grid': item 'x' must be of type float"),
    ({"lr": float("inf")}, r"'lr' = inf must be finite"),
    ({"eps": [0.1, float("inf")]}, r"'eps' = inf must be finite"),
    ({"eta_min": 0.1, "eta_max": 0.01}, r"'eta_min' = 0.1 must be <= 'eta_max' = 0.01"),
    ({"net": "FC-1"}, r"'net' = 'FC-1' is not valid: not a C-Ch name"),
])
def test_item_types_finiteness_pairs_and_checks(over, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate(SCHEMA8, "smoke", over)


def test_valid_lists_and_pairs_pass():
    c = validate(SCHEMA8, "smoke", {"eps": [0, 0.5], "grid": [1, 2.5], "eta_min": 0.01,
                                    "eta_max": 0.01, "net": "C-16"})
    assert c.eps == [0, 0.5] and c.grid == [1, 2.5] and c.net == "C-16"
    assert validate(SCHEMA8, "full", {}).grid == [0.5]


@pytest.mark.parametrize("chapter", ["00_toolkit", "01_warwick_rnn", "02_fisher_jacobian",
                                     "03_peck_bounds", "04_persistence_pathkernel",
                                     "05_hessian_crossholder"])
def test_every_chapter_profile_validates(chapter):
    for profile in ("smoke", "full", "paper"):
        assert len(config.resolve(chapter, profile)) == len(config.schema_for(chapter))


def test_paper_profile_falls_back_to_full_then_smoke():
    schema = {"a": config.Param(1, 2, paper=3, kind=int), "b": config.Param(1, 2, kind=int),
              "c": config.Param(1, kind=int)}
    assert [validate(schema, "paper", {})[k] for k in "abc"] == [3, 2, 1]
    assert validate(schema, "full", {}).a == 2 and validate(schema, "smoke", {}).a == 1
    with pytest.raises(ValueError, match="'a' = -1 must be >= 0"):
        validate({"a": config.Param(1, 2, paper=-1, kind=int, low=0)}, "paper", {})
