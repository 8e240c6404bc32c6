"""The study's self-contained HTML page: settings, the summary table with the verdict, one equity curve per ranking
model (growth of 1, before and after costs) and each model's per-year portfolio table.

Charts are base64 PNG data URIs and styles are inline (as in reporting/html.py), so the page opens offline and
loads nothing from the network. The template is `templates/study.html.j2` (autoescaped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from trendcast.backtest import metrics as m
from trendcast.backtest.portfolio import PortfolioResult
from trendcast.reporting.html import _embed, _table_html
from trendcast.reporting.plots import BENCHMARK_COLOR, STRATEGY_COLOR, Chart, _figure

TEMPLATE = "study.html.j2"
_PERCENT = ("annual return gross", "annual return net", "max DD net")
_YEAR_COLUMNS = {
    "days": "days",
    "gross_annual_return": "annual return gross",
    "net_annual_return": "annual return net",
    "gross_sharpe": "Sharpe gross",
    "net_sharpe": "Sharpe net",
    "net_max_drawdown": "max DD net",
    "mean_turnover": "turnover",
}


def equity_chart(name: str, book: PortfolioResult) -> Chart:
    """Growth of 1 of one model's portfolio before and after costs, by entry date."""
    figure: Figure
    figure, ax = _figure()
    dates = pd.DatetimeIndex(book.daily["entry_date"])
    for column, color in (("gross", BENCHMARK_COLOR), ("net", STRATEGY_COLOR)):
        label = "before costs" if column == "gross" else f"after {book.cost_bps:g} bps per side"
        ax.plot(dates, m.equity_curve(book.daily[column].to_numpy()), label=label, color=color, linewidth=1.3)
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.set(title=f"{name}: long top {book.k} / short bottom {book.k}", ylabel="growth of 1")
    ax.legend(loc="upper left")
    return Chart(name, f"{name}: equity of the top-{book.k} / bottom-{book.k} portfolio", figure)


def _summary_frame(report: Mapping[str, Any]) -> pd.DataFrame:
    """The summary table as text cells (each number in its own format; portfolio cells blank for non-rankers)."""
    from trendcast.pipelines.study import summary_rows

    rows = []
    for row in summary_rows(report):
        ranks = bool(row["can_rank"])

        def book(key: str, fmt: str, row: dict[str, Any] = row, ranks: bool = ranks) -> str:
            return _fmt(row[key], fmt) if ranks else "cannot rank"

        rows.append(
            {
                "model": row["model"],
                "accuracy [95% CI]": _with_ci(row, "accuracy", "{:.2%}"),
                "AUC [95% CI]": _with_ci(row, "auc", "{:.3f}"),
                "IC [95% CI]": _with_ci(row, "ic", "{:.4f}", point="ic_mean"),
                "Rank IC [95% CI]": _with_ci(row, "rank_ic", "{:.4f}", point="rank_ic_mean"),
                "ICIR": _fmt(row["icir"], "{:.3f}"),
                "Sharpe gross": book("gross_sharpe", "{:.2f}"),
                "Sharpe net": book("net_sharpe", "{:.2f}"),
                "annual return net": book("net_annual_return", "{:.2%}"),
                "max DD net": book("net_max_drawdown", "{:.2%}"),
                "turnover (daily)": book("mean_turnover", "{:.2f}"),
            }
        )
    return pd.DataFrame(rows)


def _fmt(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def _with_ci(row: Mapping[str, Any], key: str, fmt: str, point: str | None = None) -> str:
    low, high = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
    return f"{_fmt(row[point or key], fmt)} [{_fmt(low, fmt)}, {_fmt(high, fmt)}]"


def _year_table(book: PortfolioResult) -> pd.DataFrame:
    frame = pd.DataFrame(book.by_year()).T[list(_YEAR_COLUMNS)].rename(columns=_YEAR_COLUMNS)
    frame.index.name = "year"
    return frame.astype({"days": int})


def _settings(report: Mapping[str, Any]) -> dict[str, str]:
    data, book, config = report["data"], report["portfolio"], report["config"]
    timing = report.get("timing") or {}
    wall = timing.get("wall_seconds")
    return {
        "Universe": f"{data['n_tickers']} tickers, {data['n_samples']:,} samples, "
        f"{data['first_date']} → {data['last_date']}",
        "Label": f"{data['label_mode']}, horizon {data['horizon']} day(s)",
        "Window": f"{data['window']} days x {data['n_features']} features",
        "Walk-forward": f"{len(report['folds'])} purged folds ({config['walk_forward']['scheme']})",
        "Portfolio": f"long top {book['k']}, short bottom {book['k']}, equal weight; {book['execution']}",
        "Costs": f"{book['cost_bps']:g} bps per unit traded, each side",
        "Run": f"MLflow run {report['run_id']}"
        + (f", {wall / 60:.1f} min on {report['machine']['cpus']} CPUs" if wall else ""),
    }


def render_study_html(report: Mapping[str, Any], portfolios: Mapping[str, PortfolioResult]) -> str:
    """The page as an HTML string (see write_study_html)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    comparison = report.get("comparison") or {}
    notes = [f"{name}: {e['portfolio']['note']}" for name, e in report["models"].items() if e["portfolio"]["note"]]
    return environment.get_template(TEMPLATE).render(
        title=f"trendcast study: {report['name']}",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings=_settings(report),
        summary=_table_html(_summary_frame(report)),
        verdicts=[f"{k}: {v}" for k, v in (comparison.get("verdicts") or {}).items()],
        notes=notes,
        charts=[_embed(equity_chart(name, book)) for name, book in portfolios.items()],
        years={name: _table_html(_year_table(book), percent_columns=_PERCENT) for name, book in portfolios.items()},
    )


def write_study_html(report: Mapping[str, Any], portfolios: Mapping[str, PortfolioResult], path: Path) -> Path:
    """Write the self-contained study page and return its path.

    Examples:
        >>> write_study_html(outcome.report, outcome.portfolios, Path("study.html"))  # doctest: +SKIP
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_study_html(report, portfolios), encoding="utf-8")
    return path
