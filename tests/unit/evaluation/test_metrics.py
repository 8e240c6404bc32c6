"""Metrics agree with scikit-learn and hand computation; day-block bootstraps, paired tests, chance nulls and ICs
behave as documented."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from trendcast.evaluation.metrics import (
    METRIC_NAMES,
    _draw_days,
    _prepare,
    _resampled,
    block_bootstrap_ci,
    brier_score,
    chance_accuracy_interval,
    classification_metrics,
    compare_to_best_baseline,
    default_block_days,
    direction_score,
    information_coefficients,
    paired_bootstrap,
    permutation_accuracy_null,
    summarise_model,
    summarise_predictions,
)

Y_HAND = np.array([0, 0, 1, 1, 2, 2, 2, 1])
P_HAND = np.array(
    [
        [0.7, 0.2, 0.1],  # Down, right
        [0.3, 0.4, 0.3],  # Down, predicted Neutral
        [0.2, 0.5, 0.3],  # Neutral, right
        [0.1, 0.3, 0.6],  # Neutral, predicted Up
        [0.1, 0.1, 0.8],  # Up, right
        [0.5, 0.2, 0.3],  # Up, predicted Down
        [0.2, 0.2, 0.6],  # Up, right
        [0.3, 0.6, 0.1],  # Neutral, right
    ]
)


def _softmax_panel(n_days: int, per_day: int, skill: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random labels and probabilities whose true-class logit is raised by `skill`."""
    y = np.random.default_rng(seed).integers(0, 3, n_days * per_day)
    dates = np.repeat(np.arange(n_days), per_day).astype("datetime64[D]")
    return y, _with_skill(y, skill, seed + 1000), dates


def _with_skill(y: np.ndarray, skill: float, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += skill
    return np.asarray(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))


def _predict(pred: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Probabilities that put `confidence` on the predicted class."""
    proba = np.full((len(pred), 3), (1 - confidence) / 2)
    proba[np.arange(len(pred)), pred] = confidence
    return proba


# -- point metrics --------------------------------------------------------------------------------------------------
def test_hand_example_matches_hand_counts_and_sklearn() -> None:
    m = classification_metrics(Y_HAND, P_HAND)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(Y_HAND, P_HAND.argmax(1)))
    assert m["precision_down"] == pytest.approx(1 / 2)  # predicted Down twice, right once
    assert m["recall_up"] == pytest.approx(2 / 3)
    precision, recall, f1, _ = precision_recall_fscore_support(Y_HAND, P_HAND.argmax(1), labels=[0, 1, 2])
    for key, i in (("down", 0), ("neutral", 1), ("up", 2)):
        assert m[f"precision_{key}"] == pytest.approx(precision[i])
        assert m[f"recall_{key}"] == pytest.approx(recall[i])
        assert m[f"f1_{key}"] == pytest.approx(f1[i])
    assert m["f1_macro"] == pytest.approx(np.mean(f1))
    auc = roc_auc_score(Y_HAND, P_HAND, multi_class="ovr", average="macro")
    assert m["auc_macro_ovr"] == pytest.approx(auc)
    assert m["auc_up"] == pytest.approx(roc_auc_score(Y_HAND == 2, P_HAND[:, 2]))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(P_HAND[np.arange(8), Y_HAND])))
    assert m["log_loss"] == pytest.approx(log_loss(Y_HAND, P_HAND, labels=[0, 1, 2]))
    assert m["n_samples"] == 8
    assert (m["share_down"], m["share_neutral"], m["share_up"]) == pytest.approx((2 / 8, 3 / 8, 3 / 8))
    assert (m["pred_share_down"], m["pred_share_neutral"], m["pred_share_up"]) == pytest.approx((2 / 8, 3 / 8, 3 / 8))


def test_brier_is_the_unhalved_multiclass_sum_of_squares() -> None:
    one_hot = np.eye(3)[Y_HAND]
    assert brier_score(Y_HAND, P_HAND) == pytest.approx(np.mean(((P_HAND - one_hot) ** 2).sum(axis=1)))
    assert brier_score(Y_HAND, P_HAND) == pytest.approx(
        brier_score_loss(Y_HAND, P_HAND, labels=[0, 1, 2], scale_by_half=False)
    )
    assert brier_score([1, 2], np.full((2, 3), 1 / 3)) == pytest.approx(2 / 3)  # uniform
    assert brier_score([0, 2], np.eye(3)[[0, 2]]) == 0.0  # perfect
    assert brier_score([0, 2], np.eye(3)[[1, 0]]) == pytest.approx(2.0)  # confidently wrong
    assert classification_metrics(Y_HAND, P_HAND)["brier"] == pytest.approx(brier_score(Y_HAND, P_HAND))


def test_auc_uses_present_classes_and_is_nan_with_one_class() -> None:
    keep = Y_HAND != 1
    y, p = Y_HAND[keep], P_HAND[keep]
    m = classification_metrics(y, p)
    assert math.isnan(m["auc_neutral"])
    expected = (roc_auc_score(y == 0, p[:, 0]) + roc_auc_score(y == 2, p[:, 2])) / 2
    assert m["auc_macro_ovr"] == pytest.approx(expected)
    with pytest.warns(UserWarning, match="not in y_true"):  # scikit-learn warns, then drops that class too
        expected_balanced = balanced_accuracy_score(y, p.argmax(1))
    assert m["balanced_accuracy"] == pytest.approx(expected_balanced)
    single = classification_metrics([2, 2, 2], P_HAND[:3])
    assert math.isnan(single["auc_macro_ovr"])
    assert math.isnan(single["auc_up"])


def test_binary_labels_average_over_down_and_up_only() -> None:
    """cross_sectional labels: no Neutral label and p_neutral exactly 0, so the macro averages are those of the
    2-class problem (by hand and by scikit-learn on labels [0, 2]), not 3-class ones with a Neutral of 0."""
    y = np.array([0, 0, 0, 2, 2, 2, 2, 0])
    p_up = np.array([0.2, 0.7, 0.4, 0.9, 0.3, 0.6, 0.8, 0.1])
    proba = np.column_stack([1 - p_up, np.zeros(8), p_up])
    m = classification_metrics(y, proba)
    pred = np.where(p_up > 0.5, 2, 0)  # Down: 3 of 4 right, 1 called Up; Up: 3 of 4 right, 1 called Down
    assert (m["precision_macro"], m["recall_macro"], m["f1_macro"]) == pytest.approx((0.75, 0.75, 0.75))
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, labels=[0, 2], zero_division=0.0)
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        assert (m[f"{name}_down"], m[f"{name}_up"]) == pytest.approx(tuple(values))
        assert m[f"{name}_macro"] == pytest.approx(np.mean(values))
        assert math.isnan(m[f"{name}_neutral"])
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["auc_macro_ovr"] == pytest.approx(roc_auc_score(y == 2, p_up))
    assert math.isnan(m["auc_neutral"])
    assert m["confusion_matrix"] == [[3, 0, 1], [0, 0, 0], [1, 0, 3]]
    # any probability on Neutral (an absolute-mode model) puts it back in the label set, as before: 0 in the mean
    three = classification_metrics(y, proba * 0.98 + np.array([0.0, 0.02, 0.0]))
    assert three["f1_macro"] == pytest.approx(0.5) and three["f1_neutral"] == 0.0


def test_binary_resampled_metrics_equal_recomputation() -> None:
    rng = np.random.default_rng(4)
    sizes = rng.integers(1, 6, 25)
    y = rng.choice([0, 2], sizes.sum())
    p_up = np.round(rng.uniform(0, 1, len(y)), 1)
    proba = np.column_stack([1 - p_up, np.zeros(len(y)), p_up])
    dates = np.repeat(np.arange(25), sizes)
    sample = _prepare(y, proba, dates)
    days = _draw_days(sample.n_days, 20, 3, seed=2)
    recomputed = []
    for drawn in days:
        idx = np.concatenate([np.flatnonzero(dates == d) for d in drawn])
        recomputed.append(classification_metrics(y[idx], proba[idx]))
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "auc_macro_ovr"):
        fast = _resampled(sample, name, days)  # type: ignore[arg-type]
        np.testing.assert_allclose(fast, [m[name] for m in recomputed], rtol=1e-10, equal_nan=True, err_msg=name)
    point = summarise_model(y, proba, dates, n_boot=50, n_boot_auc=20)["metrics"]
    assert point["f1_macro"] == pytest.approx(classification_metrics(y, proba)["f1_macro"])


def test_never_predicted_class_scores_zero_precision_not_nan() -> None:
    m = classification_metrics([0, 1, 2, 2], _predict(np.array([2, 2, 2, 2])))
    assert m["precision_down"] == 0.0
    assert m["recall_down"] == 0.0
    assert m["precision_macro"] == pytest.approx(0.5 / 3)
    assert m["accuracy"] == pytest.approx(0.5)


def test_log_loss_is_finite_for_zero_probability_on_the_truth() -> None:
    m = classification_metrics([0], [[0.0, 0.0, 1.0]])
    assert m["log_loss"] == pytest.approx(-np.log(1e-15), rel=1e-6)


def test_bad_inputs_raise_or_warn_with_a_remedy() -> None:
    with pytest.raises(ValueError, match="drop unlabelled"):
        classification_metrics([0, -1], P_HAND[:2])
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        classification_metrics([0, 1], P_HAND[:3])
    with pytest.raises(ValueError, match="finite"):
        classification_metrics([0], [[np.nan, 0.5, 0.5]])
    with pytest.warns(UserWarning, match="renormalised"):
        m = classification_metrics(Y_HAND, P_HAND * 2)
    assert m["log_loss"] == pytest.approx(classification_metrics(Y_HAND, P_HAND)["log_loss"])
    with pytest.raises(ValueError, match="auc_macro_ovr"):
        block_bootstrap_ci(Y_HAND, P_HAND, np.arange(8), "auc_macro_ov")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing"):
        block_bootstrap_ci(Y_HAND, P_HAND, np.array([None] * 8), "accuracy")


# -- block bootstrap ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decimals", [1, None], ids=["tied-scores", "distinct-scores"])
def test_fast_resampled_metrics_equal_recomputation_on_the_resampled_samples(decimals: int | None) -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 9, 30)  # uneven days, some with a single sample
    y = rng.integers(0, 3, sizes.sum())
    proba = rng.dirichlet([1, 1, 1], len(y))
    if decimals is not None:
        proba = np.round(proba, decimals)  # ties in every class's scores
        proba[:, 2] = 1 - proba[:, 0] - proba[:, 1]
        proba = np.clip(proba, 0, 1)
        proba /= proba.sum(axis=1, keepdims=True)
    dates = np.repeat(np.arange(30), sizes)
    sample = _prepare(y, proba, dates)
    days = _draw_days(sample.n_days, 25, 3, seed=1)
    recomputed = []
    for drawn in days:
        idx = np.concatenate([np.flatnonzero(dates == d) for d in drawn])
        recomputed.append(classification_metrics(y[idx], proba[idx]))
    for name in METRIC_NAMES:
        fast = _resampled(sample, name, days)  # type: ignore[arg-type]
        slow = [m[name] for m in recomputed]
        np.testing.assert_allclose(fast, slow, rtol=1e-10, equal_nan=True, err_msg=name)
    generic = _resampled(sample, lambda yy, pp: float(np.mean(pp.argmax(1) == yy)), days)
    np.testing.assert_allclose(generic, [m["accuracy"] for m in recomputed], rtol=1e-12)


def test_ci_contains_the_estimate_and_narrows_with_more_days() -> None:
    y, proba, dates = _softmax_panel(100, 20, skill=0.5, seed=0)
    accuracy = classification_metrics(y, proba)["accuracy"]
    low, high = block_bootstrap_ci(y, proba, dates, "accuracy", n_boot=300)
    assert low < accuracy < high
    auc = classification_metrics(y, proba)["auc_macro_ovr"]
    auc_low, auc_high = block_bootstrap_ci(y, proba, dates, "auc_macro_ovr", n_boot=100)
    assert auc_low < auc < auc_high
    y4, proba4, dates4 = _softmax_panel(1600, 20, skill=0.5, seed=0)
    low4, high4 = block_bootstrap_ci(y4, proba4, dates4, "accuracy", n_boot=300)
    assert (high4 - low4) < 0.5 * (high - low)  # 16x the days: about a quarter of the width


def test_bootstrap_is_deterministic_given_the_seed() -> None:
    y, proba, dates = _softmax_panel(60, 5, skill=0.3, seed=1)
    first = block_bootstrap_ci(y, proba, dates, "log_loss", n_boot=200, seed=7)
    assert block_bootstrap_ci(y, proba, dates, "log_loss", n_boot=200, seed=7) == first
    assert block_bootstrap_ci(y, proba, dates, "log_loss", n_boot=200, seed=8) != first


def test_resamples_move_whole_days() -> None:
    sizes = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    dates = np.repeat(np.arange(8), sizes)
    y = np.zeros(sizes.sum(), dtype=int)
    proba = np.tile([1.0, 0.0, 0.0], (len(y), 1))
    proba[:, 1] = dates / 100  # the day, carried in a column the metric can read back
    proba /= proba.sum(axis=1, keepdims=True)

    def days_complete(_: np.ndarray, p: np.ndarray) -> float:
        day = np.rint(p[:, 1] / p[:, 0] * 100).astype(int)
        counts = np.bincount(day, minlength=8)
        return float(np.all(counts % sizes == 0))  # each drawn day brings all of its samples

    assert block_bootstrap_ci(y, proba, dates, days_complete, n_boot=50, block_days=3) == (1.0, 1.0)


def test_day_level_clustering_and_blocks_widen_the_interval() -> None:
    n_days, per_day = 400, 25
    dates = np.repeat(np.arange(n_days), per_day)
    day_right = np.arange(n_days) // 20 % 2 == 0  # runs of 20 right days, then 20 wrong days
    y = np.zeros(n_days * per_day, dtype=int)
    proba = _predict(np.where(np.repeat(day_right, per_day), 0, 1))
    low1, high1 = block_bootstrap_ci(y, proba, dates, "accuracy", n_boot=400, block_days=1)
    iid_samples_width = 2 * 1.96 * math.sqrt(0.25 / len(y))
    assert high1 - low1 > 3 * iid_samples_width  # samples of a day are not independent draws
    low20, high20 = block_bootstrap_ci(y, proba, dates, "accuracy", n_boot=400, block_days=20)
    assert high20 - low20 > 1.5 * (high1 - low1)  # runs of days are not independent either


def test_default_block_days() -> None:
    assert default_block_days(1000) == 10
    assert default_block_days(8) == 2
    assert default_block_days(1) == 1
    assert default_block_days(27, horizon=5) == 5


# -- paired comparison ----------------------------------------------------------------------------------------------
def test_paired_p_value_is_small_when_a_is_clearly_better() -> None:
    y, good, dates = _softmax_panel(120, 10, skill=1.5, seed=2)
    bad = _with_skill(y, 0.0, seed=3)
    out = paired_bootstrap(y, good, bad, dates, "accuracy", n_boot=300)
    assert out["diff"] == pytest.approx(out["metric_a"] - out["metric_b"])
    assert out["diff"] > 0.2
    assert out["ci_low"] > 0
    assert out["p_value"] == pytest.approx(1 / 301)
    assert out["p_value_two_sided"] == pytest.approx(2 / 301)
    reverse = paired_bootstrap(y, bad, good, dates, "accuracy", n_boot=300)
    assert reverse["p_value"] == pytest.approx(1.0)
    losses = paired_bootstrap(y, good, bad, dates, "log_loss", n_boot=300)  # lower is better: a still wins
    assert losses["diff"] < 0
    assert losses["p_value"] == pytest.approx(1 / 301)
    auc = paired_bootstrap(y, good, bad, dates, "auc_macro_ovr", n_boot=50)
    assert auc["p_value"] == pytest.approx(1 / 51)


def test_paired_p_value_is_near_one_half_for_equal_skill() -> None:
    n_days, per_day = 300, 10
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, n_days * per_day)
    dates = np.repeat(np.arange(n_days), per_day)
    even = np.repeat(np.arange(n_days) % 2 == 0, per_day)
    wrong = (y + 1) % 3
    a = _predict(np.where(even, y, wrong))  # right on even days
    b = _predict(np.where(even, wrong, y))  # right on odd days: the same accuracy
    out = paired_bootstrap(y, a, b, dates, "accuracy", n_boot=500, block_days=1)
    assert out["diff"] == 0.0
    assert 0.35 < out["p_value"] < 0.7
    assert out["p_value_two_sided"] > 0.7
    same = paired_bootstrap(y, a, a, dates, "accuracy", n_boot=100)
    assert (same["diff"], same["p_value"]) == (0.0, 1.0)


def test_compare_to_best_baseline_picks_the_strongest() -> None:
    y, model, dates = _softmax_panel(50, 8, skill=1.5, seed=5)
    weak, fair = _with_skill(y, 0.0, seed=6), _with_skill(y, 0.7, seed=7)
    out = compare_to_best_baseline(y, model, {"weak": weak, "fair": fair}, dates, "brier", n_boot=100)
    assert out["baseline"] == "fair"
    assert out["metric_b"] == pytest.approx(brier_score(y, fair))
    assert out["metric_a"] == pytest.approx(brier_score(y, model))


# -- chance level ---------------------------------------------------------------------------------------------------
def test_permutation_null_flags_skill_and_accepts_noise() -> None:
    rng = np.random.default_rng(8)
    n_days, per_day = 200, 10
    y = rng.choice(3, n_days * per_day, p=[0.3, 0.2, 0.5])
    dates = np.repeat(np.arange(n_days), per_day)
    noise = rng.choice(3, len(y), p=[0.2, 0.2, 0.6])
    null = permutation_accuracy_null(y, noise, dates, n_perm=300, seed=0)
    assert null["inside"] is True
    assert null["null_low"] < null["accuracy"] < null["null_high"]
    assert null["null_mean"] == pytest.approx(null["expected_chance"], abs=0.01)
    assert null["expected_chance"] == pytest.approx(0.3 * 0.2 + 0.2 * 0.2 + 0.5 * 0.6, abs=0.02)
    assert null["min_shift"] >= default_block_days(n_days) * per_day
    skilled = np.where(rng.random(len(y)) < 0.3, y, noise)
    flagged = permutation_accuracy_null(y, _predict(skilled), dates, n_perm=300, seed=0)
    assert flagged["inside"] is False
    assert flagged["p_value"] == pytest.approx(1 / 301)
    assert chance_accuracy_interval(y, dates, noise, n_boot=300) == (null["null_low"], null["null_high"])


def test_chance_interval_without_predictions_is_around_the_majority_rate() -> None:
    rng = np.random.default_rng(9)
    y = rng.choice(3, 2000, p=[0.3, 0.2, 0.5])
    dates = np.repeat(np.arange(200), 10)
    low, high = chance_accuracy_interval(y, dates, n_boot=300)
    majority = float(np.mean(y == 2))
    assert low < majority < high
    assert high - low < 0.1


# -- information coefficients ---------------------------------------------------------------------------------------
def _ic_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 5 + ["2024-01-04"] + ["2024-01-05"] * 3),
            "score": [0.1, -0.2, 0.3, 0.05, 0.2, 0.1, -0.1, 0.4, 0.0, 0.5, 0.2, 0.2, 0.2],
            "ret": [0.01, -0.02, 0.005, 0.0, -0.01, 0.02, -0.01, 0.03, 0.02, 0.01, 0.01, -0.02, 0.0],
        }
    )


def test_ic_equals_pandas_pearson_and_spearman_per_day() -> None:
    frame = _ic_frame()
    out = information_coefficients(frame["date"], frame["score"], frame["ret"], daily=True)
    usable = frame[frame["date"] <= "2024-01-03"]  # 01-04 has one ticker, 01-05 a constant score
    groups = dict(list(usable.groupby("date")))
    pearson = pd.Series({day: g["score"].corr(g["ret"]) for day, g in groups.items()})
    spearman = pd.Series({day: g["score"].corr(g["ret"], method="spearman") for day, g in groups.items()})
    scipy_rho = [spearmanr(g["score"], g["ret"]).statistic for g in groups.values()]
    np.testing.assert_allclose(spearman.to_numpy(), scipy_rho, rtol=1e-12)
    np.testing.assert_allclose(out["daily_ic"].to_numpy(), pearson.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(out["daily_rank_ic"].to_numpy(), spearman.to_numpy(), rtol=1e-12)
    assert list(out["daily_ic"].index) == list(pearson.index)
    assert out["n_days"] == 2
    assert out["ic_mean"] == pytest.approx(pearson.mean())
    assert out["ic_std"] == pytest.approx(pearson.std(ddof=1))
    assert out["icir"] == pytest.approx(pearson.mean() / pearson.std(ddof=1))
    assert out["rank_icir"] == pytest.approx(spearman.mean() / spearman.std(ddof=1))
    assert "daily_ic" not in information_coefficients(frame["date"], frame["score"], frame["ret"])
    wide = information_coefficients(frame["date"], frame["score"], frame["ret"], min_tickers=5)
    assert wide["n_days"] == 1  # only 2024-01-03 has five tickers
    assert wide["ic_mean"] == pytest.approx(pearson.iloc[1])


def test_ic_is_nan_without_enough_days() -> None:
    frame = _ic_frame()
    one_day = frame[frame["date"] == "2024-01-02"]
    out = information_coefficients(one_day["date"], one_day["score"], one_day["ret"])
    assert out["n_days"] == 1
    assert math.isnan(out["ic_std"])
    assert math.isnan(out["icir"])
    none = information_coefficients(frame["date"][9:], frame["score"][9:], frame["ret"][9:])
    assert none["n_days"] == 0
    assert math.isnan(none["ic_mean"])


def test_direction_score_is_up_minus_down() -> None:
    np.testing.assert_allclose(direction_score(P_HAND), P_HAND[:, 2] - P_HAND[:, 0])


# -- summaries ------------------------------------------------------------------------------------------------------
def test_summarise_model_is_json_ready_and_consistent() -> None:
    y, proba, dates = _softmax_panel(40, 6, skill=0.8, seed=10)
    tickers = np.tile(np.array(["A", "B", "C", "D", "E", "F"]), 40)
    forward = np.random.default_rng(11).normal(0, 0.01, len(y)) + 0.01 * (y - 1)
    out = summarise_model(y, proba, dates, tickers, forward, n_boot=200, n_boot_auc=50)
    json.dumps(out, allow_nan=False)
    assert set(out) == {"metrics", "accuracy_ci", "auc_ci", "ic", "bootstrap"}
    assert out["metrics"] == classification_metrics(y, proba)
    low, high = out["accuracy_ci"]
    assert low < out["metrics"]["accuracy"] < high
    assert out["auc_ci"][0] < out["metrics"]["auc_macro_ovr"] < out["auc_ci"][1]
    assert out["ic"] == information_coefficients(dates, proba[:, 2] - proba[:, 0], forward)
    assert out["ic"]["ic_mean"] > 0.1  # the returns follow the labels, the scores follow the labels
    assert out["bootstrap"]["n_days"] == 40
    single = summarise_model(y, proba, dates, np.full(len(y), "A"), forward, n_boot=20, n_boot_auc=10)
    assert single["ic"] is None
    assert summarise_model(y, proba, dates, n_boot=20, n_boot_auc=10)["ic"] is None


def test_summarise_predictions_pools_and_splits_folds() -> None:
    y, proba, dates = _softmax_panel(30, 4, skill=0.8, seed=12)
    frame = pd.DataFrame({"date": dates, "label": y, "p_down": proba[:, 0], "p_neutral": proba[:, 1]})
    frame["p_up"] = proba[:, 2]
    frame["fold"] = np.repeat([0, 1, 2], 40)
    out = summarise_predictions(frame, n_boot=20, n_boot_auc=10)
    assert set(out["folds"]) == {"0", "1", "2"}
    assert out["pooled"]["metrics"]["n_samples"] == 120
    assert out["folds"]["1"]["metrics"] == classification_metrics(y[40:80], proba[40:80])
    with pytest.raises(ValueError, match="p_up"):
        summarise_predictions(frame.drop(columns="p_up"))
