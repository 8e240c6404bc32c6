"""The whole trendcast exception tree, drawn once.

    TrendcastError
    ├── ConfigError                 a setting or experiment value is invalid
    ├── DataError                   input data cannot be used
    │   ├── SourceError             a source cannot be read (file, network, package data)
    │   ├── SchemaError             a file lacks a column or has unparsable values
    │   │   └── InvalidTickerError  a ticker the API would refuse (so it is never stored)
    │   ├── ValidationError         row-level problems found with --strict
    │   ├── MissingPricesError      no bars stored for a ticker
    │   └── InsufficientHistoryError   fewer bars than a window needs
    ├── LeakageError                something tried to look past a training cut
    ├── ModelNotReadyError          no trained/registered model to use
    └── ModelError                  a model cannot be fit, saved or loaded

Leaf exceptions carry context (ticker, path, column) as attributes. The API maps the tree to HTTP codes in
one handler; the CLI prints the message and exits non-zero.
"""

from __future__ import annotations


class TrendcastError(Exception):
    """Base of every error trendcast raises on purpose."""


class ConfigError(TrendcastError):
    """A setting or experiment value is invalid."""


class DataError(TrendcastError):
    """Input data cannot be used as given."""


class SourceError(DataError):
    """A data source cannot be read: missing file, no network, broken package data."""


class SchemaError(DataError):
    """A file is structurally wrong: missing column, unparsable dates or numbers."""

    def __init__(self, message: str, *, path: str | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.column = column


class InvalidTickerError(SchemaError):
    """A ticker (file name, ticker column or --tickers) that does not match the pattern the API accepts."""

    def __init__(self, message: str, *, ticker: str, path: str | None = None, column: str | None = None) -> None:
        super().__init__(message, path=path, column=column)
        self.ticker = ticker


class ValidationError(DataError):
    """Row-level problems were found and strict mode turns them into an error."""


class MissingPricesError(DataError):
    """No bars are stored for a ticker."""

    def __init__(self, ticker: str, known: list[str] | None = None) -> None:
        import difflib

        hint = ""
        if known:
            close = difflib.get_close_matches(ticker, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Known tickers: {', '.join(known[:10])}."
        super().__init__(f"No bars stored for ticker {ticker!r}.{hint} Ingest it with `trendcast data ingest`.")
        self.ticker = ticker


class InsufficientHistoryError(DataError):
    """Not enough bars before a date to build a window."""

    def __init__(self, ticker: str, needed: int, available: int, as_of: str, *, missing: int | None = None) -> None:
        """`missing`: trading days still needed, indicator warm-up included (default: needed - available)."""
        missing = needed - available if missing is None else missing
        warm_up = " (the indicators' warm-up included)" if missing > needed - available else ""
        super().__init__(
            f"{ticker}: {available} usable bars up to {as_of}, {needed} needed; "
            f"{missing} days of history are missing{warm_up}."
        )
        self.ticker = ticker
        self.needed = needed
        self.available = available
        self.missing = missing


class LeakageError(TrendcastError):
    """Something tried to use data past a training cut."""


class ModelNotReadyError(TrendcastError):
    """No trained or registered model is available."""


class ModelError(TrendcastError):
    """A model cannot be fit, saved or loaded."""
