"""Tabulated TreeSHAP gives LightGBM's ``pred_contrib`` numbers, quirks of its routing included."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn_assets.modeling.contributions import compile_contributions, tree_contributions

TOLERANCE = 1e-9
# LightGBM's kZeroThreshold as a double: a threshold LightGBM often puts next to zero.
ZERO = float(np.float32(1e-35))


def _assert_same(booster: lgb.Booster, x: np.ndarray | pd.DataFrame, **kwargs: int) -> None:
    """Equal to pred_contrib (bias column included), and each row sums to the raw score."""
    expected = booster.predict(x, pred_contrib=True, **kwargs)
    got = tree_contributions(booster, x, **kwargs)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE
    raw = booster.predict(x, raw_score=True, **kwargs)
    assert np.abs(got.sum(axis=1) - raw).max() <= 1e-9


def _rows(n: int, seed: int, features: int = 6) -> np.ndarray:
    """Values with NaNs, exact zeros, values at LightGBM's zero threshold, and negatives."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    x[:, 1] = rng.integers(-2, 4, n)  # integers: many exact zeros
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] = 0.0
    tiny = rng.random(x.shape) < 0.02
    x[tiny] = rng.choice([ZERO, -ZERO, 1e-40, -1e-40], size=int(tiny.sum()))
    return x


def _labels(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(x[:, 0]) + 0.7 * np.nan_to_num(x[:, 1]) - np.isnan(x[:, 2])
    return (signal + rng.normal(size=len(x)) > 0.5).astype(int)


def _train(params: dict, rounds: int, x: np.ndarray, seed: int = 0, **dataset: object):
    base = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5, "seed": seed}
    return lgb.train({**base, **params}, lgb.Dataset(x, _labels(x, seed), **dataset), rounds)


# --- Hand-written trees: each routing rule of LightGBM's tree.h on its own. ---

# decision_type bits: 1 categorical, 2 default left, missing type << 2 (None 0, Zero 1, NaN 2).
NONE, NONE_LEFT, ZERO_RIGHT, ZERO_LEFT, NAN_RIGHT, NAN_LEFT = 0, 2, 4, 6, 8, 10


def _model(trees: list[dict], features: int = 3) -> lgb.Booster:
    """A booster from hand-written trees (LightGBM's text format)."""
    blocks = []
    for index, tree in enumerate(trees):
        lines = [f"Tree={index}", f"num_leaves={len(tree['leaf_value'])}"]
        lines.append(f"num_cat={tree.get('num_cat', 0)}")
        for key, values in tree.items():
            if key != "num_cat":
                lines.append(f"{key}=" + " ".join(repr(v) for v in values))
        lines += ["is_linear=0", "shrinkage=1", ""]
        blocks.append("\n".join(lines))
    header = [
        "tree",
        "version=v4",
        "num_class=1",
        "num_tree_per_iteration=1",
        "label_index=0",
        f"max_feature_idx={features - 1}",
        "objective=regression",
        "feature_names=" + " ".join(f"f{i}" for i in range(features)),
        "feature_infos=" + " ".join("[-10:10]" for _ in range(features)),
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(blocks) + "\nend of trees\n"
    return lgb.Booster(model_str=text)


def _three_leaves(decision_type: int, threshold: float, feature: int = 0) -> dict:
    """Root on ``feature`` (the tested rule), then feature 1 on the right."""
    return {
        "split_feature": [feature, 1],
        "split_gain": [1, 1],
        "threshold": [threshold, 0.5],
        "decision_type": [decision_type, NONE],
        "left_child": [-1, -2],
        "right_child": [1, -3],
        "leaf_value": [0.3, -0.2, 0.9],
        "leaf_weight": [1, 1, 1],
        "leaf_count": [40, 25, 35],
        "internal_value": [0, 0],
        "internal_weight": [1, 1],
        "internal_count": [100, 60],
    }


EDGE_VALUES = np.array([np.nan, 0.0, -0.0, ZERO, -ZERO, 1e-40, -1e-40, -1.0, 0.25, 1.0, 5.0])


def _edge_rows(column: int) -> np.ndarray:
    """Every edge value in ``column``, against both sides of feature 1's split."""
    x = np.zeros((2 * len(EDGE_VALUES), 3))
    x[:, column] = np.tile(EDGE_VALUES, 2)
    x[:, 1] = np.repeat([0.0, 1.0], len(EDGE_VALUES))
    return x


@pytest.mark.parametrize(
    "decision_type", [NONE, NONE_LEFT, ZERO_RIGHT, ZERO_LEFT, NAN_RIGHT, NAN_LEFT]
)
@pytest.mark.parametrize("threshold", [0.5, ZERO, -ZERO, -0.5])
def test_numerical_routing_matches_each_missing_type(decision_type: int, threshold: float):
    booster = _model([_three_leaves(decision_type, threshold)])
    _assert_same(booster, _edge_rows(0))


def test_feature_split_twice_on_a_path():
    """Covers multiply and conditions combine when one feature splits twice on a path."""
    tree = {
        "split_feature": [0, 1, 0],
        "split_gain": [1, 1, 1],
        "threshold": [0.5, 0.0, -1.0],
        "decision_type": [NAN_LEFT, NONE, ZERO_RIGHT],
        "left_child": [1, 2, -1],
        "right_child": [-2, -3, -4],
        "leaf_value": [0.5, -0.4, 0.2, 1.1],
        "leaf_weight": [1, 1, 1, 1],
        "leaf_count": [10, 30, 25, 35],
        "internal_value": [0, 0, 0],
        "internal_weight": [1, 1, 1],
        "internal_count": [100, 70, 45],
    }
    x = np.array(np.meshgrid(EDGE_VALUES, [-1.0, 0.0, np.nan, 2.0], [0.0])).reshape(3, -1).T
    _assert_same(_model([tree, _three_leaves(NONE, 0.1, feature=2)]), x)


def test_categorical_split_reads_the_bitset_as_lightgbm_does():
    """Categories 0, 1, 3 and 33 go left; NaN, negatives, fractions and huge codes as in tree.h."""
    tree = _three_leaves(1, 0)
    tree["num_cat"] = 1
    tree["cat_boundaries"] = [0, 2]
    tree["cat_threshold"] = [1 | (1 << 1) | (1 << 3), 1 << 1]
    values = [np.nan, -1.0, -0.5, 0.0, 0.7, 1.0, 1.9, 2.0, 3.0, 33.0, 64.0, 3e9, -3e9]
    x = np.zeros((2 * len(values), 3))
    x[:, 0] = np.tile(values, 2)
    x[:, 1] = np.repeat([0.0, 1.0], len(values))
    _assert_same(_model([tree]), x)


def test_single_leaf_tree_adds_only_to_the_expected_value():
    stump = {"leaf_value": [0.75]}
    booster = _model([_three_leaves(NAN_LEFT, 0.0), stump])
    _assert_same(booster, _edge_rows(0))


# --- Trained models: the shapes batch scoring explains, and LightGBM's training options. ---


@pytest.mark.parametrize(
    ("params", "rounds"),
    [
        ({"num_leaves": 4}, 200),  # today's champions
        ({"num_leaves": 63, "max_depth": 8}, 300),  # a deep model
    ],
    ids=["200x4", "300x63"],
)
def test_the_two_benchmark_shapes(params: dict, rounds: int):
    booster = _train(params, rounds, _rows(2000, 1))
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) == params["num_leaves"]
    _assert_same(booster, _rows(150, 2))


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 31, "zero_as_missing": True},
        {"num_leaves": 15, "use_missing": False},
        # FLAML's LightGBM search space, at a point it visits
        {
            "num_leaves": 37,
            "min_child_samples": 12,
            "learning_rate": 0.09,
            "max_bin": 127,
            "colsample_bytree": 0.8,
            "reg_alpha": 0.01,
            "reg_lambda": 2.0,
        },
    ],
    ids=["zero-as-missing", "no-missing", "flaml-like"],
)
def test_training_options(params: dict):
    booster = _train(params, 40, _rows(2000, 3))
    _assert_same(booster, _rows(300, 4))


def test_trees_deeper_than_a_table_are_computed_row_by_row():
    """Unbounded depth, tiny tables: keys on features split twice above, leaves computed per row."""
    booster = _train({"num_leaves": 40, "min_data_in_leaf": 2}, 15, _rows(2000, 5))
    x = _rows(300, 6)
    tables = compile_contributions(booster, max_key_bits=4)
    assert any(group.deep for group in tables.groups), "no leaf went the per-row way"
    assert any(group.conditions for group in tables.groups), "no feature split twice above a table"
    expected = booster.predict(x, pred_contrib=True)
    assert np.abs(tables(x) - expected).max() <= TOLERANCE


def test_categorical_feature_trained_by_lightgbm():
    x = _rows(2000, 7)
    x[:, 3] = np.random.default_rng(7).integers(0, 12, len(x))
    x[np.random.default_rng(8).random(len(x)) < 0.05, 3] = np.nan
    booster = _train(
        {"num_leaves": 15, "cat_smooth": 1, "min_data_per_group": 5}, 20, x, categorical_feature=[3]
    )
    assert any(tree["num_cat"] > 0 for tree in booster.dump_model()["tree_info"])
    test = _rows(300, 9)
    test[:, 3] = np.random.default_rng(9).choice([np.nan, -1, 0, 2.5, 7, 11, 40], len(test))
    _assert_same(booster, test)


def test_iterations_as_predict_reads_them():
    """best_iteration (set by early stopping) by default, as predict; explicit iterations."""
    booster = _train({"num_leaves": 7}, 12, _rows(1000, 10))
    booster.best_iteration = 5
    test = _rows(200, 12)
    _assert_same(booster, test)
    _assert_same(booster, test, num_iteration=3)
    _assert_same(booster, test, start_iteration=2, num_iteration=4)
    _assert_same(booster, test, start_iteration=3)


def test_a_reloaded_model_and_a_data_frame():
    """Scoring loads the model from its text and passes frames: same numbers."""
    booster = _train({"num_leaves": 7}, 20, _rows(1000, 13))
    reloaded = lgb.Booster(model_str=booster.model_to_string())
    frame = pd.DataFrame(_rows(200, 14), columns=[f"f{i}" for i in range(6)])
    _assert_same(reloaded, frame)
    _assert_same(reloaded, frame.astype("float32"))


def test_unsupported_models_fall_back_to_pred_contrib():
    x = _rows(600, 15)
    multiclass = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 4},
        lgb.Dataset(x, np.random.default_rng(15).integers(0, 3, len(x))),
        5,
    )
    tables = compile_contributions(multiclass)
    assert tables.fallback_reason is not None and "multiclass" in tables.fallback_reason
    assert np.array_equal(tables(x), multiclass.predict(x, pred_contrib=True))
    linear = _train({"num_leaves": 4, "linear_tree": True}, 3, x)
    assert compile_contributions(linear).fallback_reason == "linear trees"
    with pytest.raises(lgb.basic.LightGBMError, match="linear trees"):  # LightGBM's own answer
        tree_contributions(linear, x)


def test_pandas_categoricals_fall_back_to_pred_contrib():
    """LightGBM maps a frame's categories to codes itself: those frames are left to it."""
    x = _rows(600, 16)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["f3"] = pd.Categorical(np.random.default_rng(16).choice(["a", "b", "c"], len(frame)))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4, "min_data_per_group": 5},
        lgb.Dataset(frame, _labels(x, 16)),
        5,
    )
    expected = booster.predict(frame, pred_contrib=True)
    assert np.array_equal(tree_contributions(booster, frame), expected)


def test_row_chunks_on_several_threads_give_the_same_numbers():
    """More rows than one chunk, on two threads: each row's numbers as on one thread."""
    booster = _train({"num_leaves": 4}, 20, _rows(1000, 17))
    x = _rows(20_000, 18)
    tables = compile_contributions(booster)
    one = tables(x)
    assert np.array_equal(tables(x, num_threads=2), one)
    assert np.abs(one - booster.predict(x, pred_contrib=True)).max() <= TOLERANCE
