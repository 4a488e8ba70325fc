"""Plots for the notebooks; each returns a matplotlib Figure with a title, axis labels and units.

Importing this module also sets a colour-blind-safe colour cycle (``PALETTE``) and, inside IPython, makes every
matplotlib figure a notebook shows carry a text description (``alt_text``) as its image's ``alt`` metadata,
which the book (``run.py book``) uses as the image's alternative text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import validate as check

WIDTH = 8.0  # inches: fits a notebook column at the default DPI
# Okabe & Ito's qualitative palette (2008), ordered so that neighbours differ most; tests/test_plots.py checks that
# every pair stays distinguishable under simulated protanopia, deuteranopia and tritanopia.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
# Machado, Oliveira & Fernandes (2009), severity 1: linear-RGB matrices simulating each colour-vision deficiency.
CVD_MATRICES = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}
plt.rcParams["axes.prop_cycle"] = plt.cycler(color=list(PALETTE))


def _lab(hex_colours: Sequence[str], deficiency: str | None = None) -> np.ndarray:
    """CIELAB (D65) coordinates of sRGB hex colours, optionally as seen with a simulated deficiency."""
    rgb = np.array([[int(h.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)] for h in hex_colours])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    if deficiency is not None:
        linear = np.clip(linear @ np.array(CVD_MATRICES[deficiency]).T, 0, 1)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def palette_min_distance(hex_colours: Sequence[str] = PALETTE) -> float:
    """Smallest CIELAB distance (delta E 1976) between any two colours, over normal vision and three deficiencies."""
    worst = np.inf
    for deficiency in (None, *CVD_MATRICES):
        lab = _lab(hex_colours, deficiency)
        dist = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
        worst = min(worst, float(dist[np.triu_indices(len(lab), 1)].min()))
    return worst


def _sentence(text: str) -> str:
    """The text ending in a full stop, unless it already ends in one, a question or an exclamation mark."""
    text = text.strip()
    return text if not text or text[-1] in ".?!" else text + "."


def alt_text(fig: Figure) -> str:
    """A text description of a figure for readers who cannot see it: its title, and each panel's title and axes."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    parts = [_sentence(suptitle)]
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for i, ax in enumerate(axes, 1):
        axis_labels = [f"{name} axis: {label}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        title = ax.get_title() or ("" if suptitle else "Plot")
        parts.append((f"Panel {i}: " if len(axes) > 1 else "")
                     + " ".join(filter(None, [_sentence(title), _sentence("; ".join(axis_labels))])))
    parts += [_sentence(f"Colour scale: {ax.get_ylabel() or ax.get_xlabel()}") for ax in fig.axes
              if ax.get_label() == "<colorbar>" and (ax.get_ylabel() or ax.get_xlabel())]
    return " ".join(p for p in parts if p.strip(". ")) or "Figure without title or axis labels."


def overlapping_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of text labels drawn inside any axes (annotations, bar labels) whose boxes overlap; [] when all read clearly."""
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts if t.get_visible() and t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    return [(texts[i].get_text(), texts[j].get_text()) for i in range(len(texts)) for j in range(i + 1, len(texts))
            if boxes[i].overlaps(boxes[j])]


def attach_alt_text(shell: Any = None) -> bool:
    """Make IPython show every figure with ``alt_text`` (and its label, if any) in the image metadata; False outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False

    def describe(fig: Figure, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        meta = {"alt": alt_text(fig), **({"label": fig.get_label()} if fig.get_label() else {})}
        return {}, {"image/png": meta, "image/svg+xml": meta}

    shell.display_formatter.mimebundle_formatter.for_type(Figure, describe)
    return True


attach_alt_text()


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
                   reference_label: str = "baseline", decimals: int = 1, value_format: str | None = None) -> Figure:
    """Horizontal bars, one per method, labelled with their values (``decimals`` places, or ``value_format``)."""
    names = check.words(names, "names")
    values = check.array(values, "values", finite=False).astype(float).tolist()  # NaN (not measured) gets no bar
    if any(np.isinf(values)):
        raise ValueError(f"values must be finite (or NaN for a method not measured), got {values}")
    if not check.same_length(names=names, values=values):
        raise ValueError("names and values are empty; pass one name and one value per method")
    if reference is not None:
        reference = check.number(reference, "reference")
    value_format = value_format or f"{{:.{decimals}f}}"  # e.g. "{:.1f} %"
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(names) + 1.5))
    fig.set_label("comparison")  # the book's key figure for the README (scripts/tools/build_book.py)
    bars = ax.barh(range(len(names)), values, color=PALETTE[0])
    ax.bar_label(bars, labels=[value_format.format(v) for v in values], padding=3, fontsize=8, zorder=4,
                 bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # readable across the reference line
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color=PALETTE[3], linestyle="--", label=f"{reference_label} ({reference:.{decimals}f})")
        ax.set_ylim(len(names) + 0.6, -0.6)  # an empty band below the last bar holds the legend: it hides no bar
        ax.legend(loc="lower right", fontsize=8, framealpha=1.0, borderaxespad=0.2)
    finite = [v for v in values if np.isfinite(v)] or [1.0]
    low = min(finite + ([reference] if reference is not None else []))
    high = max(finite + ([reference] if reference is not None else []))
    span = high - low
    ax.set_xlim(max(0.0, low - 0.5 * span - 1e-9) if span > 0 and low > 0 else 0.0, high + 0.15 * (span or high or 1))
    ax.set(title=title, xlabel=xlabel, ylabel="method")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
