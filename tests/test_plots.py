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


def test_comparison_bar_rounds_its_labels_as_asked() -> None:
    fig = plots.comparison_bar(["TF-IDF", "BERT"], [81.75, 89.123], value_format="{:.1f} %")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["81.8 %", "89.1 %"]
