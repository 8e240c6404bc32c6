"""GET /api/v1/tickers: the tickers the server can predict by name, with the dates it holds for each."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from trendcast.serving.dependencies import StoreDep
from trendcast.serving.routes.predictions import PREDICT_ERRORS
from trendcast.serving.schemas import TickerInfo, TickersPublic

router = APIRouter(prefix="/api/v1", tags=["data"])


@router.get(
    "/tickers",
    summary="Stored tickers and their date ranges",
    responses={k: v for k, v in PREDICT_ERRORS.items() if k in (401, 429, 503)},
)
async def tickers(store: StoreDep) -> TickersPublic:
    """Every ticker in the bar store with its first and last date and number of bars."""
    summaries = await asyncio.to_thread(store.tickers)
    items = [TickerInfo(ticker=s.ticker, first=s.first.date(), last=s.last.date(), rows=s.rows) for s in summaries]
    return TickersPublic(tickers=items, count=len(items))
