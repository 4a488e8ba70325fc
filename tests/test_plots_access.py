"""Figures speak to everyone: alt text from the figure itself, a colour-blind-safe palette, readable rounding."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_alt_text_names_title_and_axes_of_every_panel() -> None:
    fig = plots.training_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}, title="GloVe loss")
    alt = plots.alt_text(fig)
    assert alt.startswith("GloVe loss.") and "Panel 1: loss" in alt and "Panel 2: accuracy" in alt
    assert "x axis: epoch" in alt and "y axis: loss (cross-entropy)" in alt


def test_alt_text_includes_the_colour_scale_and_never_comes_out_empty() -> None:
    alt = plots.alt_text(plots.confusion_matrix([0, 1], [0, 1]))
    assert "x axis: predicted class" in alt and "Colour scale: share of true class." in alt
    fig, ax = plt.subplots()
    assert plots.alt_text(fig) == "Plot."
    ax.set(title="Loss", xlabel="epoch", ylabel="loss (nats)")
    assert plots.alt_text(fig) == "Loss. x axis: epoch; y axis: loss (nats)."


class FakeMimebundleFormatter:
    def __init__(self) -> None:
        self.printers: dict = {}

    def for_type(self, typ, func) -> None:
        self.printers[typ] = func


class FakeShell:
    def __init__(self) -> None:
        self.display_formatter = type("DF", (), {"mimebundle_formatter": FakeMimebundleFormatter()})()


def test_attach_alt_text_puts_alt_and_label_in_the_image_metadata() -> None:
    shell = FakeShell()
    assert plots.attach_alt_text(shell) is True
    describe = shell.display_formatter.mimebundle_formatter.printers[matplotlib.figure.Figure]
    data, meta = describe(plots.comparison_bar(["a", "b"], [81.75, 90.0], title="Accuracy"))
    assert data == {} and meta["image/png"]["alt"].startswith("Accuracy.") and meta["image/png"]["label"] == "comparison"
    data, meta = describe(plt.figure())
    assert "label" not in meta["image/png"]
    assert plots.attach_alt_text(object()) is False  # not IPython: nothing to do


def test_palette_stays_distinguishable_with_every_colour_vision_deficiency() -> None:
    assert plots.palette_min_distance(plots.PALETTE) > 10  # delta E 1976; about 2.3 is just noticeable
    tableau = list(matplotlib.colors.TABLEAU_COLORS.values())
    assert plots.palette_min_distance(tableau) < 10  # the check tells a risky palette apart
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"] == list(plots.PALETTE)


def test_comparison_bar_rounds_labels_to_one_decimal() -> None:
    ax = plots.comparison_bar(["TF-IDF", "BERT"], [81.754, 88.2], reference=81.754, reference_label="TF-IDF").axes[0]
    assert [t.get_text() for t in ax.texts] == ["81.8", "88.2"]
    assert ax.get_legend().get_texts()[0].get_text() == "TF-IDF (81.8)"
    ax = plots.comparison_bar(["x"], [0.5], decimals=3).axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.500"]


def test_overlapping_labels_finds_labels_drawn_on_top_of_each_other() -> None:
    words = ["good", "great", "bad"]
    apart = plots.embedding_projection(np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]]), words)
    assert plots.overlapping_labels(apart) == []
    close = plots.embedding_projection(np.array([[0.0, 0.0], [0.01, 0.0], [10.0, 0.0]]), words)
    assert plots.overlapping_labels(close) == [("good", "great")]


def test_alt_text_keeps_a_title_that_ends_in_a_question_mark() -> None:
    fig, ax = plt.subplots()
    ax.set(title="Which model wins?", xlabel="model")
    assert plots.alt_text(fig) == "Which model wins? x axis: model."
    fig.suptitle("Does it pay off?")
    assert "?." not in plots.alt_text(fig)


@pytest.mark.parametrize("n", [1, 3, 9, 16])
def test_comparison_bar_legend_never_covers_a_bar_or_its_value(n: int) -> None:
    values = list(np.linspace(60.0, 90.0, n))
    fig = plots.comparison_bar([f"method {i}" for i in range(n)], values, reference=75.0, reference_label="TF-IDF")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    covered = [p.get_window_extent(renderer) for p in ax.patches] + [t.get_window_extent(renderer) for t in ax.texts]
    assert not any(legend.overlaps(box) for box in covered)
    assert fig.bbox.contains(legend.x0, legend.y0) and fig.bbox.contains(legend.x1, legend.y1)  # not cut off


def test_set_description_adds_what_a_figure_shows_after_its_title_and_axes() -> None:
    fig, ax = plt.subplots()
    ax.set(title="Loss", xlabel="epoch", ylabel="loss (nats)")
    assert plots.set_description(fig, "Two lines:\n  training\tfalls.") is fig
    assert plots.alt_text(fig) == "Loss. x axis: epoch; y axis: loss (nats). Two lines: training falls."
    with pytest.raises(TypeError, match="text must be a non-empty str"):
        plots.set_description(fig, "  ")
    diagram = plt.figure()
    diagram.add_axes((0, 0, 1, 1)).axis("off")  # a drawing area: no axes to name, and no "Plot."
    diagram.suptitle("A block")
    assert plots.alt_text(plots.set_description(diagram, "Boxes and arrows")) == "A block. Boxes and arrows."


def test_transformer_block_diagram_has_its_own_alt_text_in_the_image_metadata() -> None:
    fig = plots.transformer_block_diagram()
    alt = plots.alt_text(fig)
    assert alt.startswith("A pre-LN GPT block, as notebook 04 builds it. Diagram, bottom to top:")
    assert "attention" in alt and "residual" in alt and "Plot" not in alt
    shell = FakeShell()
    plots.attach_alt_text(shell)
    _, meta = shell.display_formatter.mimebundle_formatter.printers[matplotlib.figure.Figure](fig)
    assert meta["image/png"] == {"alt": alt, "label": "transformer-block"}
