"""Time one Bi-LSTM explanation at the DEFAULT model size on CPU, and report its additivity error.

The model is the default BiLSTMConfig (128 / 64 hidden, attention 64, dense 32) over 60-day windows of the 51
catalog features, fitted for one epoch on random data (weights that are effectively untrained: timing does not
depend on them). `--weight-scale 3` multiplies every weight to mimic a confident, sharper trained network, which
makes the Integrated Gradients quadrature error visible. Target: < 1 s per explanation (reported, never asserted).

    .venv/bin/python benchmarks/bench_explain.py                       # the shipped IGConfig, 1 thread
    .venv/bin/python benchmarks/bench_explain.py --threads 2 --grid    # plus other baselines x steps settings
    .venv/bin/python benchmarks/bench_explain.py --gradient-explainer  # SHAP GradientExplainer for comparison
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Literal

import numpy as np
import pandas as pd
import torch

from trendcast.config import BiLSTMConfig, ExperimentConfig
from trendcast.explain.explanation import explain_window
from trendcast.explain.shap_values import IGConfig, background_from_training
from trendcast.features.indicators import catalog
from trendcast.features.windows import WindowSet
from trendcast.models.bilstm_attention import BiLSTMModel

WINDOW = 60
GRID = [(8, 16), (4, 32), (2, 64), (8, 32), (16, 16)]


def random_window_set(n_samples: int, seed: int = 0) -> WindowSet:
    rng = np.random.default_rng(seed)
    names = tuple(ind.name for ind in catalog())
    n_rows = n_samples + WINDOW - 1
    rows = rng.normal(size=(n_rows, len(names))).astype(np.float32)
    end_rows = np.arange(WINDOW - 1, n_rows, dtype=np.int64)
    row_dates = pd.bdate_range("2015-01-01", periods=n_rows).to_numpy()
    return WindowSet(
        rows=rows,
        row_dates=row_dates,
        end_rows=end_rows,
        labels=rng.integers(0, 3, n_samples),
        forward_returns=np.zeros(n_samples),
        tickers=np.full(n_samples, "RND", dtype=object),
        dates=row_dates[end_rows],
        feature_names=names,
        window=WINDOW,
        horizon=1,
    )


def default_model(train: WindowSet, weight_scale: float) -> BiLSTMModel:
    config = ExperimentConfig(window=WINDOW, bilstm=BiLSTMConfig(epochs=1, batch_size=128))
    model = BiLSTMModel(config, threads=torch.get_num_threads(), progress=False).fit(train)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.mul_(weight_scale)
    return model


def time_config(
    model: BiLSTMModel,
    data: WindowSet,
    background: np.ndarray,
    config: IGConfig,
    repeats: int,
    method: Literal["auto", "lime"] = "auto",
) -> tuple[list[float], list[float], list[float]]:
    seconds, errors, relative = [], [], []
    for i in range(repeats + 1):
        end = int(data.end_rows[i])
        window = data.rows[end - WINDOW + 1 : end + 1]
        start = time.perf_counter()
        explanation = explain_window(model, window, background=background, config=config, method=method)
        elapsed = time.perf_counter() - start
        if i == 0:
            continue  # warm-up: first call pays for imports and allocator growth
        seconds.append(elapsed)
        errors.append(abs(explanation.additivity_error))
        relative.append(float(explanation.method_details["relative_error"]))
    return seconds, errors, relative


def report(label: str, seconds: list[float], errors: list[float], relative: list[float]) -> None:
    print(
        f"{label:<28} median {statistics.median(seconds):.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}) | "
        f"|additivity error| median {statistics.median(errors):.2e}, max {max(errors):.2e} | "
        f"relative median {statistics.median(relative):.3f}, max {max(relative):.3f}"
    )


def gradient_explainer(
    model: BiLSTMModel, data: WindowSet, background: np.ndarray, nsamples: int, repeats: int
) -> None:
    """SHAP's GradientExplainer (expected gradients) at a comparable budget, for the record."""
    from trendcast.explain.shap_values import _import_shap

    shap = _import_shap()
    network = model.network.eval()

    class Proba(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(network(x)[0], dim=1)

    explainer = shap.GradientExplainer(Proba(), torch.from_numpy(background))
    x = model.scaler.transform(data).windows(np.arange(repeats))  # type: ignore[union-attr]
    seconds, errors = [], []
    for i in range(repeats):
        sample = torch.from_numpy(x[i : i + 1])
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = explainer.shap_values(sample, nsamples=nsamples)
        seconds.append(time.perf_counter() - start)
        proba = model.predict_scaled(x[i : i + 1])[0]
        target = int(proba.argmax())
        base = model.predict_scaled(background).mean(axis=0)[target]
        total = float(np.asarray(values)[0, ..., target].sum())
        errors.append(abs(total - (proba[target] - base)))
    print(
        f"{'GradientExplainer n=' + str(nsamples):<28} median {statistics.median(seconds):.3f} s | "
        f"|additivity error| median {statistics.median(errors):.2e}, max {max(errors):.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--weight-scale", type=float, default=1.0)
    parser.add_argument("--background", type=int, default=32)
    parser.add_argument("--grid", action="store_true", help="also time other (baselines, steps) settings")
    parser.add_argument(
        "--gradient-explainer",
        type=int,
        default=0,
        metavar="NSAMPLES",
        help="also time shap.GradientExplainer with this many samples",
    )
    parser.add_argument("--lime", action="store_true", help="also time LIME (the second opinion, method 'lime')")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = random_window_set(400)
    train, test = data.take(np.arange(300)), data.take(np.arange(301, 400))
    model = default_model(train, args.weight_scale)
    background = background_from_training(model, train, size=args.background, seed=0)
    shipped = IGConfig()
    print(
        f"Bi-LSTM 128/64, window {WINDOW} x {len(model.feature_names)} features, torch {torch.__version__}, "
        f"{args.threads} thread(s), weight scale {args.weight_scale}, {args.repeats} repeats"
    )
    label = f"IG K={shipped.n_baselines} steps={shipped.n_steps} (shipped)"
    report(label, *time_config(model, test, background, shipped, args.repeats))
    if args.grid:
        for k, steps in GRID:
            if (k, steps) != (shipped.n_baselines, shipped.n_steps):
                config = IGConfig(n_baselines=k, n_steps=steps)
                report(f"IG K={k} steps={steps}", *time_config(model, test, background, config, args.repeats))
    if args.lime:
        report("LIME (shipped budget)", *time_config(model, test, background, shipped, args.repeats, method="lime"))
    if args.gradient_explainer:
        gradient_explainer(model, test, background, args.gradient_explainer, min(args.repeats, 3))


if __name__ == "__main__":
    main()
