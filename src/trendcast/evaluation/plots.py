"""Training plots: learning curves per fold (train/validation loss and validation accuracy by epoch)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # the object API: no pyplot state, no backend switch on import


def learning_curves(
    histories: list[list[dict[str, float]]], path: Path, title: str = "Bi-LSTM learning curves"
) -> Path:
    """One line per fold: losses on the left, validation accuracy on the right."""
    fig = Figure(figsize=(11, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for fold, history in enumerate(histories):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        loss_ax.plot(epochs, [h["train_loss"] for h in history], "--", label=f"fold {fold + 1} train")
        loss_ax.plot(epochs, [h["valid_loss"] for h in history], label=f"fold {fold + 1} valid")
        acc_ax.plot(epochs, [h["valid_accuracy"] for h in history], label=f"fold {fold + 1}")
    loss_ax.set(xlabel="epoch", ylabel="class-weighted cross-entropy", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy (time-ordered tail)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def confusion_matrices(matrices: dict[str, list[list[int]]], path: Path) -> Path:
    """Row-normalised confusion matrices (true class rows, predicted columns), one panel per model."""
    import numpy as np

    names = list(matrices)
    fig = Figure(figsize=(3.2 * len(names), 3.4))
    axes = fig.subplots(1, len(names), squeeze=False)
    classes = ["Down", "Neutral", "Up"]
    for ax, name in zip(axes[0], names, strict=True):
        counts = np.asarray(matrices[name], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(shares):
            ax.text(
                j,
                i,
                f"{value:.0%}\n({int(counts[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.6 else "black",
            )
        ax.set(
            xticks=range(3),
            yticks=range(3),
            xticklabels=classes,
            yticklabels=classes,
            title=name,
            xlabel="predicted",
            ylabel="true",
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
