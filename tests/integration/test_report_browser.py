"""The HTML report opens in headless Chromium offline, shows every chart, and logs no console error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_service
from tests.integration.dashboard_support import CHROMIUM, CHROMIUM_ARGS
from trendcast.backtest import run_backtest
from trendcast.config import BacktestConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.reporting import write_report

pytestmark = pytest.mark.integration


def _predictions(bars: pd.DataFrame) -> pd.DataFrame:
    """Noisy momentum probabilities with labels from the next day's return."""
    bars = bars.sort_values(["ticker", "date"]).reset_index(drop=True)
    close = bars.groupby("ticker")["close"]
    last = close.pct_change().fillna(0.0).to_numpy()
    forward = (close.shift(-1) / bars["close"] - 1.0).to_numpy()
    up = 1.0 / (1.0 + np.exp(-120.0 * last + np.random.default_rng(0).normal(0, 0.5, len(bars))))
    frame = bars[["ticker", "date"]].assign(p_up=0.05 + 0.8 * up, p_down=0.05 + 0.8 * (1 - up) * 0.7)
    frame["p_neutral"] = 1.0 - frame["p_up"] - frame["p_down"]
    frame["label"] = np.select([forward > 0.005, forward < -0.005, np.isfinite(forward)], [2, 0, 1], -1)
    return frame.loc[frame["date"] >= frame["date"].min() + pd.Timedelta(days=60)]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    bars = planted_signal_bars(n_tickers=3, n_days=400, seed=9)
    predictions = _predictions(bars)
    result = run_backtest(predictions, bars, BacktestConfig(long_short=True, execution="next_open"))
    comparison = pd.DataFrame({"accuracy": [0.41, 0.37], "sharpe": [1.1, 0.2]}, index=["bilstm", "momentum"])
    return write_report(
        result,
        predictions,
        tmp_path / "report.html",
        title="Browser check",
        extra_tables={"Model comparison": comparison},
    )


def test_report_renders_offline_in_chromium(report: Path, tmp_path: Path) -> None:
    require_service("chromium", CHROMIUM.exists, "apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    html = report.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img.chart", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
            alts = page.eval_on_selector_all("img.chart", "els => els.map(e => e.alt)")
            heading = page.inner_text("h1")
            comparison = page.inner_text("section.extra")
            strategy_sharpe = page.inner_text("#metric-sharpe td.strategy")
            screenshot = Path(os.environ.get("TRENDCAST_SCREENSHOT", tmp_path / "report.png"))
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert len(widths) == 7 and all(width > 300 for width in widths)
    assert "Confusion matrix" in alts and "Calibration plot" in alts
    assert heading == "Browser check"
    assert "bilstm" in comparison
    assert strategy_sharpe not in {"", "–"}
    assert screenshot.stat().st_size > 50_000
