"""Notebook 03's frozen pass and top-layer fine-tuning (sections 5 and 6) and its whole-model ``predict`` (section 7),
and their copies in helpers.top_layers and helpers.bert: the same code, the same results. Notebook 03b's epoch rule
and helpers.top_layers.epochs_for: the same code."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import bert, top_layers

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "03_bert_classification.ipynb"
NOTEBOOK_03B = NOTEBOOKS / "03b_label_budget.ipynb"
IMPORTS_CELL = "0b85568e"
# cell id -> (the names it defines, the helper module that holds them, the section of notebook 03 that teaches them)
DEFINITION_CELLS = {"a33fdfda": (("frozen_pass",), top_layers, 5), "7b606aa6": (("pad_states",), top_layers, 6),
                    "c03e6a01": (("TopLayers",), top_layers, 6), "40df83ca": (("predict_top",), top_layers, 6),
                    "f0b3ad3b": (("train_top",), top_layers, 6), "40df83cb": (("predict",), bert, 7)}
TAUGHT = [name for names, _, _ in DEFINITION_CELLS.values() for name in names]
EPOCHS_CELL_03B = "3b000008"  # notebook 03b's epoch rule: def epochs_for, then code that uses it


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # conftest.py: tiny models run on one thread


def _cells(notebook: Path = NOTEBOOK) -> dict[str, str]:
    return {c["id"]: "".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]}


def _cell_of(name: str) -> tuple[str, object, int]:
    """(cell id, helper module, section) of a name notebook 03 teaches."""
    return next((cell_id, module, section) for cell_id, (names, module, section) in DEFINITION_CELLS.items()
                if name in names)


@pytest.fixture(scope="module")
def notebook() -> dict:
    """The namespace after the notebook's imports cell and its definition cells (no training run)."""
    cells = _cells()
    namespace: dict = {"__name__": "notebook03"}
    for cell_id in (IMPORTS_CELL, *DEFINITION_CELLS):
        exec(compile(cells[cell_id], f"{NOTEBOOK.name}, cell {cell_id}", "exec"), namespace)  # noqa: S102
    return namespace


def test_definition_cells_hold_only_definitions() -> None:
    cells = _cells()
    for cell_id, (names, _, _) in DEFINITION_CELLS.items():
        assert cell_id in cells, f"notebook 03 has no cell {cell_id}: update DEFINITION_CELLS"
        tree = ast.parse(cells[cell_id])
        assert [node.name for node in tree.body] == list(names), f"cell {cell_id} runs more than definitions"
        assert all(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in tree.body), cell_id


class _Normalise(ast.NodeTransformer):
    """Drops what may differ between the notebook's copy and the helper's: docstrings (of functions, classes and
    methods), imports, type hints, and the ``bert.`` / ``helpers.`` prefixes the notebook needs to reach the functions
    the helper modules import themselves."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id in ("bert", "helpers"):
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return node

    @staticmethod
    def _body(body: list[ast.stmt]) -> list[ast.stmt]:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        return [stmt for stmt in body if not isinstance(stmt, ast.Import | ast.ImportFrom)]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.returns = None
        for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
            arg.annotation = None
        for arg in (node.args.vararg, node.args.kwarg):
            if arg is not None:
                arg.annotation = None
        node.body = self._body(node.body)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)  # its methods, through visit_FunctionDef
        node.body = self._body(node.body)
        return node


def _definition(source: str, name: str) -> ast.FunctionDef | ast.ClassDef:
    """The top-level def or class ``name`` of ``source`` (a cell may run other statements around it)."""
    tree = ast.parse(source)
    return next(node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name)


def _normalised(source: str, name: str) -> str:
    return ast.dump(_Normalise().visit(_definition(source, name)))


def _methods(source: str, name: str) -> dict[str, str]:
    """A class's methods, normalised, by name."""
    return {node.name: ast.dump(_Normalise().visit(node)) for node in _definition(source, name).body
            if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("name", TAUGHT)
def test_helpers_hold_the_notebooks_code(name: str) -> None:
    cell_id, module, section = _cell_of(name)
    cell = _cells()[cell_id]
    helper = getattr(module, name)
    where = f"{module.__name__}.{name}"
    assert inspect.getdoc(helper).startswith(f"Taught in notebook 03, section {section}."), where
    source = inspect.getsource(helper)
    if isinstance(_definition(cell, name), ast.ClassDef):  # name the method that differs
        ours, theirs = _methods(cell, name), _methods(source, name)
        assert ours.keys() == theirs.keys(), f"notebook 03's {name} and {where} have different methods"
        for method in ours:
            assert ours[method] == theirs[method], \
                f"notebook 03's {name}.{method} and {where}.{method} differ: copy the notebook's version into the helper"
    assert _normalised(source, name) == _normalised(cell, name), \
        f"notebook 03's {name} and {where} differ: copy the notebook's version (cell {cell_id}) into the helper"


def test_the_fine_tuning_recipe_of_every_layer_is_not_taught_any_more() -> None:
    """helpers.bert keeps the full fine-tuning recipe for the scripts; notebook 03 no longer defines it."""
    code = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"]
    defined = {node.name for source in code for node in ast.walk(_safe_parse(source))
               if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    for name in ("new_classifier", "head_parameters", "fine_tune"):
        assert name not in defined, f"notebook 03 defines {name} again: check it against helpers.bert.{name}"
        assert not inspect.getdoc(getattr(bert, name)).startswith("Taught in"), name


def _safe_parse(source: str) -> ast.Module:
    """A cell's syntax tree; IPython-only lines (``%pip``) become ``pass`` first."""
    lines = source.splitlines()
    return ast.parse("\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                               else line for line in lines))


def test_notebook_03b_holds_the_helpers_epoch_rule() -> None:
    cells = _cells(NOTEBOOK_03B)
    assert EPOCHS_CELL_03B in cells, f"notebook 03b has no cell {EPOCHS_CELL_03B}: update EPOCHS_CELL_03B"
    assert inspect.getdoc(top_layers.epochs_for).startswith("Taught in notebook 03b.")
    assert _normalised(inspect.getsource(top_layers.epochs_for), "epochs_for") == \
        _normalised(cells[EPOCHS_CELL_03B], "epochs_for"), \
        f"notebook 03b's epochs_for (cell {EPOCHS_CELL_03B}) and helpers.top_layers.epochs_for differ"


def test_normalisation_sees_a_changed_method() -> None:
    """The class comparison is not blind: a changed line in a method, or a method more, makes a difference."""
    cell = _cells()["c03e6a01"]
    changed = cell.replace("torch.finfo(hidden.dtype).min", "-1e4")
    assert changed != cell and _normalised(changed, "TopLayers") != _normalised(cell, "TopLayers")
    extra = cell + "\n    def extra(self):\n        return 1\n"
    assert _normalised(extra, "TopLayers") != _normalised(cell, "TopLayers")
    documented = cell.replace('"""Two logits per review from its cached states."""', '"""Other words."""')
    assert documented != cell and _normalised(documented, "TopLayers") == _normalised(cell, "TopLayers")


@pytest.mark.parametrize("bf16", [False, True])
def test_notebook_and_helpers_give_the_same_results(notebook: dict, tiny_bert: Path, bf16: bool) -> None:
    """On a tiny 3-layer BERT: the frozen pass (features and cache), one epoch of train_top on the cache of the top 2
    layers (per-step losses and history), predict_top's probabilities, and predict on a whole model."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    rng = np.random.default_rng(0)
    ids = [[101, *rng.integers(1, 100, size=rng.integers(1, 12)).tolist(), 102] for _ in range(10)]
    labels = np.array([0, 1] * 5)
    config = {"lr": 1e-3, "head_lr": 1e-2, "batch_size": 4, "pad_multiple": 8}
    encoder = AutoModel.from_pretrained(tiny_bert).eval()
    cut = encoder.config.num_hidden_layers - 2
    whole = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    runs = []
    for ns in (notebook, vars(top_layers)):
        features, states = ns["frozen_pass"](encoder, ids, cut, config, bf16=bf16, batch_size=3)
        top = ns["TopLayers"](encoder, 2, 3)  # reseeds: both runs draw the same numbers
        losses, history = ns["train_top"](top, states, labels, 1, 3, config, bf16=bf16, val=(states[:4], labels[:4]),
                                          desc="test")
        classes, probs = ns["predict_top"](top, states, config, bf16=bf16, batch_size=3)
        runs.append((features, states, losses, history, classes, probs))
    (features, states, losses, history, classes, probs), (h_features, h_states, *h_rest) = runs
    h_losses, h_history, h_classes, h_probs = h_rest
    assert features.shape == (10, 32) and np.array_equal(features, h_features)
    assert len(states) == len(h_states) == 10
    assert all(torch.equal(a, b) for a, b in zip(states, h_states, strict=True))
    assert len(losses) == 3 and len(history["loss"]) == len(history["val_loss"]) == 1
    assert np.allclose(losses, h_losses) and history.keys() == h_history.keys()
    assert all(np.allclose(history[k], h_history[k]) for k in history)
    assert np.array_equal(classes, h_classes) and np.allclose(probs, h_probs)
    assert classes.shape == probs.shape == (10,) and np.all((probs >= 0) & (probs <= 1))
    (classes, probs), (h_classes, h_probs) = (predict(whole, ids, config, bf16=bf16, batch_size=3)
                                              for predict in (notebook["predict"], bert.predict))
    assert np.array_equal(classes, h_classes) and np.array_equal(probs, h_probs) and probs.shape == (10,)
