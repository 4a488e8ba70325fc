"""Notebook 03's fine-tuning functions (section 6) and their copies in helpers.bert: the same code, the same results."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import bert

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_bert_classification.ipynb"
IMPORTS_CELL = "0b85568e"
DEFINITION_CELLS = {"7b606aa6": ("new_classifier", "head_parameters"), "40df83ca": ("predict",),
                    "f0b3ad3b": ("fine_tune",)}
TAUGHT = ("new_classifier", "head_parameters", "predict", "fine_tune")


def _cells() -> dict[str, str]:
    return {c["id"]: "".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}


@pytest.fixture(scope="module")
def notebook() -> dict:
    """The namespace after the notebook's imports cell and its section 6 definition cells (no training run)."""
    cells = _cells()
    namespace: dict = {"__name__": "notebook03"}
    for cell_id in (IMPORTS_CELL, *DEFINITION_CELLS):
        exec(compile(cells[cell_id], f"{NOTEBOOK.name}, cell {cell_id}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BertModel (hidden size 32) saved like the bundled checkpoint: a BERT without a classifier."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    return folder


def test_definition_cells_hold_only_definitions() -> None:
    cells = _cells()
    for cell_id, names in DEFINITION_CELLS.items():
        tree = ast.parse(cells[cell_id])
        assert [node.name for node in tree.body if isinstance(node, ast.FunctionDef)] == list(names), cell_id
        assert all(isinstance(node, ast.FunctionDef) for node in tree.body), f"cell {cell_id} runs more than definitions"


class _Normalise(ast.NodeTransformer):
    """Drops what may differ between the notebook's copy and the helper's: docstrings, imports, type hints, and the
    ``bert.`` / ``helpers.`` prefixes the notebook needs to reach the functions the helper module holds itself."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in ("bert", "helpers"):
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.returns = None
        for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
            arg.annotation = None
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        node.body = [stmt for stmt in body if not isinstance(stmt, ast.Import | ast.ImportFrom)]
        return node


def _normalised(source: str, name: str) -> str:
    tree = ast.parse(source)
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name)
    return ast.dump(_Normalise().visit(function))


@pytest.mark.parametrize("name", TAUGHT)
def test_helpers_hold_the_notebooks_code(name: str) -> None:
    cell = next(_cells()[cell_id] for cell_id, names in DEFINITION_CELLS.items() if name in names)
    helper = getattr(bert, name)
    assert inspect.getdoc(helper).startswith("Taught in notebook 03, section 6.")
    assert _normalised(inspect.getsource(helper), name) == _normalised(cell, name), \
        f"notebook 03's {name} and helpers.bert.{name} differ: copy the notebook's version into helpers/bert.py"


@pytest.mark.parametrize("bf16", [False, True])
def test_notebook_and_helpers_give_the_same_results(notebook: dict, tiny_checkpoint: Path, bf16: bool) -> None:
    rng = np.random.default_rng(0)
    ids = [[101, *rng.integers(1, 100, size=rng.integers(1, 12)).tolist(), 102] for _ in range(10)]
    labels = np.array([0, 1] * 5)
    config = {"lr": 1e-3, "head_lr": 1e-2, "batch_size": 4, "pad_multiple": 8}
    runs = []
    for new_classifier, fine_tune, predict in ((notebook["new_classifier"], notebook["fine_tune"], notebook["predict"]),
                                               (bert.new_classifier, bert.fine_tune, bert.predict)):
        model = new_classifier(tiny_checkpoint, 3, "cpu")
        assert not model.get_input_embeddings().weight.requires_grad
        losses, history = fine_tune(model, ids, labels, 2, 3, config, bf16=bf16, val=(ids[:4], labels[:4]), desc="test")
        classes, probs = predict(model, ids, config, bf16=bf16, batch_size=3)
        runs.append((losses, history, classes, probs))
    (losses, history, classes, probs), (h_losses, h_history, h_classes, h_probs) = runs
    assert len(losses) == 2 * 3 and len(history["loss"]) == len(history["val_loss"]) == 2
    assert np.allclose(losses, h_losses) and history.keys() == h_history.keys()
    assert all(np.allclose(history[k], h_history[k]) for k in history)
    assert np.array_equal(classes, h_classes) and np.allclose(probs, h_probs)
    assert classes.shape == probs.shape == (10,) and np.all((probs >= 0) & (probs <= 1))
