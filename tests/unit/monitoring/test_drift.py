"""Drift statistics by hand, the reference round trip, Holm's adjustment, and a volatility shift that must be
caught while an unshifted random walk must not be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trendcast.data.synthetic import random_walk_bars
from trendcast.errors import DataError
from trendcast.features.feature_set import compute_features
from trendcast.features.indicators import catalog, resolve
from trendcast.monitoring.drift import (
    REFERENCE_FILE,
    DriftReference,
    DriftReport,
    bin_shares,
    build_reference,
    compare,
    holm_adjust,
    load_reference,
    psi,
    save_reference,
)

NAMES = [ind.name for ind in catalog()]
VOLATILITY = [ind.name for ind in catalog() if ind.group == "volatility"]
SPLIT = 450  # days per ticker in the reference; the rest is "current"


def _gaussian_reference(n: int = 3000, seed: int = 0, proba: np.ndarray | None = None) -> DriftReference:
    rows = np.random.default_rng(seed).normal(size=(n, 3))
    return build_reference(rows, ["a", "b", "c"], proba, sample_size=1000)


def _one_hot(classes: np.ndarray) -> np.ndarray:
    rows: np.ndarray = np.eye(3)[classes]
    return rows


# --- psi and bin_shares ---------------------------------------------------------------------------------------


def test_psi_of_identical_shares_is_zero() -> None:
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(shares, shares) == 0.0


def test_psi_matches_a_hand_computed_value() -> None:
    expected = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)  # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_is_positive_symmetric_and_finite_on_empty_bins() -> None:
    a, b = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    assert psi(a, b) > 0
    assert psi(a, b) == pytest.approx(psi(b, a), rel=1e-12)
    clipped = psi(np.array([1.0, 0.0]), np.array([0.0, 1.0]))  # each empty share clipped at eps = 1e-4
    assert clipped == pytest.approx(2 * (1 - 1e-4) * np.log(1 / 1e-4), rel=1e-9)


def test_psi_refuses_shares_of_different_length() -> None:
    with pytest.raises(ValueError, match="same edges"):
        psi(np.array([0.5, 0.5]), np.array([0.2, 0.3, 0.5]))


def test_bin_shares_puts_values_on_an_edge_in_the_upper_bin() -> None:
    shares = bin_shares(np.array([0.0, 1.0, 1.5, 2.0, 3.0]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(shares, [0.2, 0.4, 0.4])


def test_bin_shares_of_a_constant_feature_with_repeated_edges() -> None:
    shares = bin_shares(np.full(7, 5.0), np.full(3, 5.0))
    np.testing.assert_allclose(shares, [0.0, 0.0, 0.0, 1.0])
    assert psi(shares, shares) == 0.0


# --- Holm-Bonferroni ------------------------------------------------------------------------------------------


def test_holm_adjust_matches_a_hand_example() -> None:
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> running max 0.06
    adjusted = holm_adjust(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_adjust_is_capped_at_one() -> None:
    np.testing.assert_allclose(holm_adjust(np.array([0.5, 0.9])), [1.0, 1.0])


def test_holm_adjust_is_monotone_and_never_below_the_raw_p() -> None:
    p = np.random.default_rng(3).uniform(0, 0.2, 40)
    adjusted = holm_adjust(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1.0)


# --- reference ------------------------------------------------------------------------------------------------


def test_build_reference_drops_non_finite_rows_and_samples_float32() -> None:
    rows = np.random.default_rng(0).normal(size=(500, 2))
    rows[:10, 0] = np.nan
    rows[10, 1] = np.inf
    proba = _one_hot(np.array([0, 1, 2, 2]))
    reference = build_reference(rows, ["x", "y"], proba, n_bins=5, sample_size=100, seed=1)
    assert reference.n_rows == 489
    assert reference.edges.shape == (2, 4)
    assert np.all(np.diff(reference.edges, axis=1) >= 0)
    assert reference.sample.shape == (100, 2)
    assert reference.sample.dtype == np.float32
    np.testing.assert_allclose(reference.class_mix, [0.25, 0.25, 0.5])
    np.testing.assert_allclose(bin_shares(rows[11:, 0], reference.edges[0]), [0.2] * 5, atol=0.01)


def test_reference_round_trips_through_a_folder(tmp_path: Path) -> None:
    reference = _gaussian_reference(proba=_one_hot(np.arange(30) % 3))
    path = save_reference(tmp_path / "model", reference)
    assert path == tmp_path / "model" / REFERENCE_FILE
    loaded = load_reference(tmp_path / "model")
    assert loaded is not None
    assert loaded.feature_names == reference.feature_names
    np.testing.assert_array_equal(loaded.edges, reference.edges)
    np.testing.assert_array_equal(loaded.sample, reference.sample)
    assert loaded.sample.dtype == np.float32
    np.testing.assert_array_equal(loaded.class_mix, reference.class_mix)
    assert loaded.n_rows == reference.n_rows
    assert [p.name for p in (tmp_path / "model").iterdir()] == [REFERENCE_FILE]


def test_load_reference_of_an_empty_folder_is_none(tmp_path: Path) -> None:
    assert load_reference(tmp_path) is None


def test_load_reference_of_a_broken_file_says_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / REFERENCE_FILE).write_bytes(b"not a zip")
    with pytest.raises(DataError, match="retrain"):
        load_reference(tmp_path)


# --- compare: inputs, class mix, JSON ---------------------------------------------------------------------------


def test_compare_refuses_a_wrong_column_count() -> None:
    with pytest.raises(DataError, match=r"expected \(rows, 3\)"):
        compare(_gaussian_reference(), np.zeros((50, 4)))


def test_compare_refuses_no_rows_and_all_nan_rows() -> None:
    reference = _gaussian_reference()
    with pytest.raises(DataError, match="no rows"):
        compare(reference, np.zeros((0, 3)))
    with pytest.raises(DataError, match="finite"):
        compare(reference, np.full((50, 3), np.nan))


def test_compare_drops_non_finite_rows() -> None:
    current = np.random.default_rng(1).normal(size=(600, 3))
    current[:100, 2] = np.nan
    report = compare(_gaussian_reference(), current)
    assert report.n_current == 500
    assert report.drifted == []


def test_class_mix_drift_is_flagged_from_balanced_to_all_up() -> None:
    reference = _gaussian_reference(proba=_one_hot(np.arange(300) % 3))
    current = np.random.default_rng(1).normal(size=(400, 3))
    shifted = compare(reference, current, _one_hot(np.full(400, 2)))
    assert shifted.class_mix["drifted"] is True
    assert shifted.class_mix["level"] == "alert"
    assert shifted.class_mix["current"] == {"Down": 0.0, "Neutral": 0.0, "Up": 1.0}
    assert shifted.class_mix["reference"] == pytest.approx({"Down": 1 / 3, "Neutral": 1 / 3, "Up": 1 / 3})
    same = compare(reference, current, _one_hot(np.arange(400) % 3))
    assert same.class_mix["drifted"] is False
    assert same.class_mix["psi"] < 0.01
    assert compare(reference, current).class_mix == {}


def test_report_to_json_is_strict_json() -> None:
    rng = np.random.default_rng(2)
    current = rng.normal(size=(400, 3))
    current[:, 1] = current[:, 1] * 3 + 2  # feature "b" shifts far
    report = compare(_gaussian_reference(proba=_one_hot(np.arange(30) % 3)), current, _one_hot(np.full(400, 0)))
    payload = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert payload["drifted"] == ["b"]
    assert [f["name"] for f in payload["features"]] == ["a", "b", "c"]
    assert set(payload["features"][1]) == {"name", "psi", "ks_p", "ks_stat", "level", "drifted"}
    assert payload["features"][1]["level"] == "alert"
    assert payload["thresholds"] == {"psi_warn": 0.1, "psi_alert": 0.25, "alpha": 0.05}
    assert payload["n_reference"] == 3000
    assert payload["n_current"] == 400
    assert payload["class_mix"]["drifted"] is True


def test_drifted_needs_both_psi_alert_and_a_small_ks_p() -> None:
    current = np.random.default_rng(4).normal(size=(400, 3))
    current[:, 0] += 1.0
    strict = compare(_gaussian_reference(), current, psi_alert=100.0)  # PSI band out of reach
    assert strict.features[0].level == "warn"
    assert strict.features[0].ks_p < 0.05
    assert strict.drifted == []
    assert compare(_gaussian_reference(), current).drifted == ["a"]
    few = compare(_gaussian_reference(), np.random.default_rng(6).normal(size=(15, 3)))  # same distribution
    assert all(f.level == "alert" for f in few.features)  # 15 rows leave bins empty: big PSI by chance
    assert all(f.ks_p >= 0.05 for f in few.features)
    assert few.drifted == []


# --- acceptance: a volatility regime change on real features ----------------------------------------------------


def _feature_rows(vol: float, seed: int) -> list[np.ndarray]:
    """Full feature matrix of each of 12 random-walk tickers over 700 days, warm-up rows included."""
    bars = random_walk_bars(n_tickers=12, n_days=700, seed=seed, vol=vol)
    indicators = resolve(None)
    return [compute_features(g.reset_index(drop=True), indicators).to_numpy() for _, g in bars.groupby("ticker")]


@pytest.fixture(scope="module")
def volatility_reports() -> tuple[DriftReport, DriftReport]:
    base = _feature_rows(vol=0.015, seed=1)
    reference = build_reference(np.vstack([f[:SPLIT] for f in base]), NAMES)
    unshifted = compare(reference, np.vstack([f[SPLIT:] for f in base]))
    tripled = compare(reference, np.vstack([f[SPLIT:] for f in _feature_rows(vol=0.045, seed=2)]))
    return unshifted, tripled


def test_unshifted_random_walk_shows_at_most_chance_drift(volatility_reports: tuple[DriftReport, DriftReport]) -> None:
    unshifted = volatility_reports[0]
    assert unshifted.n_current == 12 * (700 - SPLIT)
    assert len(unshifted.drifted) <= 3
    assert max(f.psi for f in unshifted.features) < 0.25


def test_tripled_volatility_drifts_the_volatility_features(volatility_reports: tuple[DriftReport, DriftReport]) -> None:
    tripled = volatility_reports[1]
    drifted = tripled.drifted
    assert drifted
    assert len(VOLATILITY) >= 5
    # all but Bollinger %B, which is scale-free (where the close sits between the bands) and need not move
    assert sum(name in drifted for name in VOLATILITY) >= len(VOLATILITY) - 1
    assert {"volatility_20", "atr_ratio_14", "bb_width_20"} <= set(drifted)
