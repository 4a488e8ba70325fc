"""Plots for the notebooks; each returns a matplotlib Figure with a title, axis labels and units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

WIDTH = 8.0  # inches: fits a notebook column at the default DPI


def _history_dict(history: Any) -> dict[str, list[float]]:
    raw = getattr(history, "history", history)
    if not isinstance(raw, Mapping):
        raise TypeError("Pass a Keras History or a mapping of metric name -> list of per-epoch values.")
    return {str(k): [float(x) for x in v] for k, v in raw.items()}


def training_curves(history: Any, title: str = "Training curves") -> Figure:
    """Loss and every other metric per epoch, training next to validation (``val_`` prefixed keys)."""
    hist = _history_dict(history)
    metrics = [k for k in hist if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(WIDTH, 3.2), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        epochs = np.arange(1, len(hist[name]) + 1)
        ax.plot(epochs, hist[name], marker="o", label="train")
        if f"val_{name}" in hist:
            ax.plot(epochs, hist[f"val_{name}"], marker="o", label="validation")
        ax.set(title=name, xlabel="epoch", ylabel=name if name != "loss" else "loss (cross-entropy)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str] = ("negative", "positive"),
                     title: str = "Confusion matrix") -> Figure:
    """Counts and row percentages of true vs predicted classes."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    k = len(labels)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]:,}\n{share[i, j]:.1%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=labels, yticklabels=labels,
           xlabel="predicted class", ylabel="true class", title=f"{title} (n = {counts.sum():,})")
    fig.colorbar(image, ax=ax, label="share of true class")
    fig.tight_layout()
    return fig


def embedding_projection(coords: np.ndarray, words: Sequence[str], groups: Sequence[str] | None = None,
                         title: str = "Word vectors projected to 2-D", method: str = "PCA") -> Figure:
    """Scatter of 2-D word coordinates, labelled with the words and coloured by group."""
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(words):
        raise ValueError("coords must have shape (len(words), 2)")
    groups = list(groups) if groups is not None else ["words"] * len(words)
    fig, ax = plt.subplots(figsize=(WIDTH, 6))
    for group in dict.fromkeys(groups):
        mask = np.array([g == group for g in groups])
        ax.scatter(coords[mask, 0], coords[mask, 1], label=group, s=30)
    for (x, y), word in zip(coords, words, strict=True):
        ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8)
    ax.set(title=title, xlabel=f"{method} component 1 (arbitrary units)", ylabel=f"{method} component 2 (arbitrary units)")
    if len(set(groups)) > 1:
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def attention_heatmap(weights: np.ndarray, tokens: Sequence[str], title: str = "Attention weights",
                      key_tokens: Sequence[str] | None = None) -> Figure:
    """Heatmap of an attention matrix (rows: query tokens attending, columns: key tokens attended to)."""
    weights = np.asarray(weights, dtype=float)
    key_tokens = list(key_tokens) if key_tokens is not None else list(tokens)
    if weights.shape != (len(tokens), len(key_tokens)):
        raise ValueError(f"weights has shape {weights.shape}, expected ({len(tokens)}, {len(key_tokens)})")
    size = min(max(4.0, 0.35 * len(key_tokens) + 2), WIDTH)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=max(float(weights.max()), 1e-9))
    ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=8)
    ax.set(xlabel="key token (attended to)", ylabel="query token (attending)", title=title)
    fig.colorbar(image, ax=ax, label="attention weight (rows sum to 1)")
    fig.tight_layout()
    return fig


def comparison_bar(names: Sequence[str], values: Sequence[float], title: str = "Comparison",
                   xlabel: str = "accuracy (%)", reference: float | None = None,
                   reference_label: str = "baseline", value_format: str = "{:.4g}") -> Figure:
    """Horizontal bars, one per method, labelled with their values (``value_format``, e.g. "{:.1f} %"); optional reference."""
    values = [float(v) for v in values]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(names) + 1.5))
    bars = ax.barh(range(len(names)), values, color="tab:blue")
    ax.bar_label(bars, labels=[value_format.format(v) for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color="tab:red", linestyle="--", label=f"{reference_label} ({reference:.4g})")
        ax.legend(loc="lower right")
    finite = [v for v in values if np.isfinite(v)] or [1.0]
    low = min(finite + ([reference] if reference is not None else []))
    high = max(finite + ([reference] if reference is not None else []))
    span = high - low
    ax.set_xlim(max(0.0, low - 0.5 * span - 1e-9) if span > 0 and low > 0 else 0.0, high + 0.15 * (span or high or 1))
    ax.set(title=title, xlabel=xlabel, ylabel="method")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
