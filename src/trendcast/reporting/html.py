"""One self-contained HTML backtest report: metric tables side by side, optional extra tables, and the charts.

Charts are embedded as base64 PNG data URIs and the styles are inline, so the file opens offline and loads
nothing from the network. The Jinja2 template lives in `templates/report.html.j2` (autoescaped).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from trendcast.backtest.engine import BacktestResult
from trendcast.reporting.formatting import METRIC_FORMATS, format_value, metric_rows
from trendcast.reporting.plots import Chart, figures, has_labels

TEMPLATE = "report.html.j2"
MAX_TRADE_ROWS = 50


@dataclass(frozen=True)
class EmbeddedChart:
    name: str
    title: str
    data_uri: str


def _embed(chart: Chart) -> EmbeddedChart:
    buffer = io.BytesIO()
    chart.figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return EmbeddedChart(chart.name, chart.title, f"data:image/png;base64,{encoded}")


def _table_html(
    frame: pd.DataFrame, percent_columns: tuple[str, ...] = (), labels: Mapping[str, str] | None = None
) -> Markup:
    """A frame as an escaped HTML table: numbers formatted, a meaningful index turned into the first column."""
    shown = frame.copy()
    if not isinstance(shown.index, pd.RangeIndex):
        shown = shown.reset_index(names=shown.index.name or "")
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        kind = "pct" if column in percent_columns else METRIC_FORMATS.get(str(column), ("", "num"))[1]
        kind = "int" if pd.api.types.is_integer_dtype(values) else kind
        shown[column] = [format_value(v, kind) for v in values]
    shown = shown.rename(columns=dict(labels or {}))
    return Markup(shown.to_html(classes="data", border=0, escape=True, na_rep="–", index=False))  # pandas escapes


_TICKER_COLUMNS = {
    "total_return": "Total return",
    "cagr": "CAGR",
    "sharpe": "Sharpe",
    "max_drawdown": "Max drawdown",
    "n_trades": "Trades",
    "win_rate_trades": "Win rate (trades)",
    "exposure": "Exposure",
    "turnover": "Turnover",
    "total_costs": "Costs",
    "benchmark_total_return": "Buy & hold return",
    "benchmark_sharpe": "Buy & hold Sharpe",
}


def _ticker_table(result: BacktestResult) -> Markup:
    frame = result.ticker_metrics[list(_TICKER_COLUMNS)]
    return _table_html(frame, percent_columns=("benchmark_total_return",), labels=_TICKER_COLUMNS)


def _trades_table(result: BacktestResult) -> Markup:
    trades = result.trades.sort_values(["entry_date", "ticker"], ascending=[False, True]).head(MAX_TRADE_ROWS)
    trades = trades.reset_index(drop=True)
    for column in ("entry_date", "exit_date"):
        trades[column] = trades[column].dt.strftime("%Y-%m-%d").fillna("open")
    trades["open"] = trades["open"].map({True: "yes", False: ""})
    return _table_html(trades, percent_columns=("return", "size"))


def _settings(result: BacktestResult) -> dict[str, str]:
    config = result.config
    return {
        "Period": f"{result.returns.index[0]:%Y-%m-%d} → {result.returns.index[-1]:%Y-%m-%d} "
        f"({len(result.returns)} trading days)",
        "Tickers": str(result.ticker_returns.shape[1]),
        "Positions": ("long/short" if config.long_short else "long/flat") + f", {config.sizing} sizing",
        "Entry rule": result.entry.describe(),
        "Execution": config.execution.replace("_", " "),
        "Costs": f"{config.commission_bps:g} bps commission + {config.slippage_bps:g} bps slippage per unit turnover"
        + (f", borrow {config.borrow_bps_annual:g} bps/year" if config.borrow_bps_annual else ""),
        "Risk-free rate": f"{config.risk_free_rate * 100:.2f}% a year",
    }


def render_report(
    result: BacktestResult,
    predictions: pd.DataFrame | None = None,
    *,
    title: str = "trendcast backtest",
    extra_tables: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """The report as an HTML string (see write_report)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template(TEMPLATE).render(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings=_settings(result),
        metrics=metric_rows(result),
        extra_tables={name: _table_html(frame) for name, frame in (extra_tables or {}).items()},
        charts=[_embed(chart) for chart in figures(result, predictions)],
        model_charts_missing=not has_labels(predictions),
        tickers=_ticker_table(result),
        trades=_trades_table(result),
        n_trades=len(result.trades),
        max_trade_rows=MAX_TRADE_ROWS,
        notes=result.notes,
    )


def write_report(
    result: BacktestResult,
    predictions: pd.DataFrame | None,
    out_path: str | Path,
    *,
    title: str = "trendcast backtest",
    extra_tables: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the self-contained HTML report and return its path.

    `predictions` (with a `label` column) adds the confusion matrix and calibration plot; `extra_tables` maps a
    heading to a frame, e.g. {"Model comparison": frame}, shown before the charts.

    Examples:
        >>> write_report(result, predictions, "reports/backtest.html",
        ...              extra_tables={"Model comparison": comparison})  # doctest: +SKIP
    """
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result, predictions, title=title, extra_tables=extra_tables), encoding="utf-8")
    return path
