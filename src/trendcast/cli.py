"""`trendcast` command line: data, features, train, evaluate, backtest, report, explain, serve, run.

Every command reads the one `Settings` object; errors from the trendcast tree print as one red line and exit 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from trendcast.config import ExperimentConfig, LabelConfig, Settings, load_settings
from trendcast.errors import TrendcastError

console = Console()
app = typer.Typer(help="Honest, explained stock direction forecasts.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Ingest, list and show daily bars.", no_args_is_help=True)
features_app = typer.Typer(help="The feature catalog.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn trendcast errors into one clear line and exit code 1 (no traceback for expected problems)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrendcastError as exc:
            console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def _split(value: str | None) -> list[str] | None:
    return [v.strip().upper() for v in value.split(",") if v.strip()] if value else None


def _store(settings: Settings) -> Any:
    from trendcast.data.store import BarStore

    return BarStore(settings.resolved_database_url)


@data_app.command("ingest")
@friendly
def data_ingest(
    source: Annotated[str, typer.Option(help="bundled | csv | yahoo")] = "bundled",
    path: Annotated[str | None, typer.Option(help="CSV/Parquet file or folder (csv source)")] = None,
    tickers: Annotated[str | None, typer.Option(help="comma-separated tickers (default: all)")] = None,
    start: Annotated[str | None, typer.Option(help="first date, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="last date, YYYY-MM-DD")] = None,
    strict: Annotated[bool, typer.Option(help="treat any row-level problem as an error")] = False,
) -> None:
    """Load bars from a source into the store (idempotent upsert, validated first)."""
    from trendcast.data.sources import make_source
    from trendcast.pipelines.ingest import ingest

    settings = load_settings()
    src = make_source(source, path=path, start=start, end=end, timeout_s=settings.yahoo_timeout_s)
    store = _store(settings)
    with console.status(f"ingesting from {source}…"):
        result = ingest(src, store, tickers=_split(tickers), start=start, end=end, strict=strict)
    console.print(f"[green]stored[/] {result.rows:,} rows for {len(result.written)} tickers "
                  f"in {store.engine.url.render_as_string(hide_password=True)}")
    console.print(f"validation: {result.report.summary()}", soft_wrap=True)


@data_app.command("list")
@friendly
def data_list() -> None:
    """Stored tickers with their first and last dates and row counts."""
    summaries = _store(load_settings()).tickers()
    table = Table("ticker", "first", "last", "rows", title=f"{len(summaries)} tickers")
    for s in summaries:
        table.add_row(s.ticker, str(s.first.date()), str(s.last.date()), f"{s.rows:,}")
    console.print(table)


@data_app.command("show")
@friendly
def data_show(ticker: str, rows: Annotated[int, typer.Option(help="rows from the end")] = 10) -> None:
    """The last bars stored for TICKER."""
    frame = _store(load_settings()).load([ticker.upper()])
    table = Table(*frame.columns[1:], title=f"{ticker.upper()}: {len(frame):,} bars")
    for row in frame.tail(rows).itertuples(index=False):
        table.add_row(str(row.date.date()), *[f"{v:,.4f}" for v in row[2:]])
    console.print(table)


@features_app.command("list")
def features_list(group: Annotated[str | None, typer.Option(help="only this group")] = None) -> None:
    """The indicator catalog: name, group, meaning, lookback."""
    from trendcast.features.indicators import catalog

    items = [i for i in catalog() if group is None or i.group == group]
    table = Table("name", "group", "meaning", "lookback", title=f"{len(items)} features (TA-Lib)")
    for ind in items:
        table.add_row(ind.name, ind.group, ind.meaning, str(ind.lookback))
    console.print(table)


@app.command("summary")
@friendly
def summary(
    window: Annotated[int, typer.Option(help="window length in days")] = 60,
    horizon: Annotated[int, typer.Option(help="label horizon in days")] = 1,
    threshold: Annotated[float, typer.Option(help="neutral band (return)")] = 0.005,
) -> None:
    """Per ticker: date range, bars, usable samples and label balance (features and labels built from the store)."""
    print_universe_summary(load_settings(), ExperimentConfig(window=window, labels=LabelConfig(
        horizon=horizon, threshold=threshold)))


def print_universe_summary(settings: Settings, config: ExperimentConfig) -> None:
    import numpy as np

    from trendcast.features.windows import build_window_set

    bars = _store(settings).load(config.tickers)
    if bars.empty:
        raise TrendcastError("the store is empty; run `trendcast data ingest` first")
    ws = build_window_set(bars, window=config.window, labels=config.labels, features=config.features, progress=True)
    table = Table("ticker", "first", "last", "bars", "samples", "Down", "Neutral", "Up",
                  title=f"{ws.n_features} features, window {ws.window}, horizon {ws.horizon}, "
                        f"neutral band ±{config.labels.threshold:.2%}")
    for ticker, group in bars.groupby("ticker"):
        mask = ws.tickers == ticker
        counts = np.bincount(ws.labels[mask], minlength=3)
        table.add_row(str(ticker), str(group["date"].min().date()), str(group["date"].max().date()),
                      f"{len(group):,}", f"{int(mask.sum()):,}", *[f"{c:,}" for c in counts])
    console.print(table)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


