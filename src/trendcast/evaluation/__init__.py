"""Evaluation: walk-forward splits and loop, backtests, and the metrics with day-block bootstrap intervals."""
