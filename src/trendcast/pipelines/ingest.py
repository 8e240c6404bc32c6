"""Ingest: read a source, validate everything, then upsert one transaction per ticker.

Validation runs on the whole input before the first write, so a structurally bad file (or any problem under
`strict`) writes nothing at all. Tickers must match the API's pattern (requested ones before the source is even
asked), so nothing is stored that the service could never serve.
"""

from __future__ import annotations

from dataclasses import dataclass

from trendcast.data.sources import PriceSource, restrict_dates
from trendcast.data.store import BarStore
from trendcast.data.validation import ValidationReport, check_ticker, validate_bars
from trendcast.errors import DataError


@dataclass(frozen=True)
class IngestResult:
    written: dict[str, int]  # rows upserted per ticker
    report: ValidationReport

    @property
    def rows(self) -> int:
        return sum(self.written.values())


def ingest(
    source: PriceSource,
    store: BarStore,
    *,
    tickers: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    strict: bool = False,
) -> IngestResult:
    for ticker in tickers or []:
        check_ticker(ticker, where="--tickers: ")
    raw = restrict_dates(source.load(tickers), start, end)
    if raw.empty:
        raise DataError(f"source {source.name!r} returned no rows for the requested tickers and dates")
    for ticker in raw["ticker"].unique():  # trendcast's sources check with file and line; this covers any other
        check_ticker(str(ticker), where=f"source {source.name!r}: ")
    clean, report = validate_bars(raw, strict=strict)
    if clean.empty:
        raise DataError(f"every row was rejected by validation: {report.summary()}")
    return IngestResult(store.upsert(clean), report)
