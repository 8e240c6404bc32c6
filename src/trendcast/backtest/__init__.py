"""Backtests of out-of-sample direction probabilities: signals -> positions -> returns after costs -> metrics.

run_backtest(predictions, prices, config)   the vectorised engine (see engine.py for the exact timing)
load_predictions(path)                      a saved predictions file (CSV or Parquet), validated
check_lookahead(predictions, execution=)    the guard that refuses same-bar or earlier execution
compare_models({name: predictions}, prices) one backtest per model, key metrics side by side
metrics                                     pure metric functions, checked against quantstats/empyrical
"""

from trendcast.backtest import metrics
from trendcast.backtest.engine import METRIC_NAMES, BacktestResult, compare_models, run_backtest, target_positions
from trendcast.backtest.predictions import check_lookahead, load_predictions, validate_predictions

__all__ = [
    "METRIC_NAMES",
    "BacktestResult",
    "check_lookahead",
    "compare_models",
    "load_predictions",
    "metrics",
    "run_backtest",
    "target_positions",
    "validate_predictions",
]
