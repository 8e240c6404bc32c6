"""How metrics are shown to people (HTML report and terminal tables): labels and number formats."""

from __future__ import annotations

import math

from trendcast.backtest.engine import METRIC_NAMES, BacktestResult

# How each metric is shown: label and format ("pct" = percent, "num" = 2 decimals, "int" = whole number).
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("Volatility (ann.)", "pct"),
    "sharpe": ("Sharpe", "num"),
    "sortino": ("Sortino", "num"),
    "calmar": ("Calmar", "num"),
    "max_drawdown": ("Max drawdown", "pct"),
    "max_drawdown_days": ("Longest drawdown (calendar days)", "int"),
    "max_drawdown_bars": ("Longest drawdown (trading days)", "int"),
    "win_rate_days": ("Win rate (days)", "pct"),
    "profit_factor": ("Profit factor (days)", "num"),
    "avg_win": ("Average winning day", "pct"),
    "avg_loss": ("Average losing day", "pct"),
    "beta": ("Beta to benchmark", "num"),
    "alpha": ("Alpha (ann.)", "pct"),
    "n_trades": ("Trades", "int"),
    "win_rate_trades": ("Win rate (trades)", "pct"),
    "avg_trade_return": ("Average trade", "pct"),
    "turnover": ("Turnover (x capital / year)", "num"),
    "exposure": ("Exposure (avg. gross)", "pct"),
    "total_costs": ("Costs paid (sum of daily)", "pct"),
}


def format_value(value: object, kind: str = "num") -> str:
    """A metric as text: percent, 2 decimals or a whole number; '–' for NaN, '∞' for infinity."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if kind == "pct":
        return f"{number * 100:.2f}%"
    if kind == "int":
        return f"{number:,.0f}"
    return f"{number:,.2f}"


def metric_rows(result: BacktestResult) -> list[dict[str, str]]:
    rows = []
    for name in METRIC_NAMES:
        label, kind = METRIC_FORMATS.get(name, (name, "num"))
        rows.append(
            {
                "name": name,
                "label": label,
                "strategy": format_value(result.metrics["strategy"][name], kind),
                "benchmark": format_value(result.metrics["benchmark"][name], kind),
            }
        )
    return rows
