"""The indicator catalog: each feature is a named TA-Lib call (or a small NumPy step) in a scale-free form.

Scale-free means ratios, returns and bounded oscillators, so one model can learn across tickers and price levels.
Every function is causal: its value at t uses bars up to t only (a property test checks it).
`catalog()` lists name, group, meaning and lookback; `trendcast features list` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import talib
from talib._ta_lib import MA_Type

SMA_TYPE = MA_Type.SMA  # moving-average type 0 (simple)

Arrays = dict[str, np.ndarray]  # open, high, low, close, volume as float64
Fn = Callable[[Arrays], np.ndarray]


@dataclass(frozen=True)
class Indicator:
    name: str
    group: str  # trend, momentum, volatility, volume, returns
    meaning: str
    lookback: int  # bars of history before the first valid value
    fn: Fn
    label: str  # short human name used in explanations, e.g. "RSI(14)"


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(numerator / denominator - 1.0)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / b, np.nan)


def _logret(close: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(close, np.nan)
    out[n:] = np.log(close[n:] / close[:-n])
    return out


def _diff(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[n:] = x[n:] - x[:-n]
    return out


def _sma_ratio(n: int) -> Fn:
    return lambda a: _ratio(a["close"], talib.SMA(a["close"], n))


def _ema_ratio(n: int) -> Fn:
    return lambda a: _ratio(a["close"], talib.EMA(a["close"], n))


def _macd(part: int) -> Fn:
    return lambda a: _safe_div(talib.MACD(a["close"], 12, 26, 9)[part], a["close"])


def _bbands(a: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return talib.BBANDS(a["close"], 20, 2.0, 2.0)


def _bb_pctb(a: Arrays) -> np.ndarray:
    upper, _, lower = _bbands(a)
    return _safe_div(a["close"] - lower, upper - lower)


def _bb_width(a: Arrays) -> np.ndarray:
    upper, middle, lower = _bbands(a)
    return _safe_div(upper - lower, middle)


def _volatility(n: int) -> Fn:
    return lambda a: talib.STDDEV(_logret(a["close"], 1), n, 1.0) * np.sqrt(n / (n - 1))


def _flow_change(flow: Callable[[Arrays], np.ndarray], n: int) -> Fn:
    """Change of a cumulative volume flow (OBV, A/D) over n days, per unit of volume traded in them."""
    return lambda a: _safe_div(_diff(flow(a), n), talib.SUM(a["volume"], n))


def _volume_z(n: int) -> Fn:
    return lambda a: _safe_div(a["volume"] - talib.SMA(a["volume"], n), talib.STDDEV(a["volume"], n, 1.0))


def _cmf(n: int) -> Fn:
    def fn(a: Arrays) -> np.ndarray:
        mfm = _safe_div((a["close"] - a["low"]) - (a["high"] - a["close"]), a["high"] - a["low"])
        mfv = np.nan_to_num(mfm, nan=0.0) * a["volume"]
        return _safe_div(talib.SUM(mfv, n), talib.SUM(a["volume"], n))

    return fn


def _log_volume_ratio(n: int) -> Fn:
    def fn(a: Arrays) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log((a["volume"] + 1.0) / (talib.SMA(a["volume"], n) + 1.0))

    return fn


def _gap(a: Arrays) -> np.ndarray:
    out = np.full_like(a["close"], np.nan)
    out[1:] = np.log(a["open"][1:] / a["close"][:-1])
    return out


def _adosc_norm(a: Arrays) -> np.ndarray:
    return _safe_div(talib.ADOSC(a["high"], a["low"], a["close"], a["volume"], 3, 10), talib.SMA(a["volume"], 10))


def _stoch(part: int) -> Fn:
    return lambda a: talib.STOCH(a["high"], a["low"], a["close"], 14, 3, SMA_TYPE, 3, SMA_TYPE)[part]


def _aroon(part: int) -> Fn:
    return lambda a: talib.AROON(a["high"], a["low"], 25)[part]


_I = Indicator
_HLC = ("high", "low", "close")


def _hlc(fn: Callable[..., np.ndarray], *args: int) -> Fn:
    return lambda a: fn(a["high"], a["low"], a["close"], *args)


CATALOG: tuple[Indicator, ...] = (
    # trend
    _I("sma_ratio_5", "trend", "close / SMA(5) - 1", 4, _sma_ratio(5), "close vs SMA(5)"),
    _I("sma_ratio_10", "trend", "close / SMA(10) - 1", 9, _sma_ratio(10), "close vs SMA(10)"),
    _I("sma_ratio_20", "trend", "close / SMA(20) - 1", 19, _sma_ratio(20), "close vs SMA(20)"),
    _I("sma_ratio_50", "trend", "close / SMA(50) - 1", 49, _sma_ratio(50), "close vs SMA(50)"),
    _I("ema_ratio_12", "trend", "close / EMA(12) - 1", 11, _ema_ratio(12), "close vs EMA(12)"),
    _I("ema_ratio_26", "trend", "close / EMA(26) - 1", 25, _ema_ratio(26), "close vs EMA(26)"),
    _I(
        "sma_cross_10_50",
        "trend",
        "SMA(10) / SMA(50) - 1",
        49,
        lambda a: _ratio(talib.SMA(a["close"], 10), talib.SMA(a["close"], 50)),
        "SMA(10) vs SMA(50)",
    ),
    _I("macd_line", "trend", "MACD(12,26) line / close", 33, _macd(0), "MACD line"),
    _I("macd_signal", "trend", "MACD signal(9) / close", 33, _macd(1), "MACD signal"),
    _I("macd_hist", "trend", "MACD histogram / close", 33, _macd(2), "MACD histogram"),
    _I("adx_14", "trend", "ADX(14), trend strength 0-100", 27, _hlc(talib.ADX, 14), "ADX(14)"),
    _I("plus_di_14", "trend", "+DI(14), 0-100", 14, _hlc(talib.PLUS_DI, 14), "+DI(14)"),
    _I("minus_di_14", "trend", "-DI(14), 0-100", 14, _hlc(talib.MINUS_DI, 14), "-DI(14)"),
    _I("aroon_down_25", "trend", "Aroon down(25), 0-100", 25, _aroon(0), "Aroon down(25)"),
    _I("aroon_up_25", "trend", "Aroon up(25), 0-100", 25, _aroon(1), "Aroon up(25)"),
    _I(
        "aroon_osc_25",
        "trend",
        "Aroon oscillator(25), -100..100",
        25,
        lambda a: talib.AROONOSC(a["high"], a["low"], 25),
        "Aroon oscillator(25)",
    ),
    _I(
        "linreg_slope_14",
        "trend",
        "slope of a 14-day linear fit of close / close",
        13,
        lambda a: _safe_div(talib.LINEARREG_SLOPE(a["close"], 14), a["close"]),
        "14-day trend slope",
    ),
    # momentum
    _I("rsi_14", "momentum", "RSI(14), 0-100", 14, lambda a: talib.RSI(a["close"], 14), "RSI(14)"),
    _I("rsi_7", "momentum", "RSI(7), 0-100", 7, lambda a: talib.RSI(a["close"], 7), "RSI(7)"),
    _I("stoch_k", "momentum", "slow Stochastic %K(14,3), 0-100", 17, _stoch(0), "Stochastic %K"),
    _I("stoch_d", "momentum", "slow Stochastic %D(3), 0-100", 19, _stoch(1), "Stochastic %D"),
    _I("willr_14", "momentum", "Williams %R(14), -100..0", 13, _hlc(talib.WILLR, 14), "Williams %R(14)"),
    _I("roc_10", "momentum", "rate of change over 10 days, %", 10, lambda a: talib.ROC(a["close"], 10), "ROC(10)"),
    _I("cci_20", "momentum", "Commodity Channel Index(20)", 19, _hlc(talib.CCI, 20), "CCI(20)"),
    _I(
        "mfi_14",
        "momentum",
        "Money Flow Index(14), 0-100",
        14,
        lambda a: talib.MFI(a["high"], a["low"], a["close"], a["volume"], 14),
        "MFI(14)",
    ),
    _I(
        "mom_10",
        "momentum",
        "10-day momentum / close",
        10,
        lambda a: _safe_div(talib.MOM(a["close"], 10), a["close"]),
        "10-day momentum",
    ),
    _I("ultosc", "momentum", "Ultimate Oscillator(7,14,28), 0-100", 28, _hlc(talib.ULTOSC, 7, 14, 28), "Ultimate Osc."),
    _I(
        "cmo_14",
        "momentum",
        "Chande Momentum Oscillator(14), -100..100",
        14,
        lambda a: talib.CMO(a["close"], 14),
        "CMO(14)",
    ),
    _I(
        "trix_15",
        "momentum",
        "TRIX(15): 1-day % change of a triple EMA",
        43,
        lambda a: talib.TRIX(a["close"], 15),
        "TRIX(15)",
    ),
    _I(
        "ppo",
        "momentum",
        "Percentage Price Oscillator(12,26), %",
        25,
        lambda a: talib.PPO(a["close"], 12, 26, SMA_TYPE),
        "PPO(12,26)",
    ),
    _I(
        "bop",
        "momentum",
        "Balance of Power, -1..1",
        0,
        lambda a: talib.BOP(a["open"], a["high"], a["low"], a["close"]),
        "Balance of Power",
    ),
    # volatility
    _I(
        "atr_ratio_14",
        "volatility",
        "ATR(14) / close",
        14,
        lambda a: _safe_div(talib.ATR(a["high"], a["low"], a["close"], 14), a["close"]),
        "ATR(14)/close",
    ),
    _I("natr_14", "volatility", "normalised ATR(14), %", 14, _hlc(talib.NATR, 14), "NATR(14)"),
    _I("bb_pctb_20", "volatility", "Bollinger %B(20, 2sd): 0 at lower band, 1 at upper", 19, _bb_pctb, "Bollinger %B"),
    _I("bb_width_20", "volatility", "Bollinger band width / middle band", 19, _bb_width, "Bollinger width"),
    _I("volatility_10", "volatility", "std of daily log returns, 10 days", 10, _volatility(10), "10-day volatility"),
    _I("volatility_20", "volatility", "std of daily log returns, 20 days", 20, _volatility(20), "20-day volatility"),
    _I("volatility_60", "volatility", "std of daily log returns, 60 days", 60, _volatility(60), "60-day volatility"),
    # volume
    _I(
        "obv_change_20",
        "volume",
        "20-day change of OBV / volume traded in those days",
        20,
        _flow_change(lambda a: talib.OBV(a["close"], a["volume"]), 20),
        "OBV 20-day change",
    ),
    _I(
        "ad_change_20",
        "volume",
        "20-day change of the A/D line / volume traded in those days",
        20,
        _flow_change(lambda a: talib.AD(a["high"], a["low"], a["close"], a["volume"]), 20),
        "A/D 20-day change",
    ),
    _I("adosc_norm", "volume", "Chaikin A/D oscillator(3,10) / SMA(volume, 10)", 9, _adosc_norm, "Chaikin oscillator"),
    _I("cmf_20", "volume", "Chaikin Money Flow(20), -1..1", 19, _cmf(20), "CMF(20)"),
    _I(
        "volume_z_20",
        "volume",
        "z-score of volume against its 20-day mean and std",
        19,
        _volume_z(20),
        "volume z-score",
    ),
    _I(
        "log_volume_ratio_20",
        "volume",
        "log(volume / SMA(volume, 20))",
        19,
        _log_volume_ratio(20),
        "volume vs 20-day avg",
    ),
    # returns
    _I("ret_1", "returns", "1-day log return", 1, lambda a: _logret(a["close"], 1), "1-day return"),
    _I("ret_5", "returns", "5-day log return", 5, lambda a: _logret(a["close"], 5), "5-day return"),
    _I("ret_10", "returns", "10-day log return", 10, lambda a: _logret(a["close"], 10), "10-day return"),
    _I("ret_20", "returns", "20-day log return", 20, lambda a: _logret(a["close"], 20), "20-day return"),
    _I("gap", "returns", "overnight gap: log(open / previous close)", 1, _gap, "overnight gap"),
    _I(
        "hl_range",
        "returns",
        "intraday range: log(high / low)",
        0,
        lambda a: np.log(a["high"] / a["low"]),
        "high-low range",
    ),
    _I(
        "close_position",
        "returns",
        "where the close sits in the day's range, 0 = low, 1 = high",
        0,
        lambda a: _safe_div(a["close"] - a["low"], a["high"] - a["low"]),
        "close in day's range",
    ),
)

BY_NAME: dict[str, Indicator] = {ind.name: ind for ind in CATALOG}


def catalog() -> list[Indicator]:
    """All indicators, in catalog order."""
    return list(CATALOG)


def resolve(names: list[str] | None) -> list[Indicator]:
    """Indicators for the given names (None = all); unknown names raise with close matches."""
    if names is None:
        return list(CATALOG)
    import difflib

    from trendcast.errors import ConfigError

    out = []
    for name in names:
        if name not in BY_NAME:
            hint = difflib.get_close_matches(name, list(BY_NAME), n=3)
            raise ConfigError(f"unknown feature {name!r}" + (f"; did you mean {', '.join(hint)}?" if hint else "."))
        out.append(BY_NAME[name])
    return out
