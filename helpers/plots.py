"""Plots for the notebooks; each returns a matplotlib Figure with a title, axis labels and units.

Importing this module also sets a colour-blind-safe colour cycle (``PALETTE``) and, inside IPython, makes every
matplotlib figure a notebook shows carry a text description (``alt_text``) as its image's ``alt`` metadata,
which the book (``run.py book``) uses as the image's alternative text; ``set_description`` adds to it what a figure
shows (the data of a key figure, the flow of a diagram).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import FuncFormatter
from mpl_toolkits.axes_grid1 import make_axes_locatable

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
# Marker shapes, in the order plots hand them out: with the colours, they tell series apart without colour vision.
MARKERS = {"o": "circles", "s": "squares", "^": "triangles", "D": "diamonds", "v": "down triangles", "P": "plus signs",
           "X": "crosses", "<": "left triangles", ">": "right triangles", "h": "hexagons"}
DESCRIPTION = "dlnlp_description"  # the Figure attribute that set_description sets and alt_text reads


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
    """A description of a figure for readers who cannot see it: title, each panel's title and axes, ``set_description``'s."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    parts = [_sentence(suptitle)]
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and (ax.axison or ax.get_title())]
    for i, ax in enumerate(axes, 1):
        axis_labels = [f"{name} axis: {label}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        title = ax.get_title() or ("" if suptitle else "Plot")
        parts.append((f"Panel {i}: " if len(axes) > 1 else "")
                     + " ".join(filter(None, [_sentence(title), _sentence("; ".join(axis_labels))])))
    parts += [_sentence(f"Colour scale: {ax.get_ylabel() or ax.get_xlabel()}") for ax in fig.axes
              if ax.get_label() == "<colorbar>" and (ax.get_ylabel() or ax.get_xlabel())]
    parts.append(_sentence(getattr(fig, DESCRIPTION, "")))
    return " ".join(p for p in parts if p.strip(". ")) or "Figure without title or axis labels."


def set_description(fig: Figure, text: str) -> Figure:
    """Give ``fig`` sentences saying what it shows, which ``alt_text`` adds after its title and axes; returns ``fig``."""
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"text must be a non-empty str describing what the figure shows, got {check.describe(text)}")
    setattr(fig, DESCRIPTION, " ".join(text.split()))  # one line: alt text goes into image metadata and Markdown
    return fig


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
    _colorbar(fig, ax, image, "share of true class")
    _fit_title(fig, ax)
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
    _colorbar(fig, ax, image, "attention weight (rows sum to 1)")
    _fit_title(fig, ax)
    return fig


def _colorbar(fig: Figure, ax: Any, image: Any, label: str) -> Any:
    """A colorbar right of ``ax``, exactly as tall as its image: it never reaches up into the title.

    ``fig.colorbar(image, ax=ax)`` takes the height of the axes' slot, and an image of fixed aspect is often shorter
    than its slot, so the colorbar stood above the image, over the title; a divider's axes follows the image instead.
    """
    cax = make_axes_locatable(ax).append_axes("right", size="5%", pad=0.12, label="<colorbar>")
    colorbar = fig.colorbar(image, cax=cax, label=label)
    # the top tick label is centred on the bar's top edge: lift the title by the half of it that stands above
    half_label = 0.6 * max([t.get_fontsize() for t in cax.get_yticklabels()] or [plt.rcParams["font.size"]])
    ax.set_title(ax.get_title(), pad=plt.rcParams["axes.titlepad"] + half_label)
    return colorbar


def _fit_title(fig: Figure, ax: Any) -> None:
    """Lay ``fig`` out tightly, wrapping the title of ``ax`` onto more lines until it fits above the axes in the figure."""
    text = " ".join(ax.get_title().split())
    for _ in range(4):
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box, axes = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        centre = (axes.x0 + axes.x1) / 2
        room = 2 * min(centre - fig.bbox.x0, fig.bbox.x1 - centre) - 16  # pixels: the title is centred on the axes
        if box.width <= room:
            return
        longest = max(len(line) for line in ax.get_title().split("\n"))
        ax.title.set_text(textwrap.fill(text, width=max(12, int(longest * room / box.width)), break_on_hyphens=False))


def _room_for_bar_labels(fig: Figure, ax: Any) -> None:
    """Widen the value axis of horizontal bars until every bar label (``bar_label``) lies inside the axes."""
    for _ in range(4):
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        axes = ax.get_window_extent(renderer)
        left, right = ax.get_xlim()
        scale = axes.width / (right - left)  # pixels per data unit
        new_left, new_right = left, right
        for label in ax.texts:
            if not label.get_text() or not np.isfinite(label.xy[0]):
                continue
            box, end = label.get_window_extent(renderer), label.xy[0]  # the label and the end of its bar
            extra_right = box.x1 - (axes.x0 + (end - left) * scale) + 4  # pixels the label needs right of its bar end
            if box.x1 > axes.x1 - 2 and end > left and axes.width > extra_right + 10:
                new_right = max(new_right, left + (end - left) * axes.width / (axes.width - extra_right))
            extra_left = (axes.x0 + (end - left) * scale) - box.x0 + 4  # and left of it, for a negative value
            if box.x0 < axes.x0 + 2 and end < right and axes.width > extra_left + 10:
                new_left = min(new_left, right - (right - end) * axes.width / (axes.width - extra_left))
        if (new_left, new_right) == (left, right):
            return
        ax.set_xlim(new_left, new_right)


def _balanced_lines(text: str, most: int) -> str:
    """``text`` as it is if it has at most ``most`` characters, else wrapped onto as few lines of even length as will do."""
    if len(text) <= most:
        return text
    lines = -(-len(text) // most)
    for width in range(-(-len(text) // lines), most + 1):
        wrapped = textwrap.fill(text, width=width, break_on_hyphens=False)
        if wrapped.count("\n") < lines:
            return wrapped
    return textwrap.fill(text, width=most, break_on_hyphens=False)


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
    ticks = [_balanced_lines(name, 48) for name in names]  # a long name takes lines of equal length: room for the bars
    lines = max(tick.count("\n") + 1 for tick in ticks)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(names) * max(1.0, lines / 2) + 1.5))
    fig.set_label("comparison")  # the book's key figure for the README (scripts/tools/build_book.py)
    bars = ax.barh(range(len(names)), values, color=PALETTE[0])
    ax.bar_label(bars, labels=[value_format.format(v) for v in values], padding=3, fontsize=8, zorder=4,
                 bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # readable across the reference line
    ax.set_yticks(range(len(names)), ticks)
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color=PALETTE[3], linestyle="--", label=f"{reference_label} ({reference:.{decimals}f})")
        ax.set_ylim(len(names) + 0.6, -0.6)  # an empty band below the last bar holds the legend: it hides no bar
        ax.legend(loc="lower right", fontsize=8, framealpha=1.0, borderaxespad=0.2)
    # Bars start at 0, so that a bar's length is proportional to its value; the axis ends a little past the largest
    # value or the reference, and further where a value label needs the room.
    marks = [v for v in values if np.isfinite(v)] + ([reference] if reference is not None else [])
    low, high = min([0.0, *marks]), max([0.0, *marks])
    margin = 0.04 * ((high - low) or 1.0)
    ax.set_xlim(low - margin if low < 0 else 0.0, high + margin if high > 0 or low == 0 else 0.0)
    ax.set(title=title, xlabel=xlabel, ylabel="method")
    ax.grid(axis="x", alpha=0.3)
    _room_for_bar_labels(fig, ax)
    _fit_title(fig, ax)  # a title wrapped onto more lines moves the axes down, not sideways: the labels keep their room
    return fig


def _fraction(value: Any, name: str) -> float:
    """An accuracy as a fraction in [0, 1]; a percentage gets a hint to divide by 100."""
    return check.number(value, name, 0.0, 1.0, hint="Accuracies are fractions in [0, 1]: divide a percentage by 100.")


def _budget_points(budget: Any) -> dict[str, dict[int, list[float]]]:
    """``budget`` checked and copied: method -> labelled reviews -> accuracies of each draw, budgets in order."""
    if not isinstance(budget, Mapping) or not budget:
        raise TypeError(f"budget must be a non-empty dict of method name -> {{labelled reviews: [accuracy of each draw]}}, "
                        f"got {check.describe(budget)}")
    points = {}
    for method, runs in budget.items():
        if not isinstance(method, str) or not method.strip():
            raise TypeError(f"budget's keys must be method names (non-empty str), got {check.describe(method)}")
        if not isinstance(runs, Mapping) or not runs:
            raise TypeError(f"budget[{method!r}] must be a non-empty dict of labelled reviews -> [accuracy of each draw], "
                            f"got {check.describe(runs)}")
        points[method] = {}
        for n, draws in sorted(runs.items(), key=lambda item: item[0] if check.is_integer(item[0]) else 0):
            n = check.integer(n, f"a number of labelled reviews in budget[{method!r}]", 1)
            check.not_a_string(draws, f"budget[{method!r}][{n}]", "accuracies (one per draw)")
            if isinstance(draws, Mapping) or not hasattr(draws, "__len__") or not len(draws):
                raise TypeError(f"budget[{method!r}][{n}] must be a non-empty list of accuracies (one per draw), "
                                f"got {check.describe(draws)}")
            points[method][n] = [_fraction(a, f"budget[{method!r}][{n}][{i}]") for i, a in enumerate(draws)]
    return points


def _draws_phrase(counts: set[int]) -> str:
    """How many draws each point averages, for a legend entry: "one run each" or "mean of 3 draws, band: their range"."""
    if max(counts) == 1:
        return "one run each"
    many = f"{max(counts)}" if len(counts) == 1 else f"{min(counts)} to {max(counts)}"
    return f"mean of {many} draws, band: their range"


def _legend_clear_of_data(ax: Any, legend: Any, renderer: Any) -> bool:
    """Whether ``legend`` covers none of the lines, markers and bands drawn in ``ax``."""
    box = legend.get_window_extent(renderer).padded(4)  # a few pixels: a marker's half width
    for line in ax.lines:
        path = line.get_transform().transform_path(line.get_path())
        if path.intersects_bbox(box, filled=False) or any(box.contains(x, y) for x, y in path.vertices):
            return False
    for collection in ax.collections:
        for path in collection.get_paths():
            if collection.get_transform().transform_path(path).intersects_bbox(box, filled=True):
                return False
    return True


def _thin_tick_labels(ax: Any, renderer: Any) -> None:
    """Blank the x tick labels that would touch a neighbour (close budgets on a log axis), keeping the largest ones."""
    ticks, labels = ax.get_xticks(), ax.get_xticklabels()
    texts, kept = [label.get_text() for label in labels], None
    for i in reversed(range(len(labels))):
        box = labels[i].get_window_extent(renderer).padded(3)
        if kept is not None and box.overlaps(kept):
            texts[i] = ""
        else:
            kept = box
    ax.set_xticks(ticks, texts)


def label_budget_curve(budget: dict[str, dict[int, list[float]]], reference: Sequence[tuple[str, int, float]] = (),
                       title: str = "Accuracy against labelled reviews",
                       ylabel: str = "accuracy on the 2,000-review test subset (%)") -> Figure:
    """Mean accuracy (and the range over draws) of each method against labelled training reviews, on a log axis."""
    points = _budget_points(budget)
    check.not_a_string(reference, "reference", "(label, labelled reviews, accuracy) tuples")
    if not isinstance(reference, Sequence):
        raise TypeError(f"reference must be a list of (label, labelled reviews, accuracy) tuples, "
                        f"got {check.describe(reference)}")
    refs = []
    for i, ref in enumerate(reference):
        if not isinstance(ref, Sequence) or isinstance(ref, str) or len(ref) != 3 or not isinstance(ref[0], str):
            raise TypeError(f"reference[{i}] must be a (label, labelled reviews, accuracy) tuple such as "
                            f"(\"TF-IDF on all labels\", 22500, 0.902), got {check.describe(ref)}")
        refs.append((ref[0], check.integer(ref[1], f"reference[{i}][1] (labelled reviews)", 1),
                     _fraction(ref[2], f"reference[{i}][2] (accuracy)")))
    fig, ax = plt.subplots(figsize=(WIDTH, 4.5))
    fig.set_label("label-budget")  # the book's key figure for the README (scripts/tools/build_book.py)
    colours = PALETTE[:6]  # black marks the references; yellow is too pale for a line on white
    sentences = []
    for i, (method, runs) in enumerate(points.items()):
        ns = list(runs)
        means = [100 * float(np.mean(runs[n])) for n in ns]
        colour, phrase = colours[i % len(colours)], _draws_phrase({len(d) for d in runs.values()})
        marker = list(MARKERS)[i % len(MARKERS)]
        ax.plot(ns, means, marker=marker, markersize=7, linewidth=1.8, color=colour, zorder=3, label=f"{method}: {phrase}")
        if any(len(d) > 1 for d in runs.values()):
            ax.fill_between(ns, [100 * min(runs[n]) for n in ns], [100 * max(runs[n]) for n in ns], color=colour,
                            alpha=0.2, linewidth=0, zorder=2)
        span = f"{means[-1]:.1f} % at {ns[-1]:,}" if len(ns) == 1 else \
            f"from {means[0]:.1f} % at {ns[0]:,} to {means[-1]:.1f} % at {ns[-1]:,}"
        sentences.append(f"{method} ({MARKERS[marker]}, {phrase}) {span} labelled reviews")
    for label, n, accuracy in refs:
        ax.plot([n], [100 * accuracy], linestyle="none", marker="*", markersize=15, color="black", zorder=4,
                label=label)
        where = "" if f"{n:,}" in label or str(n) in label else f" at {n:,} labelled reviews"
        sentences.append(f"a black star marks {label}: {100 * accuracy:.1f} %{where}")
    ticks = sorted({n for runs in points.values() for n in runs} | {n for _, n, _ in refs})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlim(ticks[0] / 1.4, ticks[-1] * 1.4)
    ax.set(title=title, xlabel="labelled training reviews (log scale)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    for loc in ("lower right", "upper left", "lower left", "upper right"):
        legend = ax.legend(loc=loc, fontsize=9, framealpha=0.95)
        fig.canvas.draw()
        if _legend_clear_of_data(ax, legend, renderer):
            break
    else:  # every corner covers data: below the axes, in two columns
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False)
        fig.tight_layout()  # twice: the legend hangs from the axes, which the first pass shrinks
    fig.tight_layout()
    fig.canvas.draw()
    _thin_tick_labels(ax, renderer)
    set_description(fig, "One line per method: " + "; ".join(sentences) + ".")
    return fig


def _cost_rows(rows: Any) -> tuple[list[dict[str, Any]], int]:
    """The rows ``cost_scatter`` can place (time and accuracy both measured), checked, and how many it leaves out."""
    check.not_a_string(rows, "rows", "results rows (dicts, as helpers.load_results() returns)")
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of results rows (dicts, as helpers.load_results() returns), "
                        f"got {check.describe(rows)}")
    shown, left_out = [], 0
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a results row (a dict), got {check.describe(row)}")
        for key in ("notebook", "method"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise TypeError(f"rows[{i}][{key!r}] must be a non-empty str, got {check.describe(row.get(key))}")
        if row.get("ms_per_review") is None or row.get("subset_accuracy") is None:
            left_out += 1  # not timed, or not scored on the test subset: no place on these axes
            continue
        labels = row.get("labelled_reviews")
        shown.append({"notebook": row["notebook"], "method": row["method"],
                      "labelled_reviews": None if labels is None else check.integer(labels, f"rows[{i}]['labelled_reviews']", 0),
                      "ms": check.number(row["ms_per_review"], f"rows[{i}]['ms_per_review']", 1e-9,
                                         hint="A log axis needs a time above 0 ms."),
                      "accuracy": _fraction(row["subset_accuracy"], f"rows[{i}]['subset_accuracy']")})
    if not shown:
        raise ValueError(f"none of the {len(rows)} rows has both ms_per_review and subset_accuracy; "
                         "record them with helpers.record_result(..., subset_accuracy=..., ms_per_review=...)")
    return shown, left_out


def _styles(groups: Sequence[str]) -> list[tuple[str, str]]:
    """A (marker, colour) pair per item, no two alike: a marker per group, a colour per item within its group."""
    pairs = [(m, c) for m in MARKERS for c in PALETTE]
    if len(groups) > len(pairs):
        raise ValueError(f"{len(groups)} points are more than {len(pairs)} distinct (marker, colour) pairs can tell apart; "
                         "plot fewer rows at a time")
    group_marker = {g: list(MARKERS)[i % len(MARKERS)] for i, g in enumerate(dict.fromkeys(groups))}
    used: set[tuple[str, str]] = set()
    styles = []
    for i, group in enumerate(groups):
        k = groups[:i].count(group)
        wanted = (group_marker[group], PALETTE[k % len(PALETTE)])
        style = wanted if wanted not in used and k < len(PALETTE) else next(p for p in pairs if p not in used)
        used.add(style)
        styles.append(style)
    return styles


def _notebook_number(notebook: str) -> str:
    """ "03" for "03_bert_classification"; a name without a number prefix stays as it is."""
    prefix = notebook.split("_", 1)[0]
    return prefix if prefix.isdigit() else notebook


def cost_scatter(rows: Sequence[dict], title: str = "Accuracy against inference cost") -> Figure:
    """Accuracy on the test subset against inference time per review, one point (and legend entry) per results row."""
    shown, left_out = _cost_rows(rows)
    fig, ax = plt.subplots(figsize=(WIDTH + 2, 4.5))
    fig.set_label("cost")
    styles = _styles([r["notebook"] for r in shown])
    for row, (marker, colour) in zip(shown, styles, strict=True):
        labels = "" if row["labelled_reviews"] is None else f" ({row['labelled_reviews']:,} labels)"
        entry = textwrap.fill(f"{_notebook_number(row['notebook'])} {row['method']}{labels}", width=40,
                              subsequent_indent="    ", break_on_hyphens=False)
        ax.plot([row["ms"]], [100 * row["accuracy"]], linestyle="none", marker=marker, markersize=8, color=colour,
                markeredgecolor="black", markeredgewidth=0.6, label=entry, zorder=3)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.1, 1, 10 rather than powers of ten
    ax.set(title=title, xlabel="inference time per review (ms, log scale)", ylabel="accuracy on the 2,000-review test subset (%)")
    ax.grid(alpha=0.3, which="major")
    ax.margins(x=0.08, y=0.08)
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=8, labelspacing=0.6,
                       title="notebook, method (labelled reviews)" + (f"\n{left_out} row(s) without a time or "
                                                                     "accuracy left out" if left_out else ""),
                       title_fontsize=8, alignment="left")
    needed = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi + 0.5  # inches: the legend, a margin
    fig.set_figheight(max(fig.get_figheight(), needed))
    fig.tight_layout()
    best = max(shown, key=lambda r: r["accuracy"])
    fastest = min(shown, key=lambda r: r["ms"])
    notebooks = sorted({_notebook_number(r["notebook"]) for r in shown})
    set_description(fig, f"One point per method, {len(shown)} from notebook{'s' if len(notebooks) > 1 else ''} "
                         f"{', '.join(notebooks)}; the most accurate, {best['method']}, reaches {100 * best['accuracy']:.1f} % "
                         f"at {best['ms']:.3g} ms per review; the fastest, {fastest['method']}, takes {fastest['ms']:.3g} ms "
                         f"at {100 * fastest['accuracy']:.1f} %.")
    return fig


def _tint(colour: str, amount: float = 0.45) -> tuple[float, float, float]:
    """``colour`` mixed with white: ``amount`` of the colour, so that black text on it stays easy to read."""
    rgb = np.array([int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)])
    return tuple(float(v) for v in amount * rgb + (1 - amount))


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A straight arrow from ``start`` to ``end`` (inches on a diagram's axes)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, shrinkA=0, shrinkB=0, color="#333333",
                                 linewidth=1.2, zorder=2))


def transformer_block_diagram() -> Figure:
    """Diagram of the decoder-only GPT that notebook 04 builds: embeddings, L pre-LN blocks, tied output layer."""
    fig = plt.figure(figsize=(6.0, 8.0))
    fig.set_label("transformer-block")
    ax = fig.add_axes((0, 0, 1, 1))  # sized at the end: 1 data unit = 1 inch, so circles stay round
    ax.axis("off")
    x, width = 3.0, 2.7  # the main column
    skip_x = 1.1  # where the residual (skip) paths run up
    kinds = {"embedding": PALETTE[5], "norm": PALETTE[7], "attention": PALETTE[1], "mlp": PALETTE[2], "output": PALETTE[4],
             "result": "#FFFFFF"}

    def box(cx: float, bottom: float, w: float, h: float, text: str, kind: str, size: float = 9.5) -> float:
        """A labelled box with its bottom edge at ``bottom``; returns its top edge."""
        colour = kinds[kind]
        ax.add_patch(FancyBboxPatch((cx - w / 2, bottom), w, h, boxstyle="round,pad=0,rounding_size=0.08", linewidth=1.0,
                                    facecolor=_tint(colour) if colour != "#FFFFFF" else colour, edgecolor="#333333",
                                    zorder=3))
        ax.text(cx, bottom + h / 2, text, ha="center", va="center", fontsize=size, zorder=4, linespacing=1.25)
        return bottom + h

    def add(cy: float, r: float = 0.15) -> None:
        """A residual-add (or sum) node: a circle with a plus sign."""
        ax.add_patch(Circle((x, cy), r, facecolor="white", edgecolor="#333333", linewidth=1.2, zorder=3))
        ax.plot([x - 0.6 * r, x + 0.6 * r], [cy, cy], color="#333333", linewidth=1.4, zorder=4)
        ax.plot([x, x], [cy - 0.6 * r, cy + 0.6 * r], color="#333333", linewidth=1.4, zorder=4)

    def skip(branch_y: float, add_y: float, r: float = 0.15) -> None:
        """The residual path: from the main column at ``branch_y``, round the left, into the add node at ``add_y``."""
        ax.plot([x, skip_x, skip_x], [branch_y, branch_y, add_y], color="#333333", linewidth=1.2, zorder=2)
        ax.plot([x], [branch_y], marker="o", markersize=4, color="#333333", zorder=3)
        _arrow(ax, (skip_x, add_y), (x - r, add_y))
        ax.text(skip_x - 0.1, (branch_y + add_y) / 2, "residual", rotation=90, ha="right", va="center", fontsize=8,
                color="#333333")

    # inputs and embeddings, summed
    columns = ((1.1, "token ids", "token\nembedding"), (x, "positions 0 … T−1", "position\nembedding"),
               (4.9, "condition (neg / pos / unl)", "condition\nembedding"))
    sum_y, r = 1.55, 0.15
    for cx, source, layer in columns:
        ax.text(cx, 0.2, source, ha="center", va="center", fontsize=8.5, style="italic")
        top = box(cx, 0.55, 1.6, 0.5, layer, "embedding")
        _arrow(ax, (cx, 0.32), (cx, 0.55))
        if cx == x:
            _arrow(ax, (cx, top), (x, sum_y - r))
        else:  # up, then across into the sum node
            ax.plot([cx, cx], [top, sum_y], color="#333333", linewidth=1.2, zorder=2)
            _arrow(ax, (cx, sum_y), (x + (r if cx > x else -r), sum_y))
    add(sum_y, r)
    ax.text(x + 0.25, sum_y + 0.06, "summed", ha="left", va="bottom", fontsize=8, color="#333333")

    # the repeated pre-LN block
    block_bottom, gap = sum_y + r + 0.12, 0.25
    below, ln_y = sum_y + r, block_bottom + 0.42  # each sub-layer: LayerNorm, the layer, the residual add
    for label, kind, branch in (("masked (causal)\nmulti-head attention", "attention", 0.2),
                                ("MLP\nd → 4d, GELU, 4d → d", "mlp", 0.15)):
        _arrow(ax, (x, below), (x, ln_y))
        top = box(x, ln_y, width, 0.34, "LayerNorm", "norm")
        _arrow(ax, (x, top), (x, top + gap))
        top = box(x, top + gap, width, 0.52, label, kind)
        add_y = top + gap + r
        _arrow(ax, (x, top), (x, add_y - r))
        add(add_y, r)
        skip(ln_y - branch, add_y, r)
        below, ln_y = add_y + r, add_y + r + 0.3
    block_top = below + 0.12
    ax.add_patch(FancyBboxPatch((0.55, block_bottom), 4.9, block_top - block_bottom, boxstyle="round,pad=0,rounding_size=0.15",
                                facecolor="#F2F2F2", edgecolor="#666666", linestyle="--", linewidth=1.2, zorder=1))
    ax.text(4.9, (block_bottom + block_top) / 2, "× L\nblocks", ha="center", va="center", fontsize=12, fontweight="bold",
            color="#333333", multialignment="center")

    # output
    ln_f = block_top + 0.3
    _arrow(ax, (x, add_y + r), (x, ln_f))
    top = box(x, ln_f, width, 0.34, "final LayerNorm", "norm")
    _arrow(ax, (x, top), (x, top + gap))
    top = box(x, top + gap, 3.6, 0.52, "output layer (tied to the token embedding)\n+ per-condition bias", "output")
    _arrow(ax, (x, top), (x, top + gap))
    top = box(x, top + gap, width, 0.36, "next-token logits → softmax", "result") + 0.1
    title_room = 0.5  # inches above the drawing for the title
    fig.set_figheight(top + title_room)
    ax.set_position((0, 0, 1, top / (top + title_room)))
    ax.set(xlim=(0, 6), ylim=(0, top))
    fig.suptitle("A pre-LN GPT block, as notebook 04 builds it", y=1 - 0.15 / (top + title_room), va="top", fontsize=12)
    set_description(fig, "Diagram, bottom to top: token ids, their positions and the review's condition (negative, "
                         "positive or unlabelled) each go through an embedding, and the three vectors are summed. The sum "
                         "passes through L identical pre-LN blocks: LayerNorm, then masked (causal) multi-head attention, "
                         "whose output a residual connection adds to the block's input; then LayerNorm, an MLP (d to 4d, "
                         "GELU, 4d to d), and a second residual add. A final LayerNorm and the output layer, which shares its "
                         "weights with the token embedding, plus a bias per condition give the next token's logits, "
                         "which a softmax turns into probabilities.")
    return fig


def lm_training_curves(losses: Sequence[float], lrs: Sequence[float], val_curve: Sequence[tuple[int, float]],
                       baselines: Mapping[str, float], tokens_per_step: int, window: int = 25,
                       title: str = "GPT training against the count models") -> Figure:
    """A language model's training loss (running mean), validation points and baselines by tokens seen; its rate beside."""
    losses = check.array(losses, "losses", ndim=1)
    lrs = check.array(lrs, "lrs", ndim=1)
    if len(losses) < window or len(lrs) != len(losses):
        raise ValueError(f"losses has {len(losses)} steps and lrs {len(lrs)}: pass one of each per step, "
                         f"at least window={window}")
    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(tokens_per_step * np.arange(window, len(losses) + 1) / 1e6, smooth, label=f"training (mean of {window} steps)")
    ax.plot([tokens_per_step * s / 1e6 for s, _ in val_curve], [v for _, v in val_curve], "s-", label="validation")
    for (name, value), style in zip(baselines.items(), (":", "--", "-.", (0, (1, 3))), strict=False):
        ax.axhline(value, color="black", linestyle=style, linewidth=1, label=f"{name}, same windows")
    ax.set(title=title, xlabel="training tokens seen (millions)", ylabel="cross-entropy (nats per token)")
    ax.legend(fontsize=8)
    ax_lr.plot(np.arange(1, len(lrs) + 1), lrs)
    ax_lr.set(title="Learning rate: warm-up, cosine decay", xlabel="optimizer step", ylabel="learning rate")
    fig.tight_layout()
    return fig


def attention_grid(maps: Sequence[np.ndarray], tokens: Sequence[str], n_heads: int,
                   title: str = "Attention weights of every layer and head") -> Figure:
    """Causal attention weights, one heatmap per layer and head (rows: queries, columns: keys), side by side."""
    tokens = check.words(tokens, "tokens")
    maps = [check.array(m, f"maps[{i}]", ndim=2, minimum=0.0, maximum=1.01) for i, m in enumerate(maps)]
    if not maps or any(m.shape != (len(tokens), len(tokens)) for m in maps):
        raise ValueError(f"maps must be (tokens, tokens) = ({len(tokens)}, {len(tokens)}) arrays, got "
                         f"{[m.shape for m in maps]}")
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.6), squeeze=False)
    for k, (ax, weights) in enumerate(zip(axes[0], maps, strict=True)):
        ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
        ax.set(title=f"layer {k // n_heads + 1}, head {k % n_heads + 1}", xlabel="key (token looked at)",
               ylabel="query (token predicting the next)" if k == 0 else "")
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens if k == 0 else [""] * len(tokens), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # the suptitle keeps its own band above the panel titles
    return fig


def next_token_bars(distributions: Mapping[str, Sequence[float]], top: Sequence[int], tokens: Sequence[str],
                    title: str = "The most likely next tokens") -> Figure:
    """One panel per sampling setting: the probabilities of the candidate tokens top, and how many stay possible."""
    tokens = check.words(tokens, "tokens")
    top = [int(i) for i in top]
    if len(top) != len(tokens) or not top:
        raise ValueError(f"top has {len(top)} token ids and tokens {len(tokens)} names: pass one name per id")
    fig, axes = plt.subplots(1, len(distributions), figsize=(2.9 * len(distributions), 3.2), sharey=True,
                             squeeze=False)
    for ax, (name, probs) in zip(axes[0], distributions.items(), strict=True):
        probs = check.array(probs, f"distributions[{name!r}]", ndim=1, minimum=0.0, maximum=1.0)
        ax.barh(range(len(top)), probs[top][::-1], color=PALETTE[0])
        ax.set_xlim(0.0, 1.05 * max(float(probs[top].max()), 1e-9))  # from 0: a bar's length is its probability
        ax.set(title=name, xlabel="probability", yticks=range(len(top)), yticklabels=list(tokens)[::-1])
        ax.text(0.95, 0.05, f"{int((probs > 0).sum())} tokens\npossible", transform=ax.transAxes, ha="right")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the suptitle keeps its own band above the panel titles
    return fig
