"""Vectorised backtest of out-of-sample direction probabilities: signals -> positions -> returns after costs.

Everything runs on (days x tickers) NumPy arrays over the union of the tickers' bar dates; no Python loop runs per
bar. Prices are back-adjusted by adj_close / close where the adjusted close is known (the factor of
`trendcast.features.feature_set.adjusted_ohlcv`), and forward-filled over a ticker's missing days inside its life.

Timing (bar k = the k-th date of the grid; C = adjusted close, O = adjusted open):

    signal s dated k          computed from C[k]; never traded at k
    execution bar             k + lag_bars (default 1), or the first bar on/after `trade_date` if that column exists
    next_close                the order fills at C[k+1]; the position earns C[k+1] -> C[k+2] -> ...
    next_open                 the order fills at O[k+1]; it earns O[k+1] -> C[k+1], then close to close

With p[k] the position established at bar k's execution point and p_prev = p[k-1], each ticker's sleeve returns

    gross[k] = (1 + p_prev * before[k]) * (1 + p * after[k]) - 1
               next_close: before = C[k]/C[k-1] - 1, after = 0
               next_open:  before = O[k]/C[k-1] - 1 (overnight gap, old position), after = C[k]/O[k] - 1
    cost[k]  = (commission_bps + slippage_bps) / 1e4 * |p - p_prev|  +  borrow_bps_annual / 1e4 / 252 * max(-p_prev, 0)
    net[k]   = (1 + gross[k]) * (1 - cost[k]) - 1

A day without a prediction for a ticker means no view: its target is flat. The portfolio holds every ticker's
sleeve with equal weight 1/N_k (N_k = tickers with a bar on day k), rebalanced daily at no cost. The benchmark is
buy-and-hold of the same tickers in the same portfolio: position 1 from the first execution bar, no costs.
The reported window runs from the first execution bar to one bar after the last, so the last position is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from trendcast.backtest import metrics as m
from trendcast.backtest.entry import EntryRule, FoldThresholds, entry_score, quantile_note, resolve_entry
from trendcast.backtest.predictions import check_lookahead, validate_predictions
from trendcast.backtest.trades import BarFactors, extract_trades
from trendcast.config import BacktestConfig
from trendcast.errors import ConfigError, DataError, LeakageError, MissingPricesError, SchemaError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BORROW_DAYS_PER_YEAR = 252
POSITION_METRICS: tuple[str, ...] = (
    "n_trades",
    "win_rate_trades",
    "avg_trade_return",
    "turnover",
    "exposure",
    "total_costs",
)
METRIC_NAMES: tuple[str, ...] = (*m.RETURN_METRICS, *POSITION_METRICS)


# -- result --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced. Daily series are indexed by date over the backtest window."""

    config: BacktestConfig
    returns: pd.Series  # portfolio, after costs
    gross_returns: pd.Series  # portfolio, before costs
    benchmark_returns: pd.Series  # equal-weight buy-and-hold of the same tickers
    ticker_returns: pd.DataFrame  # per-ticker sleeve after costs (NaN where the ticker has no bar)
    benchmark_ticker_returns: pd.DataFrame  # per-ticker buy-and-hold
    positions: pd.DataFrame  # position established at each bar's execution point (-1..1)
    turnover: pd.Series  # portfolio turnover per day, sum_i w_i |p_i - p_prev_i|
    costs: pd.DataFrame  # per-ticker cost charged each day, as a fraction of the sleeve
    portfolio_costs: pd.Series  # sum_i w_i cost_i
    trades: pd.DataFrame  # see trendcast.backtest.trades
    metrics: dict[str, dict[str, float]]  # {"strategy": {...}, "benchmark": {...}}
    ticker_metrics: pd.DataFrame  # one row per ticker
    entry: EntryRule  # the entry rule applied (config.entry_rule, or fixed where the thresholds were missing)
    dropped_signals: int = 0  # signals whose execution bar is past the last price bar
    notes: list[str] = field(default_factory=list)

    def metrics_frame(self) -> pd.DataFrame:
        """Metrics as rows, strategy and benchmark side by side."""
        return pd.DataFrame(self.metrics).reindex(list(METRIC_NAMES))

    def flat_metrics(self, prefix: str = "backtest_") -> dict[str, float]:
        """Finite metrics as {prefix + side + '_' + name: value}, ready for mlflow.log_metrics."""
        return {
            f"{prefix}{side}_{name}": value
            for side, values in self.metrics.items()
            for name, value in values.items()
            if np.isfinite(value)
        }


# -- prices ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceGrid:
    """Adjusted prices on the union of dates. NaN outside a ticker's first..last bar; forward-filled inside."""

    dates: pd.DatetimeIndex
    tickers: list[str]
    close: FloatArray
    open: FloatArray | None
    listed: BoolArray


def price_grid(prices: pd.DataFrame, tickers: list[str], *, need_open: bool) -> PriceGrid:
    """Pivot long bars (ticker, date, close[, open, adj_close]) of `tickers` into a PriceGrid."""
    _require_price_columns(prices, need_open)
    names = pd.Index(prices["ticker"].astype(str))
    codes = pd.Index(tickers).get_indexer(names)
    _check_tickers_present(tickers, codes, names)
    inside = codes >= 0

    def column(name: str) -> FloatArray:
        values = prices[name].to_numpy(dtype=np.float64)
        return values if inside.all() else values[inside]

    close = column("close")
    _check_closes(close)
    factor = _adjustment(column("adj_close") if "adj_close" in prices else None, close)
    date_codes, dates = pd.factorize(_normal_dates(prices["date"])[inside], sort=True)
    ticker_codes = codes[inside]
    shape = (len(dates), len(tickers))
    _check_unique_bars(date_codes, ticker_codes, shape)
    grid_close = _scatter(shape, date_codes, ticker_codes, close * factor)
    listed = _listed(grid_close)
    grid_close = np.where(listed, _ffill(grid_close), np.nan)
    grid_open = None
    if need_open:
        raw_open = _scatter(shape, date_codes, ticker_codes, column("open") * factor)
        grid_open = np.where(np.isfinite(raw_open), raw_open, grid_close)  # a missing day opens at its last close
    return PriceGrid(pd.DatetimeIndex(dates), list(tickers), grid_close, grid_open, listed)


def _check_tickers_present(tickers: list[str], codes: npt.NDArray[np.intp], names: pd.Index) -> None:
    present = np.bincount(codes[codes >= 0], minlength=len(tickers)) > 0
    if not present.all():
        raise MissingPricesError(tickers[int(np.argmin(present))], sorted(names.unique()))


def _require_price_columns(prices: pd.DataFrame, need_open: bool) -> None:
    needed = ["ticker", "date", "close"] + (["open"] if need_open else [])
    for column in needed:
        if column not in prices.columns:
            raise SchemaError(
                f"prices: missing column {column!r}; pass long bars from BarStore.load() "
                f"(ticker, date, open, high, low, close, volume, adj_close).",
                column=column,
            )


def _check_closes(close: FloatArray) -> None:
    bad = ~np.isfinite(close) | (close <= 0)
    if bad.any():
        raise DataError(
            f"prices: {int(bad.sum())} bars have a missing or non-positive close; "
            "drop them or re-ingest with `trendcast data ingest --strict`."
        )


def _adjustment(adjusted: FloatArray | None, close: FloatArray) -> FloatArray:
    """adj_close / close where the adjusted close is known and positive, else 1 (as in adjusted_ohlcv)."""
    if adjusted is None:
        return np.ones_like(close)
    known = np.isfinite(adjusted) & (adjusted > 0)
    return np.where(known, adjusted / close, 1.0)


def _normal_dates(values: pd.Series) -> pd.DatetimeIndex:
    dates = pd.DatetimeIndex(pd.to_datetime(values))
    return (dates.tz_convert(None) if dates.tz is not None else dates).normalize()


def _check_unique_bars(
    date_codes: npt.NDArray[np.intp], ticker_codes: npt.NDArray[np.intp], shape: tuple[int, int]
) -> None:
    if has_duplicates(date_codes.astype(np.int64) * shape[1] + ticker_codes, shape[0] * shape[1]):
        raise DataError(
            "prices: a ticker has two bars on the same date; de-duplicate with "
            "prices.drop_duplicates(['ticker', 'date'], keep='last')."
        )


def has_duplicates(keys: npt.NDArray[np.int64], size: int) -> bool:
    """Whether any of the non-negative integer `keys` (all below `size`) repeats; O(n), no sorting."""
    return bool(keys.size) and int(np.bincount(keys, minlength=size).max()) > 1


def _scatter(
    shape: tuple[int, int], rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], values: FloatArray
) -> FloatArray:
    grid = np.full(shape, np.nan)
    grid[rows, cols] = values
    return grid


def _listed(grid: FloatArray) -> BoolArray:
    """True from a ticker's first bar to its last bar."""
    seen = np.isfinite(grid)
    started = np.maximum.accumulate(seen, axis=0)
    not_ended = np.maximum.accumulate(seen[::-1], axis=0)[::-1]
    return started & not_ended


def _ffill(grid: FloatArray) -> FloatArray:
    rows = np.where(np.isfinite(grid), np.arange(grid.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    return np.take_along_axis(grid, rows, axis=0)


# -- signals and positions ----------------------------------------------------------------------------------------
def target_positions(
    p_down: FloatArray, p_up: FloatArray, config: BacktestConfig, thresholds: FoldThresholds | None = None
) -> FloatArray:
    """The position each prediction asks for (see trendcast.backtest.entry for the rules).

    entry_rule "fixed": long when P(Up) > entry_threshold and P(Up) > P(Down); short (long_short only) when
    P(Down) > entry_threshold and P(Down) > P(Up). "train_quantile": long when P(Up) - P(Down) > the row's
    `thresholds.long`, short (long_short only) when it is below `thresholds.short`; a row that meets both (only
    possible with entry_quantile < 0.5) stays flat. Size 1 with sizing="fixed", or the winning probability (P(Up)
    long, P(Down) short) with "confidence".
    """
    if config.entry_rule == "train_quantile":
        if thresholds is None:
            raise ConfigError(
                "entry_rule train_quantile needs each prediction's training-fold thresholds: pass "
                "thresholds=resolve_entry(predictions, config)[1], or use entry_rule='fixed'."
            )
        score = entry_score(p_down, p_up)
        above, below = score > thresholds.long, (score < thresholds.short) & config.long_short
        long, short = above & ~below, below & ~above
    else:
        threshold = config.entry_threshold
        long = (p_up > threshold) & (p_up > p_down)
        short = (p_down > threshold) & (p_down > p_up) & config.long_short
    if config.sizing == "confidence":
        return np.where(long, p_up, 0.0) - np.where(short, p_down, 0.0)
    return long.astype(np.float64) - short.astype(np.float64)


def _execution_bars(predictions: pd.DataFrame, dates: pd.DatetimeIndex, lag_bars: int) -> npt.NDArray[np.intp]:
    """The grid bar at which each prediction is executed; refuses signals dated off the grid or traded too early."""
    signal = dates.get_indexer(pd.DatetimeIndex(predictions["date"]))
    if (signal < 0).any():
        row = predictions.loc[signal < 0].iloc[0]
        raise DataError(
            f"{int((signal < 0).sum())} predictions are dated on days without any price bar (first: "
            f"{row['ticker']} {row['date']:%Y-%m-%d}); load prices covering the prediction dates."
        )
    if "trade_date" in predictions:
        execution = dates.searchsorted(pd.DatetimeIndex(predictions["trade_date"]), side="left")
    else:
        execution = signal + lag_bars
    early = execution <= signal
    if early.any():  # unreachable after check_lookahead; kept so no future path can skip the guard
        raise LeakageError(f"{int(early.sum())} predictions would be executed on or before their signal bar.")
    return np.asarray(execution, dtype=np.intp)


@dataclass(frozen=True)
class PositionPlan:
    positions: FloatArray  # (days x tickers) position established at each bar's execution point
    first_bar: int  # first bar at which any signal is executed
    last_bar: int  # last bar at which any signal is executed
    dropped: int  # signals whose execution bar is past the last price bar


def position_grid(
    predictions: pd.DataFrame,
    grid: PriceGrid,
    config: BacktestConfig,
    lag_bars: int,
    columns: npt.NDArray[np.intp] | None = None,
    thresholds: FoldThresholds | None = None,
) -> PositionPlan:
    """Place each prediction's target position at its execution bar; flat where a ticker has no prediction.

    `columns` (optional) is each prediction's ticker position in `grid.tickers`, if already known; `thresholds`
    are the rows' training-fold entry thresholds, needed by entry_rule train_quantile (see `resolve_entry`).
    """
    execution = _execution_bars(predictions, grid.dates, lag_bars)
    if columns is None:
        columns = pd.Index(grid.tickers).get_indexer(pd.Index(predictions["ticker"]))
    inside = execution < len(grid.dates)
    if not inside.any():
        raise DataError(
            "no prediction can be traded: every signal is dated on the last price bar; "
            "load prices that extend past the predictions."
        )
    keys = execution[inside].astype(np.int64) * len(grid.tickers) + columns[inside]
    if has_duplicates(keys, len(grid.dates) * len(grid.tickers)):
        raise DataError(
            "two predictions of one ticker trade at the same bar (trade_date collisions); "
            "keep one trade_date per ticker and bar."
        )
    target = target_positions(predictions["p_down"].to_numpy(), predictions["p_up"].to_numpy(), config, thresholds)
    positions = np.zeros((len(grid.dates), len(grid.tickers)))
    positions[execution[inside], columns[inside]] = target[inside]
    positions = np.where(grid.listed, positions, 0.0)
    bars = execution[inside]
    return PositionPlan(positions, int(bars.min()), int(bars.max()), int((~inside).sum()))


# -- simulation ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moves:
    before: FloatArray  # earned by the position carried in from the previous bar
    after: FloatArray  # earned by the position established at this bar


def market_moves(grid: PriceGrid, execution: str) -> Moves:
    previous_close = np.vstack([np.full((1, grid.close.shape[1]), np.nan), grid.close[:-1]])
    if execution == "next_open":
        if grid.open is None:
            raise ConfigError("next_open execution needs open prices; build the grid with need_open=True.")
        before = grid.open / previous_close - 1.0
        after = grid.close / grid.open - 1.0
    else:
        before = grid.close / previous_close - 1.0
        after = np.zeros_like(before)
    return Moves(np.nan_to_num(before, nan=0.0), np.nan_to_num(after, nan=0.0))


@dataclass(frozen=True)
class Sleeves:
    gross: FloatArray
    net: FloatArray
    cost: FloatArray
    turnover: FloatArray
    factors: BarFactors


def simulate(positions: FloatArray, moves: Moves, cost_rate: float, borrow_daily: float) -> Sleeves:
    """Per-ticker sleeve returns of a position grid (see the module docstring for the formulas)."""
    previous = np.vstack([np.zeros((1, positions.shape[1])), positions[:-1]])
    gross = (1.0 + previous * moves.before) * (1.0 + positions * moves.after) - 1.0
    turnover = np.abs(positions - previous)
    borrow = borrow_daily * np.maximum(-previous, 0.0)
    cost = cost_rate * turnover + borrow
    net = (1.0 + gross) * (1.0 - cost) - 1.0
    factors = BarFactors(positions, previous, moves.before, moves.after, cost_rate, borrow)
    return Sleeves(gross, net, cost, turnover, factors)


def _window(sleeves: Sleeves, start: int, stop: int) -> Sleeves:
    cut = slice(start, stop)
    f = sleeves.factors
    factors = BarFactors(
        f.position[cut], f.previous[cut], f.move_before[cut], f.move_after[cut], f.cost_rate, f.borrow[cut]
    )
    return Sleeves(sleeves.gross[cut], sleeves.net[cut], sleeves.cost[cut], sleeves.turnover[cut], factors)


def _equal_weights(active: BoolArray) -> FloatArray:
    counts = active.sum(axis=1, keepdims=True)
    return np.where(active, 1.0 / np.maximum(counts, 1), 0.0)


# -- the entry point ----------------------------------------------------------------------------------------------
def run_backtest(
    predictions: pd.DataFrame, prices: pd.DataFrame, config: BacktestConfig | None = None, *, lag_bars: int = 1
) -> BacktestResult:
    """Backtest walk-forward out-of-sample probabilities against long bars.

    `lag_bars` is how many bars after its signal date a prediction is executed (1 = the next bar); anything below 1
    raises LeakageError, as does a same-bar `execution` or a `trade_date` on or before `date`. A `trade_date`
    column, when present, sets each fill bar instead (the first bar on or after it).

    The entry rule is `config.entry_rule`; train_quantile reads each row's training-fold thresholds from the
    predictions (trendcast.backtest.entry) and falls back to the fixed rule, with a warning and a note, on a
    frame that has none. `result.entry` and `result.config.entry_rule` say which rule was applied.

    Examples:
        >>> result = run_backtest(predictions, store.load(tickers), BacktestConfig(long_short=True))  # doctest: +SKIP
        >>> result.metrics["strategy"]["sharpe"]  # doctest: +SKIP
    """
    config = config or BacktestConfig()
    check_lookahead(predictions, execution=config.execution, lag_bars=lag_bars)
    frame = validate_predictions(predictions)
    columns, names = pd.factorize(frame["ticker"], sort=True)
    grid = price_grid(prices, [str(name) for name in names], need_open=config.execution == "next_open")
    entry, thresholds = resolve_entry(frame, config)
    config = config.model_copy(update={"entry_rule": entry.rule})
    plan = position_grid(frame, grid, config, lag_bars, columns, thresholds)
    start, stop = plan.first_bar, min(plan.last_bar + 2, len(grid.dates))  # one bar past the last order
    moves = market_moves(grid, config.execution)
    cost_rate = (config.commission_bps + config.slippage_bps) / 1e4
    borrow = config.borrow_bps_annual / 1e4 / BORROW_DAYS_PER_YEAR
    strategy = _window(simulate(plan.positions, moves, cost_rate, borrow), start, stop)
    benchmark_positions = np.where(grid.listed & (np.arange(len(grid.dates))[:, None] >= start), 1.0, 0.0)
    benchmark = _window(simulate(benchmark_positions, moves, 0.0, 0.0), start, stop)
    return _assemble(config, grid, start, stop, strategy, benchmark, plan.dropped, entry)


def _assemble(
    config: BacktestConfig,
    grid: PriceGrid,
    start: int,
    stop: int,
    strategy: Sleeves,
    benchmark: Sleeves,
    dropped: int,
    entry: EntryRule,
) -> BacktestResult:
    dates = grid.dates[start:stop]
    active = grid.listed[start:stop]
    weights = _equal_weights(active)

    def portfolio(values: FloatArray) -> pd.Series:
        return pd.Series(np.sum(weights * values, axis=1), index=dates)

    def per_ticker(values: FloatArray) -> pd.DataFrame:
        return pd.DataFrame(np.where(active, values, np.nan), index=dates, columns=grid.tickers)

    returns, bench = portfolio(strategy.net), portfolio(benchmark.net)
    trades = extract_trades(strategy.factors, dates, grid.tickers)
    strategy_stats = _position_stats(strategy, weights, trades["return"].to_numpy(dtype=np.float64))
    bench_stats = _position_stats(benchmark, weights, _holding_returns(benchmark, active))
    table = m.return_metrics(pd.DataFrame({"strategy": returns, "benchmark": bench}), bench, config.risk_free_rate)
    metrics = {
        "strategy": {**_floats(table["strategy"]), **strategy_stats},
        "benchmark": {**_floats(table["benchmark"]), **bench_stats},
    }
    ticker_returns, bench_ticker = per_ticker(strategy.net), per_ticker(benchmark.net)
    return BacktestResult(
        config=config,
        returns=returns,
        gross_returns=portfolio(strategy.gross),
        benchmark_returns=bench,
        ticker_returns=ticker_returns,
        benchmark_ticker_returns=bench_ticker,
        positions=pd.DataFrame(strategy.factors.position, index=dates, columns=grid.tickers),
        turnover=portfolio(strategy.turnover),
        costs=per_ticker(strategy.cost),
        portfolio_costs=portfolio(strategy.cost),
        trades=trades,
        metrics=metrics,
        ticker_metrics=_ticker_metrics(ticker_returns, bench_ticker, strategy, active, trades, config),
        entry=entry,
        dropped_signals=dropped,
        notes=_notes(config, dropped, entry),
    )


def _notes(config: BacktestConfig, dropped: int, entry: EntryRule) -> list[str]:
    notes = [f"Entry rule: {entry.describe()}."]
    if entry.fallback:
        notes.append(f"The default train_quantile entry rule was not applied: {entry.fallback}.")
    if note := quantile_note(entry, config):
        notes.append(note)
    if dropped:
        notes.append(f"{dropped} signal(s) dated on the last price bar could not be traded and were left out.")
    if config.execution == "next_close":
        notes.append(
            "Execution at the next close: a signal dated t earns close(t+1) -> close(t+2), so a 1-day "
            "label's own move (close t -> t+1) is not part of the result; next_open captures most of it."
        )
    return notes


def _floats(column: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in column.items()}


def _holding_returns(benchmark: Sleeves, active: BoolArray) -> FloatArray:
    """Buy-and-hold has one trade per ticker held in the window: its return is the compounded sleeve return."""
    held = (benchmark.factors.position != 0).any(axis=0)
    return np.asarray(m.total_return(np.where(active, benchmark.net, np.nan)), dtype=np.float64)[held]


def _position_stats(sleeves: Sleeves, weights: FloatArray, per_trade: FloatArray) -> dict[str, float]:
    """Trade count and hit rate, annualised turnover, average gross exposure and costs paid (portfolio level)."""
    n_trades = len(per_trade)
    return {
        "n_trades": float(n_trades),
        "win_rate_trades": float(np.mean(per_trade > 0)) if n_trades else float("nan"),
        "avg_trade_return": float(np.mean(per_trade)) if n_trades else float("nan"),
        "turnover": float(np.mean(np.sum(weights * sleeves.turnover, axis=1)) * m.PERIODS_PER_YEAR),
        "exposure": float(np.mean(np.sum(weights * np.abs(sleeves.factors.position), axis=1))),
        "total_costs": float(np.sum(weights * sleeves.cost)),
    }


def _ticker_metrics(
    returns: pd.DataFrame,
    benchmark: pd.DataFrame,
    sleeves: Sleeves,
    active: BoolArray,
    trades: pd.DataFrame,
    config: BacktestConfig,
) -> pd.DataFrame:
    """Return metrics of each ticker's sleeve (against its own buy-and-hold) plus trade and position stats."""
    table = m.return_metrics(returns, benchmark, config.risk_free_rate).T
    codes = pd.Index(returns.columns).get_indexer(pd.Index(trades["ticker"]))
    count = np.bincount(codes, minlength=returns.shape[1]).astype(np.float64)
    wins = np.bincount(codes, weights=(trades["return"] > 0).to_numpy(np.float64), minlength=returns.shape[1])
    days = np.maximum(active.sum(axis=0), 1)
    table["n_trades"] = count
    table["win_rate_trades"] = np.divide(wins, count, out=np.full_like(count, np.nan), where=count > 0)
    table["turnover"] = np.where(active, sleeves.turnover, 0.0).sum(axis=0) / days * m.PERIODS_PER_YEAR
    table["exposure"] = np.where(active, np.abs(sleeves.factors.position), 0.0).sum(axis=0) / days
    table["total_costs"] = np.where(active, sleeves.cost, 0.0).sum(axis=0)
    table["benchmark_total_return"] = m.total_return(benchmark.to_numpy())
    table["benchmark_sharpe"] = m.sharpe(benchmark.to_numpy(), config.risk_free_rate)
    table.index.name = "ticker"
    return table


# -- several models ------------------------------------------------------------------------------------------------
COMPARISON_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "n_trades",
    "win_rate_trades",
    "exposure",
    "total_costs",
)


def compare_models(
    predictions: Mapping[str, pd.DataFrame], prices: pd.DataFrame, config: BacktestConfig | None = None
) -> pd.DataFrame:
    """Backtest each model's predictions with one config: a row per model (plus buy-and-hold), key metrics as columns.

    Models are compared on the same tickers and days only if their predictions cover the same ones; `accuracy`
    (argmax vs label) is added where the predictions carry labels.
    """
    rows: dict[str, dict[str, float]] = {}
    benchmark: dict[str, float] = {}
    for name, frame in predictions.items():
        result = run_backtest(frame, prices, config)
        rows[name] = {key: result.metrics["strategy"][key] for key in COMPARISON_METRICS}
        rows[name]["accuracy"] = _accuracy(frame)
        benchmark = benchmark or {key: result.metrics["benchmark"][key] for key in COMPARISON_METRICS}
    if benchmark:
        rows["buy & hold"] = {**benchmark, "accuracy": float("nan")}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


def _accuracy(frame: pd.DataFrame) -> float:
    if "label" not in frame:
        return float("nan")
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.isin(labels, (0.0, 1.0, 2.0))
    if not known.any():
        return float("nan")
    predicted = np.argmax(frame[["p_down", "p_neutral", "p_up"]].to_numpy(dtype=np.float64), axis=1)
    return float(np.mean(predicted[known] == labels[known]))
