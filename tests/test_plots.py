"""Every plot returns a Figure with a title and labelled axes, and rejects malformed input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


def _labelled(fig: plt.Figure) -> bool:
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    return all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in axes)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class FakeHistory:
    history = {"loss": [0.7, 0.5, 0.4], "accuracy": [0.5, 0.7, 0.8], "val_loss": [0.6, 0.5, 0.5],
               "val_accuracy": [0.6, 0.7, 0.75]}


def test_training_curves_from_history_and_dict() -> None:
    fig = plots.training_curves(FakeHistory(), title="LSTM")
    assert len(fig.axes) == 2 and _labelled(fig) and fig._suptitle.get_text() == "LSTM"
    assert len(fig.axes[0].lines) == 2  # train and validation
    assert len(plots.training_curves({"loss": [1.0, 0.5]}).axes) == 1
    with pytest.raises(TypeError):
        plots.training_curves([1, 2, 3])


def test_confusion_matrix_counts() -> None:
    fig = plots.confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1\n50.0%", "1\n50.0%", "1\n33.3%", "2\n66.7%"]
    assert "n = 5" in fig.axes[0].get_title() and _labelled(fig)


def _colorbars(fig: plt.Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


@pytest.mark.parametrize("title", ["Fine-tuned BERT, test subset",
                                   "bidirectional GRU, word2vec init, fine-tuned, full test set"])
def test_confusion_matrix_title_axes_cells_and_colorbar_never_overlap(title: str) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 25000)
    fig = plots.confusion_matrix(y_true, np.where(rng.random(25000) < 0.89, y_true, 1 - y_true), title=title)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax, (cax,) = fig.axes[0], _colorbars(fig)
    image, bar, heading = ax.get_window_extent(renderer), cax.get_tightbbox(renderer), ax.title.get_window_extent(renderer)
    assert not bar.overlaps(heading)  # the colorbar, its ticks and label stay clear of the title
    assert not bar.overlaps(image) and cax.get_window_extent(renderer).y1 <= image.y1 + 1  # beside the image, no taller
    assert heading.y0 >= image.y1 and _inside(fig, heading)  # the title above the axes, whole (wrapped when long)
    assert " ".join(ax.get_title().split()) == f"{title} (n = 25,000)"
    cells = [t.get_window_extent(renderer) for t in ax.texts]
    assert all(image.x0 < c.x0 and c.x1 < image.x1 and image.y0 < c.y0 and c.y1 < image.y1 for c in cells)
    assert not _overlapping(cells) and all(_inside(fig, t.get_window_extent(renderer)) for t in _visible_texts(fig))


def test_embedding_projection_labels_and_groups() -> None:
    coords = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    fig = plots.embedding_projection(coords, ["good", "bad", "film"], ["pos", "neg", "neutral"], method="t-SNE")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["good", "bad", "film"] and len(ax.collections) == 3
    assert "t-SNE" in ax.get_xlabel() and _labelled(fig)
    with pytest.raises(ValueError):
        plots.embedding_projection(coords[:, :1], ["a", "b", "c"])


def test_attention_heatmap_shape_check() -> None:
    weights = np.full((3, 3), 1 / 3)
    fig = plots.attention_heatmap(weights, ["[CLS]", "great", "[SEP]"], title="layer 1, head 1")
    assert _labelled(fig)
    with pytest.raises(ValueError, match="expected"):
        plots.attention_heatmap(weights, ["a", "b"])


def test_comparison_bar_with_reference() -> None:
    fig = plots.comparison_bar(["TF-IDF", "LSTM", "BERT"], [89.1, 86.0, 88.2], title="Accuracy",
                               reference=89.1, reference_label="TF-IDF")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["TF-IDF", "LSTM", "BERT"]
    assert ax.get_legend() is not None and ax.get_title() == "Accuracy" and _labelled(fig)


NB03_NAMES = ["01 Word2Vec skip-gram mean vectors + LR · 22,500 labels",
              "02 TF-IDF (1-2 grams) + logistic regression · 22,500 labels",
              "03 MiniLM-L6 frozen mean features + logistic regression · 22,500 labels",
              "03 MiniLM-L6 fine-tuned · 1,024 labels", "04 bigram language model classifier · 0 labels"]


@pytest.mark.parametrize(("names", "values", "reference"), [
    (["TF-IDF", "LSTM", "BERT"], [89.1, 86.0, 88.2], 89.1),  # close values: the axis used to start near 82.5
    (["a", "b", "c"], [30.0, 45.0, 33.0], None),  # and at 30 without a reference
    (NB03_NAMES, [84.2, 90.2, 81.2, 86.0, 71.0], 50.0),  # long names, the reference left of every bar
    (["x", "y", "not measured"], [0.5, 0.91, float("nan")], 0.95),  # the reference right of every bar
])
def test_comparison_bar_starts_every_bar_at_zero(names: list, values: list, reference: float | None) -> None:
    fig = plots.comparison_bar(names, values, reference=reference, value_format="{:.1f} %", title="Accuracy on the "
                               "test subset, grouped by labelled reviews (small preset)")
    ax = fig.axes[0]
    measured = [v for v in values if not np.isnan(v)]
    left, right = ax.get_xlim()
    assert left == 0 and max([*measured, reference or 0]) < right < 1.3 * max([*measured, reference or 0])
    assert all(bar.get_x() == 0 for bar in ax.patches)  # a bar's length is its value
    assert [bar.get_width() for bar in ax.patches if not np.isnan(bar.get_width())] == pytest.approx(measured)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = ax.get_window_extent(renderer)
    for label in (t for t in ax.texts if t.get_text()):  # each value label whole, inside the axes, after its bar
        box = label.get_window_extent(renderer)
        assert axes.x0 < box.x0 and box.x1 < axes.x1, label.get_text()
        assert box.x0 >= ax.transData.transform((label.xy[0], 0))[0]
    assert plots.overlapping_labels(fig) == [] and all(_inside(fig, t.get_window_extent(renderer)) for t in _visible_texts(fig))
    ticks = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
    assert not _overlapping(ticks)  # long names wrap onto lines of their own height, clear of their neighbours
    assert " ".join(t.get_text() for t in ax.get_yticklabels()).split() == " ".join(names).split()


def test_comparison_bar_with_negative_values_keeps_zero_as_the_start_of_every_bar() -> None:
    fig = plots.comparison_bar(["gain", "loss"], [12.0, -7.5], xlabel="change (percentage points)", reference=0.0)
    ax = fig.axes[0]
    left, right = ax.get_xlim()
    assert left < -7.5 and 12.0 < right and all(bar.get_x() == 0 for bar in ax.patches)
    renderer = fig.canvas.get_renderer()
    axes = ax.get_window_extent(renderer)
    assert all(axes.x0 < t.get_window_extent(renderer).x0 and t.get_window_extent(renderer).x1 < axes.x1 for t in ax.texts)


def test_comparison_bar_rounds_its_labels_as_asked() -> None:
    fig = plots.comparison_bar(["TF-IDF", "BERT"], [81.75, 89.123], value_format="{:.1f} %")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["81.8 %", "89.1 %"]


BUDGET = {"TF-IDF + LR": {64: [0.65, 0.66, 0.67], 256: [0.78, 0.79, 0.80], 1024: [0.835, 0.84, 0.845],
                          2400: [0.855, 0.86, 0.865]},
          "frozen MiniLM + LR": {64: [0.68, 0.70, 0.72], 256: [0.73, 0.74, 0.75], 1024: [0.755, 0.76, 0.765],
                                 2400: [0.765, 0.77, 0.775]},
          "MiniLM fine-tuned": {256: [0.79], 1024: [0.86], 2400: [0.87]}}
REFERENCE = [("notebook 02's TF-IDF on all 22,500 labelled reviews", 22500, 0.902)]


def test_label_budget_curve_draws_means_bands_and_the_reference() -> None:
    fig = plots.label_budget_curve(BUDGET, REFERENCE)
    ax = fig.axes[0]
    assert fig.get_label() == "label-budget" and _labelled(fig) and ax.get_xscale() == "log"
    assert ax.get_xlabel() == "labelled training reviews (log scale)" and "(%)" in ax.get_ylabel()
    tfidf, frozen, tuned, star = ax.lines
    assert list(tfidf.get_xdata()) == [64, 256, 1024, 2400] and np.allclose(tfidf.get_ydata(), [66, 79, 84, 86])
    assert list(tuned.get_xdata()) == [256, 1024, 2400] and np.allclose(tuned.get_ydata(), [79, 86, 87])
    assert len({line.get_marker() for line in ax.lines}) == 4 and len({line.get_color() for line in ax.lines}) == 4
    assert star.get_marker() == "*" and star.get_color() == "black" and star.get_ydata()[0] == pytest.approx(90.2)
    assert len(ax.collections) == 2  # a min-max band for each method with several draws, none for single runs
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(65) and band.max() == pytest.approx(86.5)
    entries = [t.get_text() for t in ax.get_legend().get_texts()]
    assert entries == ["TF-IDF + LR: mean of 3 draws, band: their range",
                       "frozen MiniLM + LR: mean of 3 draws, band: their range", "MiniLM fine-tuned: one run each",
                       REFERENCE[0][0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "256", "1,024", "2,400", "22,500"]


def test_label_budget_curve_refuses_percentages_and_malformed_input() -> None:
    with pytest.raises(ValueError, match=r"budget\['a'\]\[64\]\[0\].*divide a percentage by 100"):
        plots.label_budget_curve({"a": {64: [86.0]}})
    with pytest.raises(TypeError, match="budget must be a non-empty dict"):
        plots.label_budget_curve({})
    with pytest.raises(TypeError, match=r"budget\['a'\]\[64\]"):
        plots.label_budget_curve({"a": {64: []}})
    with pytest.raises(TypeError, match="labelled reviews"):
        plots.label_budget_curve({"a": {64.5: [0.5]}})
    with pytest.raises(TypeError, match=r"reference\[0\]"):
        plots.label_budget_curve({"a": {64: [0.5]}}, [("TF-IDF", 0.9)])
    with pytest.raises(ValueError, match=r"reference\[0\]\[2\]"):
        plots.label_budget_curve({"a": {64: [0.5]}}, [("TF-IDF", 22500, 90.2)])


ROWS = [("01_word_embeddings", "Word2Vec skip-gram mean vectors + LR", 22500, 0.02, 0.842),
        ("01_word_embeddings", "FastText mean vectors + logistic regression", 22500, 0.03, 0.836),
        ("01_word_embeddings", "GloVe (Keras) mean vectors + logistic regression", 22500, 0.02, 0.815),
        ("02_lstm_sentiment", "TF-IDF (1-2 grams) + logistic regression", 22500, 0.05, 0.902),
        ("02_lstm_sentiment", "LSTM, random init", 22500, 1.9, 0.861),
        ("02_lstm_sentiment", "GRU, word2vec init, fine-tuned", 22500, 1.7, 0.884),
        ("02_lstm_sentiment", "bidirectional GRU, word2vec init, fine-tuned", 22500, 3.2, 0.889),
        ("03_bert_classification", "MiniLM-L6 frozen mean features + logistic regression", 22500, 4.1, 0.812),
        ("03_bert_classification", "MiniLM-L6 fine-tuned", 22500, 4.0, 0.887),
        ("03_bert_classification", "MiniLM-L6 fine-tuned", 1024, 4.0, 0.86),
        ("03_bert_classification", "TF-IDF + LR", 1024, 0.05, 0.84),
        ("04_transformers_from_scratch", "GPT pretrained on IMDB, fine-tuned classifier", 22500, 2.5, 0.874),
        ("04_transformers_from_scratch", "GPT from scratch, no pretraining", 22500, 2.5, 0.822),
        ("04_transformers_from_scratch", "GPT generative classifier (conditional likelihood)", None, 35.0, 0.79),
        ("04_transformers_from_scratch", "bigram language model classifier", None, 0.4, 0.71)]


def _rows(rows=ROWS) -> list[dict]:
    return [{"notebook": nb, "method": m, "labelled_reviews": n, "ms_per_review": ms, "subset_accuracy": acc}
            for nb, m, n, ms, acc in rows]


def test_cost_scatter_gives_each_row_its_own_point_and_legend_entry() -> None:
    fig = plots.cost_scatter(_rows())
    ax = fig.axes[0]
    assert _labelled(fig) and ax.get_xscale() == "log" and ax.get_xlabel() == "inference time per review (ms, log scale)"
    assert ax.get_ylabel() == "accuracy on the 2,000-review test subset (%)"
    assert len(ax.lines) == len(ROWS)
    assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines] == \
        [(ms, pytest.approx(100 * acc)) for *_, ms, acc in ROWS]
    entries = [" ".join(t.get_text().split()) for t in ax.get_legend().get_texts()]  # wrapped lines read as one
    assert entries[0] == "01 Word2Vec skip-gram mean vectors + LR (22,500 labels)"
    assert entries[7] == "03 MiniLM-L6 frozen mean features + logistic regression (22,500 labels)"
    assert entries[13] == "04 GPT generative classifier (conditional likelihood)"  # no label count recorded
    assert all(len(line) <= 40 for t in ax.get_legend().get_texts() for line in t.get_text().split("\n"))


def test_cost_scatter_leaves_out_rows_without_a_time_and_refuses_bad_rows() -> None:
    rows = _rows(ROWS[:3]) + [{"notebook": "02_x", "method": "not timed", "labelled_reviews": 10, "ms_per_review": None,
                               "subset_accuracy": 0.8}]
    ax = plots.cost_scatter(rows).axes[0]
    assert len(ax.lines) == 3 and "1 row(s) without a time or accuracy left out" in ax.get_legend().get_title().get_text()
    with pytest.raises(ValueError, match="none of the 1 rows"):
        plots.cost_scatter(rows[3:])
    with pytest.raises(ValueError, match=r"rows\[0\]\['subset_accuracy'\].*divide a percentage"):
        plots.cost_scatter([{**rows[0], "subset_accuracy": 84.2}])
    with pytest.raises(ValueError, match=r"rows\[0\]\['ms_per_review'\]"):
        plots.cost_scatter([{**rows[0], "ms_per_review": 0.0}])
    with pytest.raises(TypeError, match=r"rows\[0\]\['method'\]"):
        plots.cost_scatter([{**rows[0], "method": None}])
    with pytest.raises(TypeError, match="rows must be a list of results rows"):
        plots.cost_scatter(rows[0])


def test_transformer_block_diagram_draws_the_gpt_of_notebook_04() -> None:
    fig = plots.transformer_block_diagram()
    ax = fig.axes[0]
    assert isinstance(fig, plt.Figure) and fig.get_label() == "transformer-block" and not ax.axison
    assert fig._suptitle.get_text() == "A pre-LN GPT block, as notebook 04 builds it"
    labels = " ".join(t.get_text() for t in ax.texts)
    for part in ("token ids", "token\nembedding", "position\nembedding", "condition\nembedding", "× L\nblocks",
                 "LayerNorm", "masked (causal)\nmulti-head attention", "MLP\nd → 4d, GELU, 4d → d", "residual",
                 "final LayerNorm", "tied to the token embedding", "per-condition bias", "next-token logits → softmax"):
        assert part in labels, part
    assert labels.count("residual") == 2 and 5 <= fig.get_figheight() <= 9  # tall, but fits a screen


def _inside(fig: plt.Figure, box) -> bool:
    return fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1 and fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1


def _visible_texts(fig: plt.Figure) -> list:
    """Every text a reader sees: titles, axis and tick labels (of ticks in view), annotations, legend entries."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [ax.title, *ax.texts]
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label]
            for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
                texts += [t.label1 for t in axis.get_major_ticks() if min(limits) <= t.get_loc() <= max(limits)]
        if ax.get_legend() is not None:
            texts += [ax.get_legend().get_title(), *ax.get_legend().get_texts()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _overlapping(boxes: list) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def test_label_budget_curve_is_the_readme_figure_whole_and_described() -> None:
    fig = plots.label_budget_curve(BUDGET, REFERENCE)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert all(_inside(fig, t.get_window_extent(renderer)) for t in _visible_texts(fig))  # nothing cut
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    points = np.concatenate([line.get_transform().transform(line.get_xydata()) for line in ax.lines])
    assert not any(legend.contains(x, y) for x, y in points)  # the legend hides no point of any line
    ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    assert not _overlapping(ticks) and plots.overlapping_labels(fig) == []
    alt = plots.alt_text(fig)
    assert alt.startswith("Accuracy against labelled reviews. x axis: labelled training reviews (log scale)")
    assert "TF-IDF + LR (circles, mean of 3 draws, band: their range) from 66.0 % at 64 to 86.0 % at 2,400" in alt
    assert "MiniLM fine-tuned (triangles, one run each) from 79.0 % at 256" in alt
    assert "a black star marks notebook 02's TF-IDF on all 22,500 labelled reviews: 90.2 %." in alt
    assert "\n" not in alt


def test_label_budget_curve_moves_its_legend_off_the_data_and_thins_crowded_ticks() -> None:
    flat = {f"method {i}": {n: [0.5 + 0.01 * i, 0.6 + 0.38 * (i % 2)] for n in (100, 2000, 2100, 2200, 40000)}
            for i in range(5)}  # bands from 50 to 98 %: no corner of the axes is free
    fig = plots.label_budget_curve(flat)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.y1 < ax.get_window_extent(renderer).y0 and _inside(fig, legend)  # below the axes, whole
    assert all(_inside(fig, t.get_window_extent(renderer)) for t in _visible_texts(fig))
    shown = [t for t in ax.get_xticklabels() if t.get_text()]
    assert not _overlapping([t.get_window_extent(renderer) for t in shown])
    assert shown[0].get_text() == "100" and shown[-1].get_text() == "40,000" and len(shown) < 5


def test_cost_scatter_tells_every_point_apart_and_shows_its_whole_legend() -> None:
    fig = plots.cost_scatter(_rows())
    ax = fig.axes[0]
    styles = [(line.get_marker(), line.get_color()) for line in ax.lines]
    assert len(set(styles)) == len(styles) == 15  # a unique (marker, colour) pair per point
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 > ax.get_window_extent(renderer).x1 and _inside(fig, legend)  # right of the axes, not cut
    assert all(_inside(fig, t.get_window_extent(renderer)) for t in _visible_texts(fig))
    assert plots.overlapping_labels(fig) == []
    alt = plots.alt_text(fig)
    assert "15 from notebooks 01, 02, 03, 04" in alt and "the most accurate, TF-IDF (1-2 grams) + logistic regression" in alt


def test_cost_scatter_grows_to_hold_a_long_legend_and_never_repeats_a_style() -> None:
    rows = _rows([("03_bert", f"a rather long method name number {i} with its settings", 100 * i, 1.0 + i, 0.8)
                  for i in range(1, 41)])
    fig = plots.cost_scatter(rows)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert _inside(fig, fig.axes[0].get_legend().get_window_extent(renderer)) and fig.get_figheight() > 4.5
    styles = [(line.get_marker(), line.get_color()) for line in fig.axes[0].lines]
    assert len(set(styles)) == 40
    with pytest.raises(ValueError, match="distinct"):
        plots.cost_scatter(_rows([("03_bert", f"m{i}", None, 1.0, 0.8) for i in range(81)]))


def test_transformer_block_diagram_reads_clearly() -> None:
    fig = plots.transformer_block_diagram()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = _visible_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert plots.overlapping_labels(fig) == [] and not _overlapping(boxes)
    assert all(_inside(fig, b) for b in boxes)
    drawn = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, matplotlib.patches.FancyArrowPatch)]
    for line in ax.lines:  # the residual paths and the plus signs, segment by segment
        xy = line.get_transform().transform(line.get_xydata())
        drawn += [matplotlib.transforms.Bbox([np.minimum(a, b), np.maximum(a, b)]) for a, b in zip(xy[:-1], xy[1:], strict=True)]
    assert not any(arrow.overlaps(text) for arrow in drawn for text in boxes)  # no arrow or line crosses a label
    frames = [p for p in ax.patches if isinstance(p, matplotlib.patches.FancyBboxPatch)]
    for text, box in zip(texts, boxes, strict=True):  # a label sits wholly inside the smallest box around its anchor
        anchor = text.get_transform().transform(text.get_position())
        around = [f.get_window_extent(renderer) for f in frames if f.get_window_extent(renderer).contains(*anchor)]
        if around:
            frame = min(around, key=lambda b: b.width * b.height)
            assert frame.x0 < box.x0 and box.x1 < frame.x1 and frame.y0 < box.y0 and box.y1 < frame.y1, text.get_text()


def _titles_clear_of_each_other(fig) -> bool:
    """The figure's suptitle and every axes title do not overlap (nothing drawn over a title)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
    boxes = [t.get_window_extent(renderer) for t in titles]
    return not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


def test_lm_training_curves_draw_loss_validation_baselines_and_rate() -> None:
    losses, lrs = np.linspace(6, 4, 100), np.linspace(1e-3, 1e-4, 100)
    fig = plots.lm_training_curves(losses, lrs, [(50, 4.8), (100, 4.3)], {"bigram": 4.4, "trigram": 3.7}, 1024,
                                   window=10)
    ax, ax_lr = fig.axes
    assert [line.get_label() for line in ax.get_lines()][:2] == ["training (mean of 10 steps)", "validation"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"bigram, same windows", "trigram, same windows"}
    assert ax.get_xlabel() == "training tokens seen (millions)" and ax_lr.get_ylabel() == "learning rate"
    with pytest.raises(ValueError, match="one of each per step"):
        plots.lm_training_curves(losses, lrs[:50], [], {}, 1024)
    plt.close(fig)


def test_attention_grid_draws_one_map_per_head_with_titles_clear() -> None:
    tokens = ["<pos>", "A", "fine", "film", "."]
    maps = [np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None] for _ in range(4)]
    fig = plots.attention_grid(maps, tokens, n_heads=2)
    assert [ax.get_title() for ax in fig.axes] == ["layer 1, head 1", "layer 1, head 2", "layer 2, head 1",
                                                   "layer 2, head 2"]
    assert _titles_clear_of_each_other(fig)
    with pytest.raises(ValueError, match="maps must be"):
        plots.attention_grid([np.ones((4, 4))], tokens, n_heads=1)
    plt.close(fig)


def test_next_token_bars_show_each_setting_and_what_stays_possible() -> None:
    probs = np.array([0.5, 0.3, 0.2, 0.0])
    fig = plots.next_token_bars({"plain": probs, "top-k 2": np.array([0.6, 0.4, 0.0, 0.0])}, [0, 1], ["a", "the"],
                                title="Next token")
    assert [ax.get_title() for ax in fig.axes] == ["plain", "top-k 2"]
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["3 tokens\npossible", "2 tokens\npossible"]
    assert _titles_clear_of_each_other(fig) and not plots.overlapping_labels(fig)
    with pytest.raises(ValueError, match="one name per id"):
        plots.next_token_bars({"plain": probs}, [0, 1], ["a"])
    plt.close(fig)


def test_next_token_bars_start_at_zero() -> None:
    fig = plots.next_token_bars({"plain": np.array([0.4, 0.35, 0.25]), "top-k 2": np.array([0.55, 0.45, 0.0])},
                                [0, 1, 2], ["a", "the", "very"])
    for ax, probs in zip(fig.axes, ([0.4, 0.35, 0.25], [0.55, 0.45, 0.0]), strict=True):
        assert ax.get_xlim()[0] == 0 and max(probs) < ax.get_xlim()[1] < 1.2 * max(probs)
        assert all(bar.get_x() == 0 for bar in ax.patches)
        assert [bar.get_width() for bar in ax.patches] == pytest.approx(probs[::-1])  # the most likely on top


def _every_plot() -> dict:
    """One figure of every kind the module draws, with data like the notebooks'."""
    tokens = ["[CLS]", "this", "movie", "was", "great", "!", "[SEP]"]
    weights = np.full((7, 7), 1 / 7)
    return {
        "training_curves": lambda: plots.training_curves(FakeHistory(), title="Training curves: LSTM"),
        "confusion_matrix": lambda: plots.confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="A rather long model name "
                                                           "with its settings, full test set"),
        "embedding_projection": lambda: plots.embedding_projection(np.array([[0.0, 1.0], [1.0, 0.0]]), ["good", "bad"],
                                                                   ["pos", "neg"]),
        "attention_heatmap": lambda: plots.attention_heatmap(weights, tokens, title="Last-layer attention, mean of 12 "
                                                             "heads, for a review of seven tokens"),
        "comparison_bar": lambda: plots.comparison_bar(NB03_NAMES, [84.2, 90.2, 81.2, 86.0, 71.0], reference=50.0,
                                                       title="Accuracy on the test subset (small preset)"),
        "label_budget_curve": lambda: plots.label_budget_curve(BUDGET, REFERENCE),
        "cost_scatter": lambda: plots.cost_scatter(_rows()),
        "lm_training_curves": lambda: plots.lm_training_curves(np.linspace(6, 4, 100), np.linspace(1e-3, 1e-4, 100),
                                                               [(50, 4.8), (100, 4.3)], {"bigram": 4.4}, 1024, window=10),
        "attention_grid": lambda: plots.attention_grid([np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None]] * 2,
                                                       tokens[:5], n_heads=2),
        "next_token_bars": lambda: plots.next_token_bars({"plain": np.array([0.5, 0.3, 0.2])}, [0, 1], ["a", "the"]),
    }


@pytest.mark.parametrize("name", list(_every_plot()))
def test_no_legend_or_colorbar_covers_a_title(name: str) -> None:
    fig = _every_plot()[name]()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
    titles = [t.get_window_extent(renderer) for t in titles]
    covers = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend() is not None]
    covers += [cax.get_tightbbox(renderer) for cax in _colorbars(fig)]  # the bar, its ticks and its label
    assert titles and not any(box.overlaps(title) for box in covers for title in titles)
    assert all(_inside(fig, title) for title in titles)  # and no title is cut at the figure's edge
    bars = [bar for ax in fig.axes for bar in ax.patches if type(bar) is matplotlib.patches.Rectangle]
    assert all(bar.get_x() == 0 for bar in bars)  # any bars start at 0
