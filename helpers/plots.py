"""Plots for the notebooks; each returns a matplotlib Figure with a title, axis labels and units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import validate as check

WIDTH = 8.0  # inches: fits a notebook column at the default DPI


def _history_dict(history: Any) -> dict[str, list[float]]:
    raw = getattr(history, "history", history)
    if not isinstance(raw, Mapping) or not raw:
        raise TypeError(f"history must be a Keras History or a mapping of metric name -> list of per-epoch values, "
                        f"got {check.describe(raw)}")
    hist = {}
    for key, values in raw.items():
        if isinstance(values, str | bytes | Mapping) or not hasattr(values, "__len__") or not len(values):
            raise TypeError(f"history[{key!r}] must be a non-empty list of per-epoch values, got {check.describe(values)}")
        hist[str(key)] = check.array(values, f"history[{key!r}]", finite=False).astype(float).tolist()  # NaN: diverged
    for key in hist:
        base = key.removeprefix("val_")
        if key.startswith("val_") and len(hist.get(base, hist[key])) != len(hist[key]):
            raise ValueError(f"history[{key!r}] has {len(hist[key])} epochs but history[{base!r}] has {len(hist[base])}")
    if all(k.startswith("val_") for k in hist):
        raise ValueError(f"history holds only validation metrics ({', '.join(hist)}); pass the training ones too")
    return hist


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
    labels = check.words(labels, "labels")
    k = len(labels)
    if k < 2:
        raise ValueError(f"labels must name at least two classes, got {labels!r}")
    y_true, y_pred = check.class_labels(y_true, "y_true", k), check.class_labels(y_pred, "y_pred", k)
    if not check.same_length(y_true=y_true, y_pred=y_pred):
        raise ValueError("y_true and y_pred are empty; pass one true and one predicted class per review")
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
    words = check.words(words, "words")
    coords = check.array(coords, "coords", ndim=2)
    if coords.shape != (len(words), 2) or not words:
        raise ValueError(f"coords must have shape (len(words), 2) = ({len(words)}, 2), got {coords.shape}")
    groups = check.words(groups, "groups") if groups is not None else ["words"] * len(words)
    check.same_length(words=words, groups=groups)
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
    tokens = check.words(tokens, "tokens")
    key_tokens = check.words(key_tokens, "key_tokens") if key_tokens is not None else tokens
    weights = check.array(weights, "weights", ndim=2, minimum=0.0, maximum=1.01)  # softmax output (scores need one first)
    if weights.shape != (len(tokens), len(key_tokens)) or not tokens or not key_tokens:
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
                   reference_label: str = "baseline") -> Figure:
    """Horizontal bars, one per method, labelled with their values; optional reference line."""
    names = check.words(names, "names")
    values = check.array(values, "values", finite=False).astype(float).tolist()  # NaN (not measured) gets no bar
    if any(np.isinf(values)):
        raise ValueError(f"values must be finite (or NaN for a method not measured), got {values}")
    if not check.same_length(names=names, values=values):
        raise ValueError("names and values are empty; pass one name and one value per method")
    if reference is not None:
        reference = check.number(reference, "reference")
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(names) + 1.5))
    bars = ax.barh(range(len(names)), values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.4g}" for v in values], padding=3, fontsize=8)
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
