"""Training throughput and inference latency of the default Bi-LSTM with attention, on CPU.

Trains the DEFAULT network (Bi-LSTM 128 then 64 per direction, attention 64, window 60, all catalog features) on a
synthetic universe with a fixed torch thread count, then times inference per sample for PyTorch and ONNX Runtime at
batch 1 and 256 (median of repeats). It prints figures and never asserts: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_train.py                      # 20 tickers x 600 days, 2 epochs, 2 threads
    .venv/bin/python benchmarks/bench_train.py --tickers 5 --epochs 1 --repeats 10
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from trendcast.config import BiLSTMConfig, ExperimentConfig, LabelConfig
from trendcast.data.synthetic import planted_signal_bars
from trendcast.features.windows import WindowSet, build_window_set
from trendcast.models.bilstm_attention import BiLSTMModel
from trendcast.models.onnx_export import OnnxPredictor, export_onnx, max_abs_difference
from trendcast.models.torch_training import split_validation_tail


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per inference setting")
    return parser.parse_args()


def _median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _train(data: WindowSet, args: argparse.Namespace) -> BiLSTMModel:
    config = ExperimentConfig(window=args.window, bilstm=BiLSTMConfig(epochs=args.epochs, patience=args.epochs))
    n_train = len(split_validation_tail(data, config.bilstm.validation_fraction, data.horizon)[0])
    started = time.perf_counter()
    model = BiLSTMModel(config, threads=args.threads, progress=True).fit(data)
    total = time.perf_counter() - started
    epoch_seconds = [row["seconds"] for row in model.history]
    print(
        f"training samples {n_train}, validation tail {len(data) - n_train} (minus purge), "
        f"batch {config.bilstm.batch_size}"
    )
    print(f"seconds/epoch (train + validation pass): {', '.join(f'{s:.1f}' for s in epoch_seconds)}")
    print(
        f"training throughput: {n_train / statistics.median(epoch_seconds):,.0f} samples/s "
        f"(median epoch; fit() total {total:.1f} s incl. scaling and setup)"
    )
    return model


def _latency(model: BiLSTMModel, data: WindowSet, args: argparse.Namespace) -> None:
    scaler = model.scaler
    assert scaler is not None
    windows = scaler.transform(data).windows(np.arange(256) % len(data))  # (256, window, n_features)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = export_onnx(model, Path(folder) / "bilstm.onnx")
        print(f"ONNX export: {time.perf_counter() - started:.1f} s")
        predictor = OnnxPredictor(path, threads=args.threads)
        print(f"max |PyTorch - ONNX Runtime| on 256 windows: {max_abs_difference(model, predictor, windows):.2e}")
        for batch in (1, 256):
            x = windows[:batch]
            eager = _median_seconds(lambda x=x: model.predict_scaled_with_attention(x), args.repeats)
            onnx = _median_seconds(lambda x=x: predictor.predict(x), args.repeats)
            print(
                f"batch {batch:>3}: PyTorch {eager * 1e3:8.2f} ms/call {eager / batch * 1e3:7.3f} ms/sample | "
                f"ONNX Runtime {onnx * 1e3:8.2f} ms/call {onnx / batch * 1e3:7.3f} ms/sample"
            )


def main() -> None:
    args = _arguments()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    started = time.perf_counter()
    bars = planted_signal_bars(n_tickers=args.tickers, n_days=args.days, seed=0)
    data = build_window_set(bars, window=args.window, labels=LabelConfig())
    print(
        f"{args.tickers} tickers x {args.days} days -> {len(data)} samples of {args.window} x {data.n_features} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    model = _train(data, args)
    _latency(model, data, args)


if __name__ == "__main__":
    main()
