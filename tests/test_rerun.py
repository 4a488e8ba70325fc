"""Every code cell can be run again: right after its first run, and after a later cell has run.

Learners run a cell, then run it again, or go back a few cells. This check reads the code cells of every notebook
(parsed with ``ast``, never executed: it adds well under a second to the test command, not a second notebook run) and
flags what makes such a run fail or change what the notebook teaches. Each rule, and its fix:

- ``del-from-another-cell``: a top-level ``del x`` (or ``del x[k]``) of a name the cell did not create first. A second
  run raises NameError (KeyError), and the cells that made ``x`` fail when run again. Release memory with ``x = None``
  (an idle name, no meaning of its own), or ``del`` only what the same cell made.
- ``accumulates-across-runs``: ``x += ...``, ``x.append/extend/insert/pop/remove(...)`` or an in-place tensor update
  (``add_``, ``normal_``...) on a name the cell did not (re)create first: each run adds to what the last one left.
  Create ``x`` in the cell (``x = []``, ``x = {}``) before adding to it.
- ``rebinds-through-itself``: ``x = f(x)``, or ``x[k] = f(x[k])``, on another cell's ``x``: a second run applies ``f``
  twice. Give the result its own name. (Setting ``x[k] = value`` from other values is idempotent and allowed.)
- ``def-and-variable``: a name is a function, class or import in one cell and a variable or loop target in another
  (``def budget`` and ``for budget in ...``): whichever cell ran last leaves the other cells a name of the wrong kind.
- ``one-name-two-meanings``: a name bound by two cells and read by a third (``probe``: a batch in one cell, a
  classifier in another): what the third cell gets depends on which of the two ran last. Give each meaning its own
  name. ``x = None``, which releases memory, is no meaning of its own.
- ``setting-switched-later``: a cell relies on a setting that a later cell switches (``encoder.set_attn_implementation``,
  the Keras dtype policy): run again after that cell, it runs under the other setting. Set what the cell relies on in
  the cell itself.
- ``trains-another-cells-model``: a cell trains (``fit``, ``backward``, a training function of the notebook) a model
  that another cell created: a second run trains it further. Create (or restore) the model in the training cell.
- ``draws-from-another-cells-generator``: a cell draws from a random generator (or iterator) that another cell
  created: a second run draws other numbers. Create and seed the generator in the cell that draws from it.

Lines starting with ``%`` or ``!`` (the Colab ``%pip`` cell) are skipped. A hit that is no fault gets an ``ALLOWED``
entry with its reason; a fault found in a notebook but not fixed yet gets a ``KNOWN_FAULTS`` entry with its fix (the
notebook's test is then an expected failure, and turns red once the fault is gone so that the entry goes too).
"""

from __future__ import annotations

import ast
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

FIXES = {
    "del-from-another-cell": "a second run raises NameError: release memory with `x = None`, or del only what this cell made",
    "accumulates-across-runs": "each run adds to the last one's result: create the name in this cell before adding to it",
    "rebinds-through-itself": "a second run applies the change twice: give the result its own name",
    "def-and-variable": "rename one of the two: whichever cell ran last leaves the others a name of the wrong kind",
    "one-name-two-meanings": "give each meaning its own name: the reading cell gets whichever binding ran last",
    "setting-switched-later": "set what this cell relies on in the cell itself, as the later cell does",
    "trains-another-cells-model": "a second run trains it further: create (or restore) the model in this cell",
    "draws-from-another-cells-generator": "a second run draws other numbers: create and seed the generator in this cell",
}

# Hits that are no fault: (notebook stem, cell id, rule, name) -> why.
ALLOWED: dict[tuple[str, str, str, str], str] = {
    ("03_bert_classification", "1f27f565", "one-name-two-meanings", "model"):
        "the cell reloads the same fine-tuned classifier it saved, and asserts identical predictions",
    **{("03_bert_classification", "c03e5a03", "one-name-two-meanings", name):
       "the cell saves the frozen pass and rebinds the name to the same states read back from disk (to free the memory); "
       "after the pass cell runs again, readers get the in-memory states: the same numbers"
       for name in ("train_states", "val_states", "subset_states")},
}

# Faults found in notebooks that are not fixed yet: (notebook stem, cell id, rule, name) -> the fix.
KNOWN_FAULTS: dict[tuple[str, str, str, str], str] = {}

# Method calls that change their object each time they run (list and dict growth, in-place tensor updates, shuffling).
COMPOUNDING = {"append", "extend", "insert", "pop", "popitem", "remove", "reverse", "shuffle", "add_", "sub_", "mul_",
               "div_", "pow_", "addcmul_", "addcdiv_", "normal_", "uniform_", "bernoulli_", "random_", "exponential_"}
# Calls that train what they are called on (a method; a second `loss.backward()` fails) or their first argument (a
# notebook function that updates weights: fits, or steps an optimizer); and the series' helpers that train.
TRAINING_METHODS = {"fit", "partial_fit", "train_on_batch", "backward"}
WEIGHT_UPDATES = {"fit", "partial_fit", "train_on_batch", "step", "apply_gradients"}  # gradients alone change nothing
TRAINING_FUNCTIONS = {"train_gpt", "fine_tune", "train_step", "train_top"}  # helpers.gpt, helpers.bert, helpers.top_layers
RESTORING = {"load_state_dict", "set_weights", "load_weights"}  # after these, the cell trains what it restored
# `x = x.to(device)`, `x = sorted(x)`: rebinding a name through these gives the same result however often it runs.
IDEMPOTENT_METHODS = {"to", "cpu", "cuda", "eval", "train", "float", "half", "double", "detach", "contiguous", "strip",
                      "lower", "upper", "ravel", "flatten"}
IDEMPOTENT_FUNCTIONS = {"sorted", "list", "tuple", "set", "frozenset", "dict", "str", "int", "float", "asarray", "unique"}
# Calls whose result is a random generator or an iterator, which a second draw advances.
GENERATORS = {"default_rng", "RandomState", "Generator", "Random", "iter"}
SEEDING = {"manual_seed", "from_seed"}
# The Keras dtype policy: what switches it, and the calls that build layers under it.
KERAS_POLICY_SETTERS = {"set_global_policy", "set_dtype_policy", "keras_faster_precision", "clear_session"}
KERAS_BUILDERS = ("keras.layers.", "keras.Sequential", "keras.Model", "keras.models.")
DTYPE_FREE = {"TextVectorization", "StringLookup", "IntegerLookup", "Hashing", "Input", "InputLayer"}  # no float math
METADATA = {"summary", "count_params", "compute_mask", "build", "get_config"}  # calls that read no computed numbers


# --- reading the cells ----------------------------------------------------------------------------------------------

def python_source(source: str) -> str | None:
    """The cell's Python: ``%`` and ``!`` lines become ``pass`` (keeping the indentation); None for a ``%%`` cell."""
    if source.lstrip().startswith("%%"):
        return None
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(cell id, source) of each code cell of a notebook, in order."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(cell["id"], "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
            for cell in cells if cell["cell_type"] == "code"]


# --- what one cell does ---------------------------------------------------------------------------------------------

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _tail(func: ast.expr) -> str | None:
    """The called name: ``fit`` for ``model.fit(...)``, ``train_gpt`` for ``train_gpt(...)``."""
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _dotted(node: ast.expr) -> str | None:
    """``keras.layers.LSTM`` for that attribute chain of names; None when the chain holds anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def _root(node: ast.expr) -> str | None:
    """The variable an attribute or item chain starts from: ``history`` for ``history["loss"].append``."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(target: ast.expr) -> list[ast.Name]:
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _is_none(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Constant) and value.value is None


def _idempotent_of(value: ast.expr, name: str) -> bool:
    """True when ``value`` is ``name`` through idempotent steps only: ``x.to(device).eval()``, ``sorted(x)``."""
    if isinstance(value, ast.Name):
        return value.id == name
    if not isinstance(value, ast.Call):
        return False
    if isinstance(value.func, ast.Attribute) and value.func.attr in IDEMPOTENT_METHODS:
        return _idempotent_of(value.func.value, name)
    return _tail(value.func) in IDEMPOTENT_FUNCTIONS and len(value.args) == 1 and _idempotent_of(value.args[0], name)


def _makes_generator(value: ast.expr | None) -> bool:
    """True for ``np.random.default_rng(...)``, ``torch.Generator(...).manual_seed(...)``, ``iter(...)``."""
    if not isinstance(value, ast.Call):
        return False
    tail = _tail(value.func)
    if tail in GENERATORS:
        return True
    return tail in SEEDING and isinstance(value.func, ast.Attribute) and (
        _makes_generator(value.func.value) or _tail(value.func.value) == "Generator")


def _scope_walk(nodes: list[ast.AST]):
    """The nodes of one scope: nested functions, lambdas, classes and comprehensions are yielded, not entered (but the
    parts of them that run in this scope, such as default values and decorators, are)."""
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            outer = [*node.args.defaults, *[d for d in node.args.kw_defaults if d]]
            outer += getattr(node, "decorator_list", [])
        elif isinstance(node, ast.ClassDef):
            outer = [*node.bases, *[k.value for k in node.keywords], *node.decorator_list]
        elif isinstance(node, COMPREHENSIONS):
            outer = [node.generators[0].iter]
        else:
            outer = list(ast.iter_child_nodes(node))
        stack.extend(reversed(outer))


def _scope_parts(node: ast.AST) -> tuple[set[str], list[ast.AST]]:
    """The names a function, lambda, class or comprehension binds for itself (its parameters, its loop targets), and
    the nodes of its body."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
        return params, list(node.body) if isinstance(node.body, list) else [node.body]
    if isinstance(node, ast.ClassDef):
        return set(), list(node.body)
    targets = {name.id for gen in node.generators for name in _target_names(gen.target)}
    body = [gen.target for gen in node.generators] + [gen.iter for gen in node.generators[1:]]
    body += [cond for gen in node.generators for cond in gen.ifs]
    body += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    return targets, body


def scope_reads(node: ast.AST) -> set[str]:
    """The global names a function, lambda, class body or comprehension reads when it runs."""
    local, _ = _scope_parts(node)
    reads: set[str] = set()
    declared_global: set[str] = set()
    for child in _scope_walk(_scope_parts(node)[1]):
        if child is node:
            continue
        if isinstance(child, (*SCOPES, *COMPREHENSIONS)):
            reads |= scope_reads(child)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                local.add(child.name)
        elif isinstance(child, ast.Name):
            (reads if isinstance(child.ctx, ast.Load) else local).add(child.id)
        elif isinstance(child, ast.Global):
            declared_global.update(child.names)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            local.update((a.asname or a.name).split(".")[0] for a in child.names)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            local.add(child.name)
    return reads - (local - declared_global)


def scope_calls(node: ast.AST) -> list[ast.Call]:
    """Every call inside a function (nested functions included): what running it may do."""
    body = _scope_parts(node)[1]
    return [child for part in body for child in ast.walk(part) if isinstance(child, ast.Call)]


@dataclass
class Binding:
    name: str
    line: int
    kind: str  # def, class, import, assign, loop, with, except
    value: ast.expr | None = None  # the assigned value, when one name gets one value

    @property
    def idle(self) -> bool:
        """``x = None``: a released name, not a meaning of its own."""
        return _is_none(self.value)


@dataclass
class Use:
    name: str
    line: int
    local: bool  # the cell bound the name earlier (in the order the cell runs)
    deferred: bool = False  # read inside a function or class body, when it runs
    what: str = ""  # the statement, for the message


@dataclass
class CallFact:
    line: int
    tail: str | None
    dotted: str | None
    root: str | None  # the variable a method is called on
    root_local: bool
    first_arg: str | None  # the first positional argument, when it is a name
    first_arg_local: bool
    chained: str | None  # the method called on the result: `summary` in `build().summary()`


@dataclass
class CellFacts:
    index: int
    id: str
    binds: list[Binding] = field(default_factory=list)
    reads: list[Use] = field(default_factory=list)
    dels: list[Use] = field(default_factory=list)
    accumulations: list[Use] = field(default_factory=list)
    self_rebinds: list[Use] = field(default_factory=list)
    calls: list[CallFact] = field(default_factory=list)
    functions: dict[str, ast.AST] = field(default_factory=dict)

    def binds_name(self, name: str) -> bool:
        return any(b.name == name and not b.idle for b in self.binds)

    def reads_from_outside(self, name: str) -> bool:
        """The cell reads ``name`` before binding it, or in a function it defines without binding it at all."""
        return any(u.name == name and not u.local and (not u.deferred or not self.binds_name(name)) for u in self.reads)


class _CellWalker(ast.NodeVisitor):
    """Walks a cell's top-level code in the order it runs, noting what it binds, reads, deletes, grows and calls."""

    def __init__(self, facts: CellFacts, tree: ast.Module) -> None:
        self.facts = facts
        self.bound: set[str] = set()
        self.imported: set[str] = set()  # modules persist across runs: what a cell changes in them stays changed
        self.parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def _bind(self, name: str, line: int, kind: str, value: ast.expr | None = None) -> None:
        self.facts.binds.append(Binding(name, line, kind, value))
        self.bound.add(name)

    def _store(self, target: ast.expr, kind: str, value: ast.expr | None, line: int) -> None:
        if isinstance(target, ast.Name):
            self._bind(target.id, line, kind, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store(elt, kind, None, line)
        elif isinstance(target, ast.Starred):
            self._store(target.value, kind, None, line)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            self.visit(target.value)
            if isinstance(target, ast.Subscript):
                self.visit(target.slice)
            root = _root(target)
            changes_itself = value is not None and any(ast.unparse(n) == ast.unparse(target) for n in ast.walk(value))
            if root and root not in self.bound and changes_itself:
                self.facts.self_rebinds.append(Use(root, line, False, what=ast.unparse(target)))

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.facts.reads.append(Use(node.id, node.lineno, node.id in self.bound))

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        reads_itself = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
        for target in node.targets:
            for name in _target_names(target):
                if name.id in reads_itself and name.id not in self.bound and not _idempotent_of(node.value, name.id):
                    self.facts.self_rebinds.append(Use(name.id, node.lineno, False, what=ast.unparse(node)))
            self._store(target, "assign", node.value, node.lineno)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._store(node.target, "assign", node.value, node.lineno)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        root = _root(node.target)
        self.visit(node.target.value if isinstance(node.target, (ast.Attribute, ast.Subscript)) else node.target)
        if isinstance(node.target, ast.Name):
            self.facts.reads.append(Use(node.target.id, node.lineno, node.target.id in self.bound))
        if isinstance(node.target, ast.Subscript):
            self.visit(node.target.slice)
        self.visit(node.value)
        if root and not isinstance(node.op, (ast.BitOr, ast.BitAnd)):  # |= and &= on sets and dicts are idempotent
            self.facts.accumulations.append(Use(root, node.lineno, root in self.bound, what=ast.unparse(node)))
        if isinstance(node.target, ast.Name):
            self._bind(node.target.id, node.lineno, "assign")

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id, node.lineno, "assign", node.value)

    def visit_Delete(self, node: ast.Delete) -> None:
        def delete(target: ast.expr) -> None:
            if isinstance(target, (ast.Tuple, ast.List)):
                for elt in target.elts:
                    delete(elt)
                return
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                self.visit(target.value)
            if root := _root(target):
                self.facts.dels.append(Use(root, node.lineno, root in self.bound, what=ast.unparse(target)))
                if isinstance(target, ast.Name):
                    self.bound.discard(root)

        for target in node.targets:
            delete(target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._store(node.target, "loop", None, node.lineno)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._store(item.optional_vars, "with", None, node.lineno)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name, node.lineno, "except")
        for statement in node.body:
            self.visit(statement)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind((alias.asname or alias.name).split(".")[0], node.lineno, "import")
                self.imported.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    def _deferred_reads(self, node: ast.AST) -> None:
        for name in sorted(scope_reads(node)):
            self.facts.reads.append(Use(name, node.lineno, name in self.bound, deferred=True))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *[d for d in node.args.kw_defaults if d]]:
            self.visit(expr)
        self._bind(node.name, node.lineno, "def")
        self.facts.functions[node.name] = node
        self._deferred_reads(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.bases, *[k.value for k in node.keywords], *node.decorator_list]:
            self.visit(expr)
        self._bind(node.name, node.lineno, "class")
        self._deferred_reads(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *[d for d in node.args.kw_defaults if d]]:
            self.visit(expr)
        self._deferred_reads(node)

    def _visit_comprehension(self, node: ast.AST) -> None:
        for name in sorted(scope_reads(node)):
            self.facts.reads.append(Use(name, node.lineno, name in self.bound))
        targets = _scope_parts(node)[0]
        for child in _scope_walk([node]):
            if isinstance(child, ast.Call):
                self._note_call(child, self.bound | targets)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension

    def _note_call(self, node: ast.Call, bound: set[str]) -> None:
        func = node.func
        root = _root(func.value) if isinstance(func, ast.Attribute) else None
        first = node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
        parent = self.parents.get(node)
        grand = self.parents.get(parent) if parent is not None else None
        chained = parent.attr if isinstance(parent, ast.Attribute) and isinstance(grand, ast.Call) else None
        self.facts.calls.append(CallFact(node.lineno, _tail(func), _dotted(func), root, root in bound, first,
                                         first in bound, chained))
        pop_with_default = _tail(func) == "pop" and len(node.args) + len(node.keywords) == 2  # d.pop(k, None): idempotent
        if isinstance(func, ast.Attribute) and func.attr in COMPOUNDING and root and not pop_with_default:
            local = root in bound and root not in self.imported
            self.facts.accumulations.append(Use(root, node.lineno, local, what=ast.unparse(node)))
        if _tail(func) == "shuffle" and first:  # np.random.shuffle(x), random.shuffle(x): x changes in place
            self.facts.accumulations.append(Use(first, node.lineno, first in bound, what=ast.unparse(node)))

    def visit_Call(self, node: ast.Call) -> None:
        self._note_call(node, self.bound)
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in RESTORING and (root := _root(node.func.value)):
            self.bound.add(root)  # restored weights: from here on the cell works on a state it set itself


def cell_facts(index: int, cell_id: str, source: str) -> CellFacts:
    facts = CellFacts(index, cell_id)
    tree = ast.parse(source)
    walker = _CellWalker(facts, tree)
    for statement in tree.body:
        walker.visit(statement)
    return facts


# --- the rules, across the cells of one notebook --------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Hit:
    notebook: str
    cell_index: int  # the code cell's position among code cells, from 1
    cell: str  # the cell's id
    line: int
    rule: str
    name: str
    detail: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.notebook, self.cell, self.rule, self.name)

    def __str__(self) -> str:
        return (f"{self.notebook}.ipynb, cell {self.cell} (code cell {self.cell_index}), line {self.line} [{self.rule}] "
                f"`{self.name}`: {self.detail}. Fix: {FIXES[self.rule]}.")


def _closure(functions: dict[str, ast.AST], does) -> set[str]:
    """The notebook's functions for which ``does(call)`` holds for a call in their body, directly or through another."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, node in functions.items():
            if name not in found and any(does(call) or _tail(call.func) in found for call in scope_calls(node)):
                found.add(name)
                changed = True
    return found


def check_cells(cells: list[tuple[str, str]], notebook: str = "notebook") -> list[Hit]:
    """The rerun hazards among the code cells ``(id, source)`` of one notebook, in notebook order."""
    facts = [cell_facts(i, cell_id, python) for i, (cell_id, source) in enumerate(cells)
             if (python := python_source(source)) is not None]
    by_index = {cell.index: cell for cell in facts}
    hits: set[Hit] = set()

    def hit(cell: CellFacts, line: int, rule: str, name: str, detail: str) -> None:
        hits.add(Hit(notebook, cell.index + 1, cell.id, line, rule, name, detail))

    binders: dict[str, list[CellFacts]] = defaultdict(list)
    kinds: dict[str, dict[str, list[tuple[CellFacts, Binding]]]] = defaultdict(lambda: defaultdict(list))
    for cell in facts:
        for b in cell.binds:
            if b.idle or b.name == "_" or b.name.startswith("__"):
                continue
            group = {"def": "function or class", "class": "function or class", "import": "import"}.get(b.kind, "variable")
            kinds[b.name][group].append((cell, b))
            if group != "import" and (not binders[b.name] or binders[b.name][-1] is not cell):
                binders[b.name].append(cell)  # imports of one module in several cells are one meaning
    made_by = {name: cells_[0] for name, cells_ in binders.items()}
    variables = set(binders)
    functions = {name: node for cell in facts for name, node in cell.functions.items()}

    def where(cell: CellFacts, name: str) -> str:
        lines = sorted({b.line for b in cell.binds if b.name == name})
        return f"cell {cell.id} (line {', '.join(map(str, lines))})"

    for cell in facts:
        deleted: dict[int, list[Use]] = defaultdict(list)  # one hit per del statement
        for use in cell.dels:
            if not use.local:
                deleted[use.line].append(use)
        for line, uses in deleted.items():
            makers = sorted({made_by[u.name].id for u in uses if u.name in made_by})
            hit(cell, line, "del-from-another-cell", ", ".join(u.name for u in uses),
                f"`del {', '.join(u.what for u in uses)}` deletes what cell {', '.join(makers) or '(none)'} made: running "
                "this cell again raises an error, and so does running the cells that read it")
        for use in cell.accumulations:
            if not use.local:
                hit(cell, use.line, "accumulates-across-runs", use.name,
                    f"`{use.what}` changes `{use.name}`, which this cell did not create first, so every run adds to it")
        for use in cell.self_rebinds:
            hit(cell, use.line, "rebinds-through-itself", use.name,
                f"`{use.what}` computes `{use.name}` from its own value left by an earlier run or cell")

    # one name, one kind and one meaning
    flagged_kind = set()
    for name, groups in kinds.items():
        if len(groups) < 2:
            continue
        first_group = min(groups, key=lambda g: groups[g][0][0].index)
        first_cell, _ = groups[first_group][0]
        for group, places in groups.items():
            for cell, binding in places:
                if group != first_group and cell is not first_cell:
                    flagged_kind.add(name)
                    hit(cell, binding.line, "def-and-variable", name,
                        f"a {group} here, a {first_group} in {where(first_cell, name)}")
    for name, cells_ in binders.items():
        readers = [c for c in facts if c not in cells_ and c.reads_from_outside(name)]
        if len(cells_) < 2 or not readers or name in flagged_kind:
            continue
        for cell in cells_[1:]:
            hit(cell, min(b.line for b in cell.binds if b.name == name), "one-name-two-meanings", name,
                f"bound here and in {where(cells_[0], name)}, and read by cell "
                f"{', '.join(c.id for c in readers)}: running the earlier cell again after this one changes what "
                "those cells get")

    # settings that a later cell switches: an object's set_*(...), and the Keras dtype policy
    setter_cells: dict[str, set[int]] = defaultdict(set)
    for cell in facts:
        for call in cell.calls:
            if call.tail and call.tail.startswith("set_") and call.root in variables:
                setter_cells[f"{call.root}.{call.tail}"].add(cell.index)
    for key, indices in setter_cells.items():
        obj = key.split(".")[0]
        first = made_by[obj].index
        for cell in facts:
            uses = [u for u in cell.reads if u.name == obj and not u.deferred]
            if cell.index <= first or not uses or all(u.local for u in uses) or cell.index in indices:
                continue
            if later := sorted(i for i in indices if i > cell.index):
                hit(cell, uses[0].line, "setting-switched-later", key,
                    f"this cell uses `{obj}` without calling `{key}(...)`, which cell {by_index[later[0]].id} calls: run "
                    "again after that cell, it runs under the other setting")

    policy_setters = _closure(functions, lambda c: _tail(c.func) in KERAS_POLICY_SETTERS)
    layer_builders = _closure(functions, lambda c: (_dotted(c.func) or "").startswith(KERAS_BUILDERS)
                              and _tail(c.func) not in DTYPE_FREE)
    sets_policy = {c.index for c in facts if any(k.tail in KERAS_POLICY_SETTERS | policy_setters for k in c.calls)}
    for cell in facts:
        builds = [k for k in cell.calls if k.chained not in METADATA and (
            k.tail in layer_builders or ((k.dotted or "").startswith(KERAS_BUILDERS) and k.tail not in DTYPE_FREE))]
        later = sorted(i for i in sets_policy if i > cell.index)
        if builds and later and cell.index not in sets_policy:
            hit(cell, builds[0].line, "setting-switched-later", "Keras dtype policy",
                f"this cell builds Keras layers under the global dtype policy, which cell {by_index[later[0]].id} "
                "switches: run again after that cell, it computes in the other precision")

    # training what another cell made
    trainers = _closure(functions, lambda c: _tail(c.func) in WEIGHT_UPDATES) | TRAINING_FUNCTIONS
    for cell in facts:
        for call in cell.calls:
            if call.tail in TRAINING_METHODS and call.root in variables and not call.root_local:
                trained = call.root
            elif call.tail in trainers and call.first_arg in variables and not call.first_arg_local:
                trained = call.first_arg
            else:
                continue
            hit(cell, call.line, "trains-another-cells-model", trained,
                f"`{call.tail}` trains `{trained}`, which {where(made_by[trained], trained)} created")

    # drawing from another cell's generator
    generators = {b.name: cell for cell in facts for b in cell.binds if _makes_generator(b.value)}
    for cell in facts:
        for use in cell.reads:
            if use.name in generators and generators[use.name] is not cell and not use.local and not use.deferred:
                hit(cell, use.line, "draws-from-another-cells-generator", use.name,
                    f"`{use.name}` is a generator that cell {generators[use.name].id} created")
    return sorted(hits)


def check_notebook(path: Path) -> list[Hit]:
    return check_cells(code_cells(path), path.stem)


# --- the tests ------------------------------------------------------------------------------------------------------

def _report(hits: list[Hit]) -> str:
    return "\n".join(map(str, hits))


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_can_run_again(path: Path) -> None:
    hits = check_notebook(path)
    unexpected = [h for h in hits if h.key not in ALLOWED and h.key not in KNOWN_FAULTS]
    assert not unexpected, (
        f"{len(unexpected)} cell(s) of {path.name} cannot safely run again (tests/test_rerun.py explains each rule):\n"
        + _report(unexpected)
        + "\nFix the cell; or, if the hit is no fault, add (notebook, cell id, rule, name) and the reason to ALLOWED.")
    known = [h for h in hits if h.key in KNOWN_FAULTS]
    if known:
        pytest.xfail("known faults, to fix in the notebook:\n" + "\n".join(f"{h} Suggested: {KNOWN_FAULTS[h.key]}"
                                                                          for h in known))


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_allowances_and_known_faults_are_current() -> None:
    found = {h.key for path in NOTEBOOKS for h in check_notebook(path)}
    stale = [key for key in [*ALLOWED, *KNOWN_FAULTS] if key not in found]
    assert not stale, f"these entries of tests/test_rerun.py match no hit any more; remove them: {stale}"


def test_the_check_is_fast() -> None:
    start = time.perf_counter()
    for path in NOTEBOOKS:
        check_notebook(path)
    assert time.perf_counter() - start < 5, "the static check should take about a second at most"


# --- the checker itself, on made-up cells ---------------------------------------------------------------------------

def _rules(*sources: str) -> set[tuple[str, str, str]]:
    """(cell id, rule, name) of each hit among cells c1, c2, ... made of ``sources``."""
    return {(h.cell, h.rule, h.name) for h in check_cells([(f"c{i}", s) for i, s in enumerate(sources, 1)])}


def test_magics_are_skipped() -> None:
    assert python_source('import sys\nif "google.colab" in sys.modules:\n    %pip install x\n!ls') == (
        'import sys\nif "google.colab" in sys.modules:\n    pass\npass')
    assert python_source("%%bash\necho hi") is None
    assert _rules('if True:\n    %pip install -q x==1\nx = 1\n!echo $x') == set()
    assert _rules("e = load()", "%%bash\necho", "e.set_x(1)", "print(e)", "e.set_x(2)") == {
        ("c4", "setting-switched-later", "e.set_x")}  # a %% cell is skipped without shifting the cells after it


def test_del_of_another_cells_name_is_flagged() -> None:
    assert _rules("model = 1", "del model\nmodel = 2") == {("c2", "del-from-another-cell", "model")}
    assert _rules("a, b = 1, 2", "del a, b") == {("c2", "del-from-another-cell", "a, b")}
    assert _rules("rows = [1]", "for name in ['rows']:\n    del rows") == {("c2", "del-from-another-cell", "rows")}
    assert _rules("d = {1: 2}", "del d[1]") == {("c2", "del-from-another-cell", "d")}
    assert _rules("big = list(range(9))\nn = len(big)\ndel big") == set()  # made and released in one cell
    assert _rules("model = 1", "model = None") == set()  # releasing with None runs any number of times
    assert _rules("def f():\n    x = 1\n    del x") == set()  # a function's own names


def test_accumulation_across_runs_is_flagged() -> None:
    assert _rules("total = 0", "total += 1") == {("c2", "accumulates-across-runs", "total")}
    assert _rules("seen = []", "seen.append(1)") == {("c2", "accumulates-across-runs", "seen")}
    assert _rules("h = {'loss': []}", "for x in [1]:\n    h['loss'].extend([x])") == {
        ("c2", "accumulates-across-runs", "h")}
    assert _rules("import torch\nw = torch.zeros(3)", "w.add_(1)") == {("c2", "accumulates-across-runs", "w")}
    # made earlier in the same cell: each run starts afresh
    assert _rules("rows = [1]\nrows += [2]\nhistory = {'loss': []}\nfor i in range(3):\n    history['loss'].append(i)\n"
                  "    total = 0\n    total += i") == set()
    assert _rules("flags = {1}", "flags |= {2}") == set()  # |= on a set is idempotent
    assert _rules("import sys\nsys.path.append('src')") == {("c1", "accumulates-across-runs", "sys")}  # modules persist
    assert _rules("d = {1: 2}", "d.pop(1, None)") == set()  # a pop with a default runs any number of times


def test_rebinding_through_itself_is_flagged_and_idempotent_updates_are_not() -> None:
    assert _rules("x = [1, 2]", "x = x + [3]") == {("c2", "rebinds-through-itself", "x")}
    assert _rules("CONFIG = {'steps': 10}", "CONFIG['steps'] = CONFIG['steps'] // 2") == {
        ("c2", "rebinds-through-itself", "CONFIG")}
    assert _rules("CONFIG = {'steps': 10}", "CONFIG['steps'] = 5\nCONFIG['lr'] = CONFIG['steps'] * 1e-4") == set()
    assert _rules("ids = [3, 1]\nids = sorted(ids)") == set()  # the same cell made it
    assert _rules("gpt = GPT()", "gpt = gpt.to(device).eval()\nwords = sorted(words)") == set()  # idempotent steps


def test_one_name_of_two_kinds_is_flagged() -> None:
    assert _rules("for budget in [1, 2]:\n    print(budget)", "def budget(r):\n    return r") == {
        ("c2", "def-and-variable", "budget")}
    assert _rules("import time", "time = 3") == {("c2", "def-and-variable", "time")}
    assert _rules("def f():\n    return 1", "g = f()") == set()
    assert _rules("import sys", "import sys") == set()


def test_one_name_with_two_meanings_is_flagged_when_a_third_cell_reads_it() -> None:
    batch_then_classifier = ["probe = {'x': 1}", "probe = make_classifier()", "print(probe.coef_)"]
    assert _rules(*batch_then_classifier) == {("c2", "one-name-two-meanings", "probe")}
    in_a_function = ["PRECISION = 'float32'", "def train():\n    return PRECISION", "PRECISION = measure()"]
    assert _rules(*in_a_function) == {("c3", "one-name-two-meanings", "PRECISION")}
    # each cell makes the name before it reads it: no cell depends on another's binding
    assert _rules("start = 1\nprint(start)", "start = 2\nprint(start)", "for start in []:\n    pass") == set()
    assert _rules("model = 1", "model = None", "print(model)") == set()  # None only releases


def test_a_setting_switched_by_a_later_cell_is_flagged() -> None:
    make = "encoder = load(attn_implementation='eager')"
    relies = "out = encoder(x, output_attentions=True)"
    switches = "encoder.set_attn_implementation('sdpa')\nspeed = time_it(encoder)"
    assert _rules(make, relies, switches) == {("c2", "setting-switched-later", "encoder.set_attn_implementation")}
    sets_it_too = "encoder.set_attn_implementation('eager')\n" + relies
    assert _rules(make, sets_it_too, switches) == set()
    assert _rules(make, switches, relies) == set()  # after the switch: the setting it ran under stays in force
    policy = "import keras\nkeras.mixed_precision.set_global_policy('float32')"
    measure = "import keras\nlayer = keras.layers.LSTM(8)\ny = layer(x)"
    switch = "PRECISION = helpers.runtime.keras_faster_precision(build, x, y)"
    assert _rules(policy, measure, switch) == {("c2", "setting-switched-later", "Keras dtype policy")}
    assert _rules(policy, policy + "\n" + measure, switch) == set()
    metadata_only = "import keras\nkeras.layers.Embedding(9, 2, mask_zero=True).compute_mask(ids)\nbuild().summary()"
    assert _rules(policy, "def build():\n    return keras.Sequential([])", metadata_only, switch) == set()


def test_training_another_cells_model_is_flagged() -> None:
    make = "gpt = GPT()"
    train_fn = ("def train(model, steps):\n    opt = Adam(model.parameters())\n    for _ in range(steps):\n"
                "        model(1).backward()\n        opt.step()")
    time_fn = "def time_step(model):\n    model(1).backward()\n    model.zero_grad()"  # gradients only: weights unchanged
    assert _rules(make, time_fn, "time_step(gpt)") == set()
    assert _rules(make, train_fn, "train(gpt, 10)") == {("c3", "trains-another-cells-model", "gpt")}
    assert _rules(make, "gpt.fit(x, y)") == {("c2", "trains-another-cells-model", "gpt")}
    assert _rules(make, "hgpt.train_gpt(gpt, tokens)") == {("c2", "trains-another-cells-model", "gpt")}
    assert _rules(train_fn, "gpt = GPT()\ntrain(gpt, 10)") == set()  # a fresh model every run
    assert _rules(make, train_fn, "gpt.load_state_dict(untrained)\ntrain(gpt, 10)") == set()  # the same start every run
    assert _rules("baseline = make_pipeline()\nbaseline.fit(x, y)") == set()
    assert _rules("clf = LogisticRegression().fit(x, y)") == set()


def test_drawing_from_another_cells_generator_is_flagged() -> None:
    assert _rules("import numpy as np\nrng = np.random.default_rng(0)", "x = rng.normal()") == {
        ("c2", "draws-from-another-cells-generator", "rng")}
    assert _rules("g = torch.Generator(device=d).manual_seed(1)", "out = sample(model, generator=g)") == {
        ("c2", "draws-from-another-cells-generator", "g")}
    assert _rules("g = torch.Generator(device=d).manual_seed(1)\nout = sample(model, generator=g)") == set()
    assert _rules("import numpy as np\nheld_out = np.random.default_rng(0).permutation(9)", "print(held_out)") == set()
