"""Stages of `trendcast run` after training: backtest the champion's out-of-sample predictions and write the HTML
report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from trendcast.config import Settings

Stage = Callable[[Settings, Any, Console], None]


def after_training() -> list[Stage]:
    return []
