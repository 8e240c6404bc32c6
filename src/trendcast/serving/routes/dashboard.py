"""The dashboard's API: GET /api/v1/prices/{ticker}, /api/v1/history/{ticker}, /api/v1/backtest/{ticker} and
/api/v1/model/card. Thin handlers over `serving.dashboard`, which does the blocking work in worker threads and keeps
the answers per served model version (docs/api.md has the fields and the card's "better" rule)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from trendcast.data.validation import TICKER_PATTERN
from trendcast.serving import dashboard as data
from trendcast.serving.dashboard import DashboardCache
from trendcast.serving.dependencies import ModelDep, StoreDep
from trendcast.serving.routes.predictions import PREDICT_ERRORS
from trendcast.serving.schemas import (
    BacktestPublic,
    ErrorResponse,
    HistoryPublic,
    ModelCardPublic,
    PricesPublic,
)

router = APIRouter(prefix="/api/v1", tags=["dashboard"])

_ERR = {"model": ErrorResponse}

NO_EVALUATION: dict[int | str, dict[str, Any]] = {
    409: {**_ERR, "description": "The served model was saved without its out-of-sample predictions (no_evaluation)"}
}
TICKER_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in PREDICT_ERRORS.items() if k in (401, 429, 503)},
    404: {**_ERR, "description": "Unknown ticker (unknown_ticker)"},
    422: {**_ERR, "description": "Bad ticker or date (YYYY-MM-DD), or start after end (validation_error)"},
}

Ticker = Annotated[
    str,
    Path(pattern=TICKER_PATTERN, description="A ticker in the server's store (GET /api/v1/tickers); case-insensitive."),
]
Start = Annotated[date | None, Query(description="First date, YYYY-MM-DD (inclusive). Omitted: from the start.")]
End = Annotated[date | None, Query(description="Last date, YYYY-MM-DD (inclusive). Omitted: to the end.")]


async def get_dashboard(request: Request) -> DashboardCache:
    """This worker's dashboard memo, created on first use (on the event loop, so once)."""
    state = request.app.state
    cache: DashboardCache | None = getattr(state, "dashboard", None)
    if cache is None:
        cache = state.dashboard = DashboardCache()
    return cache


DashboardDep = Annotated[DashboardCache, Depends(get_dashboard)]


@router.get("/prices/{ticker}", summary="Stored daily bars of a ticker", responses=TICKER_ERRORS)
async def prices(ticker: Ticker, store: StoreDep, start: Start = None, end: End = None) -> PricesPublic:
    """Open, high, low, close and volume of every stored bar of `ticker` dated in [start, end], oldest first."""
    data.check_range(start, end)
    return await asyncio.to_thread(data.prices, store, ticker.upper(), start, end)


@router.get(
    "/history/{ticker}",
    summary="The served model's out-of-sample predictions for a ticker",
    responses={**TICKER_ERRORS, **NO_EVALUATION},
)
async def history(
    ticker: Ticker, serving: ModelDep, store: StoreDep, cache: DashboardDep, start: Start = None, end: End = None
) -> HistoryPublic:
    """The walk-forward predictions of the served model's kind for `ticker` with signal dates in [start, end]: each
    made by a model fitted on earlier folds only, with the outcome where it is known, and the hit rate over those.
    They were saved with the model at training time (409 no_evaluation for a model saved without them)."""
    data.check_range(start, end)
    symbol, bundle = ticker.upper(), serving.served
    await asyncio.to_thread(data.check_ticker, store, symbol)
    version = data.cache_version(bundle)
    evaluation = await cache.get(version, "evaluation", lambda: data.load_evaluation(bundle))
    points = await cache.get(
        version,
        ("history", symbol),
        lambda: data.history_points(data.ticker_rows(evaluation, symbol), bundle.model.class_names),
    )
    return data.history(bundle, points, symbol, start, end)


@router.get(
    "/backtest/{ticker}",
    summary="Backtest of the served model's out-of-sample predictions for a ticker, after costs",
    responses={**TICKER_ERRORS, **NO_EVALUATION},
)
async def backtest(
    ticker: Ticker, serving: ModelDep, store: StoreDep, cache: DashboardDep, start: Start = None, end: End = None
) -> BacktestPublic:
    """The backtest engine on the predictions of /api/v1/history/{ticker} dated in [start, end]: each signal trades
    at the next bar (`execution`), after commission and slippage (`costs_bps`), against buy-and-hold of the ticker
    over the same days. Equity of both starts at 1.0 on the bar before the first fill."""
    data.check_range(start, end)
    symbol, bundle = ticker.upper(), serving.served
    await asyncio.to_thread(data.check_ticker, store, symbol)
    version = data.cache_version(bundle)
    evaluation = await cache.get(version, "evaluation", lambda: data.load_evaluation(bundle))
    return await cache.get(
        version,
        ("backtest", symbol, start, end),
        lambda: data.backtest(bundle, evaluation, store, symbol, start, end),
    )


@router.get(
    "/model/card",
    summary="The served model's card: its scores against the baselines and its promotion decision",
    responses={k: v for k, v in PREDICT_ERRORS.items() if k in (401, 429, 503)},
)
async def model_card(serving: ModelDep, cache: DashboardDep) -> ModelCardPublic:
    """Who is served (name, version, alias, kind, trained-through), the pooled out-of-sample scores with 95%
    intervals of every model evaluated with it (baselines included), the promotion decision and its gates, and a
    verdict with a plain sentence: "better" only when its AUC beats every baseline's and the paired evidence agrees
    (rule in docs/api.md)."""
    bundle = serving.served
    return await cache.get(
        data.cache_version(bundle), "card", lambda: data.model_card(bundle, bundle.evaluation_report())
    )
