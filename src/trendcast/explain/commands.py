"""`trendcast explain TICKER [--date D] [--top K] [--plot FILE]`: why the champion model predicts what it predicts.

Loads the champion's model bundle (`trendcast.tracking.load_champion`) with its explainer background, rebuilds the
ticker's feature window ending on `date` (default: the latest stored bar) from the bar store, explains it, and
prints the sentence, a table of the top features and an attention summary. `--plot` writes the waterfall and
attention strip as one PNG. The lead registers `explain` on the Typer app; it is also a plain function.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from trendcast.cli_options import date_option
from trendcast.errors import DataError, InsufficientHistoryError
from trendcast.features.feature_set import compute_features, days_still_needed, warmup_bars
from trendcast.features.indicators import resolve
from trendcast.models.base import DirectionModel

if TYPE_CHECKING:  # torch and Captum load only when a command runs
    from trendcast.explain.explanation import Explanation

console = Console()


def window_from_bars(
    model: DirectionModel, bars: pd.DataFrame, ticker: str, date: str | None = None
) -> tuple[np.ndarray, list[pd.Timestamp]]:
    """The raw feature window (window, n_features) of one ticker ending on the last bar on/before `date`."""
    own = bars[bars["ticker"] == ticker].sort_values("date")
    if date is not None:
        own = own[own["date"] <= pd.Timestamp(date)]
    if own.empty:
        raise DataError(f"no bars for {ticker} on or before {date or 'today'}; ingest with `trendcast data ingest`")
    indicators = resolve(list(model.feature_names))
    features = compute_features(own, indicators)
    values = features.to_numpy()
    finite = np.isfinite(values).all(axis=1)
    usable = int(np.argmin(finite[::-1])) if not finite.all() else len(finite)  # trailing run of complete rows
    as_of = str(features.index[-1].date())
    if usable < model.window:
        missing = days_still_needed(values, model.window, warmup_bars(indicators))  # the warm-up counts too
        raise InsufficientHistoryError(ticker, needed=model.window, available=usable, as_of=as_of, missing=missing)
    tail = features.iloc[-model.window :]
    return tail.to_numpy(dtype=np.float32), list(tail.index)  # float32, like WindowSet rows


def render(explanation: Explanation, out: Console) -> None:
    """The sentence, a table of the top features and an attention summary."""
    title = f"{explanation.ticker or ''} {explanation.as_of.date() if explanation.as_of is not None else ''}".strip()
    out.print(f"[bold]{title}[/] ({explanation.model})" if title else f"({explanation.model})")
    out.print(explanation.sentence, soft_wrap=True)
    table = Table(title=f"Top features (contribution to {explanation.output_space} of {explanation.predicted_label})")
    for column in ("feature", "group", "value", "contribution"):
        table.add_column(column, justify="right" if column in ("value", "contribution") else "left")
    for f in explanation.top_features:
        colour = "green" if f.contribution > 0 else "red"
        table.add_row(f.label, f.group, f.value_text, f"[{colour}]{f.contribution:+.4f}[/]")
    out.print(table)
    e, total = explanation, sum(explanation.contributions.values())
    out.print(
        f"{e.method} ({e.output_space}): base {e.base_value:.4f} + contributions {total:+.4f} = "
        f"{e.base_value + total:.4f}; model output {e.output_value:.4f} (additivity error {e.additivity_error:+.1e}, "
        f"{e.method_details['relative_error']:.1%} of the change)"
    )
    if explanation.attention is not None:
        heaviest = sorted(explanation.attention, key=lambda a: -a.weight)[:3]
        days = ", ".join(f"{a.date.date() if a.date is not None else a.step} ({a.weight:.0%})" for a in heaviest)
        out.print(
            f"attention: heaviest days {days}; last {explanation.attention_recent_days} days "
            f"{explanation.attention_recent_share or 0.0:.0%}"
        )


def explain(
    ticker: Annotated[str, typer.Argument(help="ticker to explain, e.g. AAPL")],
    date: Annotated[str | None, date_option("signal date (default: the latest stored bar)")] = None,
    top: Annotated[int, typer.Option(min=1, help="features in the table")] = 5,
    plot: Annotated[Path | None, typer.Option(help="write the waterfall + attention PNG to this file")] = None,
    method: Annotated[Literal["auto", "lime"], typer.Option(help="auto (IG, TreeSHAP, linear) or lime")] = "auto",
) -> None:
    """Explain the champion model's prediction for TICKER on DATE."""
    from trendcast.config import load_settings
    from trendcast.data.store import open_store
    from trendcast.tracking import load_champion

    settings = load_settings()
    loaded = load_champion(settings)
    symbol = ticker.strip().upper()
    with open_store(settings.resolved_database_url) as store:
        bars = store.load([symbol], end=date)
    window, dates = window_from_bars(loaded.model, bars, symbol, date)
    from trendcast.explain.explanation import explain_window

    explanation = explain_window(loaded.model, window, dates, symbol, top, loaded.background(), method=method)
    render(explanation, console)
    if plot is not None:
        from trendcast.explain.plots import plot_explanation

        console.print(f"wrote {plot_explanation(explanation, plot)}")
