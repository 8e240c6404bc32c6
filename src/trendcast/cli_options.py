"""Typed command-line values shared by `cli.py` and the stage command modules (`explain/commands.py`, ...).

A bad value is a usage error, like any option of the wrong type (`--window abc`): Typer prints
`Invalid value for '--start': ...` on stderr, with no traceback, and exits 2. Errors found after parsing (data,
settings, models) are TrendcastErrors: one `error:` line on stderr and exit 1.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import typer

DATE_METAVAR = "YYYY-MM-DD"


def iso_date(value: str) -> str:
    """`value` as YYYY-MM-DD if it is a real calendar day, else a usage error saying why."""
    text = value.strip()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        why = f" ({exc})" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else ""
        raise typer.BadParameter(f"{value!r} is not a date{why}; use YYYY-MM-DD, e.g. 2012-02-29.") from exc


def date_option(help: str) -> Any:
    """`typer.Option` for an optional date, passed on as a valid YYYY-MM-DD string."""
    return typer.Option(parser=iso_date, metavar=DATE_METAVAR, help=help)
