"""Shared checks of what a learner passes to helpers: each names the argument, what came and what to pass."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: its type, and its shape or a clipped repr."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}{'...' if len(value) > 40 else ''}"
    if isinstance(value, list | tuple) and len(value) > 3:
        return f"a {type(value).__name__} of {len(value):,} items starting {value[:3]!r}"[:120]
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an int or a NumPy integer (a bool is not)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def integer(value: Any, name: str, minimum: int | None = None, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as an int between ``minimum`` and ``maximum``; a bool, a float or a string is refused."""
    if not is_integer(value):
        raise TypeError(f"{name} must be a whole number (an int), got {describe(value)}. {hint}".strip())
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        span = (f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}") \
            if minimum is not None else f"at most {maximum}"
        raise ValueError(f"{name} must be {span}, got {value}. {hint}".strip())
    return int(value)


def number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None, hint: str = "") -> float:
    """``value`` as a finite float between ``minimum`` and ``maximum`` (a NumPy scalar is fine; a bool or a str is not)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if not _is_real(value):
        raise TypeError(f"{name} must be a number, got {describe(value)}. {hint}".strip())
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}. {hint}".strip())
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        span = (f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}") \
            if minimum is not None else f"at most {maximum:g}"
        raise ValueError(f"{name} must be {span}, got {value:g}. {hint}".strip())
    return value


def not_a_string(value: Any, name: str, what: str) -> None:
    """Refuse a single str/bytes where a collection of ``what`` belongs (it would be read character by character)."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a list of {what}, got a single string ({describe(value)}); "
                        f"for one item pass [{name}].")


def texts(value: Any, name: str = "texts", allow_empty: bool = True) -> list[str]:
    """``value`` as a list of strings: a single string, a non-string item or (unless allowed) no text is refused."""
    not_a_string(value, name, "texts (one string per review)")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"{name} must be a flat list of texts, got {describe(value)}")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list of texts (one string per review), got {describe(value)}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] is {describe(item)}; every item of {name} must be a str (one review's text)")
    if not items and not allow_empty:
        raise ValueError(f"{name} must be a non-empty list of texts, got an empty one; pass at least one text")
    return items


def words(value: Any, name: str = "words") -> list[str]:
    """``value`` as a list of strings (labels, tokens, method names): a single string is refused."""
    not_a_string(value, name, "strings")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list of strings, got {describe(value)}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] is {describe(item)}; every item of {name} must be a str")
    return items


def array(value: Any, name: str, ndim: int = 1, integers: bool = False, minimum: float | None = None,
          maximum: float | None = None, column_ok: bool = True, finite: bool = True) -> np.ndarray:
    """``value`` as a numeric array (finite unless told) of ``ndim`` dimensions, an (n, 1) column read as (n,)."""
    not_a_string(value, name, "numbers")
    arr = asarray(value, name)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        if arr.size == 0 and arr.dtype.kind != "O":
            arr = arr.astype(np.int64 if integers else np.float64)
        else:
            raise TypeError(f"{name} must hold numbers, got {describe(value)}")
    if column_ok and ndim == 1 and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # Keras' (n, 1) predictions mean one value per row
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array{' of shape (n,)' if ndim == 1 else ''}, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if finite and not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or infinite values; pass finite numbers")
        if integers:
            if not np.all(arr == np.round(arr)):
                raise TypeError(f"{name} must hold whole numbers (ids, counts or class labels), got fractions such as "
                                f"{arr[arr != np.round(arr)][0]:g}")
            if arr.size and np.abs(arr).max() >= 2**53:  # beyond exact integers in a float: no id or count is that big
                raise ValueError(f"{name} holds {np.abs(arr).max():g}, far too large for an id, count or label")
            arr = arr.astype(np.int64)
    if arr.size and minimum is not None and np.nanmin(arr) < minimum:
        raise ValueError(f"{name} must be at least {minimum:g} everywhere, got {np.nanmin(arr):g}")
    if arr.size and maximum is not None and np.nanmax(arr) > maximum:
        raise ValueError(f"{name} must be at most {maximum:g} everywhere, got {np.nanmax(arr):g}")
    return arr


def asarray(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)``; ragged nested lists get a ``ValueError`` naming ``name``."""
    try:
        return np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name} must be an array of numbers, got ragged nested lists of unequal lengths") from err


def class_labels(value: Any, name: str, n_classes: int = 2) -> np.ndarray:
    """``value`` as a 1-D int array of classes 0..n_classes-1; booleans and a Keras (n, 1) column are accepted."""
    arr = array(value, name)
    if arr.dtype.kind == "f" and arr.size and not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} holds fractions such as {arr[arr != np.round(arr)][0]:g}: these look like probabilities; "
                         f"pass class labels, e.g. (probs >= 0.5).astype(int)")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        hint = " (for labels -1/+1 pass (y > 0).astype(int))" if arr.min() == -1 else ""
        raise ValueError(f"{name} must hold class numbers 0 to {n_classes - 1}, got values from {arr.min():g} to "
                         f"{arr.max():g}{hint}")
    return arr.astype(np.int64)


def probabilities(value: Any, name: str) -> np.ndarray:
    """``value`` as a 1-D float array of probabilities in [0, 1]; a Keras (n, 1) column is accepted."""
    arr = array(value, name).astype(np.float64)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must be probabilities between 0 and 1, got values from {arr.min():g} to {arr.max():g} "
                         "(logits? pass a sigmoid or softmax of them)")
    return arr


def same_length(**named: Any) -> int:
    """The common length of the named collections; a ``ValueError`` naming both when two differ."""
    lengths = {name: len(value) for name, value in named.items()}
    (first, n), *rest = lengths.items()
    for name, m in rest:
        if m != n:
            raise ValueError(f"{first} has {n:,} items but {name} has {m:,}; pass one per review (the same length)")
    return n


def id_sequences(value: Any, name: str, allow_empty: bool = True, minimum: int = 0) -> list[np.ndarray]:
    """``value`` as a list of 1-D int arrays (one per review); a str, floats or a flat list of ids are refused."""
    not_a_string(value, name, "token-id sequences (one per review)")
    if isinstance(value, np.ndarray) and value.dtype != object and value.ndim == 1:
        raise ValueError(f"{name} must be a list of sequences, got one flat {describe(value)}; for one review "
                         f"pass [{name}]")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list of token-id sequences, got {describe(value)}")
    out = []
    for i, seq in enumerate(value):
        if _is_real(seq):
            raise ValueError(f"{name} must be a list of sequences, got a flat list of numbers; for one review pass [{name}]")
        not_a_string(seq, f"{name}[{i}]", "token ids")
        arr = asarray(seq, f"{name}[{i}]") if isinstance(seq, np.ndarray | list | tuple) else None
        if arr is None or arr.ndim != 1 or (arr.dtype.kind not in "iu" and arr.size):
            raise TypeError(f"{name}[{i}] must be a 1-D sequence of token ids (ints), got {describe(seq)}")
        if arr.size and arr.min() < minimum:
            raise ValueError(f"{name}[{i}] holds id {arr.min()}, below the smallest id {minimum}")
        out.append(arr if arr.size else arr.astype(np.int64))
    if not out and not allow_empty:
        raise ValueError(f"{name} must be a non-empty list of sequences, got an empty one; pass at least one")
    return out


def token_ids(value: Any, name: str, vocab_size: int, flat: bool = False) -> np.ndarray:
    """``value`` as an int64 array of ids in ``[0, vocab_size)``, of any shape (flattened when ``flat``)."""
    not_a_string(value, name, "token ids")
    arr = asarray(value, name)
    if arr.dtype.kind not in "iuf" or arr.dtype == object:
        raise TypeError(f"{name} must be token ids (ints), got {describe(value)}")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
        raise TypeError(f"{name} must be token ids (whole numbers), got fractions or NaN (log-probabilities?)")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):  # checked before the cast, which could wrap around
        raise ValueError(f"{name} must be ids from 0 to vocab_size - 1 = {vocab_size - 1}, got values from {arr.min():g} "
                         f"to {arr.max():g}; pass the tokenizer's vocabulary size as vocab_size")
    return arr.astype(np.int64).ravel() if flat else arr.astype(np.int64)


def stream(tokens: Any, conds: Any) -> tuple[np.ndarray, np.ndarray]:
    """A token stream and its condition indices (``token_stream``'s output) as 1-D int arrays of the same length."""
    tokens = array(tokens, "tokens", integers=True, column_ok=False)  # no min/max scan: this runs once per training step
    conds = array(conds, "conds", integers=True, column_ok=False)
    same_length(tokens=tokens, conds=conds)
    return tokens, conds


def keyed_vectors(wv: Any, name: str = "wv") -> Any:
    """``wv`` if it looks like gensim KeyedVectors; a whole model gets a hint to pass ``model.wv``."""
    if all(hasattr(wv, attr) for attr in ("key_to_index", "vectors", "vector_size")):
        return wv
    if hasattr(wv, "wv"):
        raise TypeError(f"{name} must be gensim KeyedVectors, got a {type(wv).__name__} model; pass its vectors: model.wv")
    raise TypeError(f"{name} must be gensim KeyedVectors (e.g. model.wv or load_or_train_vectors()), got {describe(wv)}")


def plain_name(value: Any, name: str, example: str) -> str:
    """``value`` if it is a plain file or folder name (no path separators, not hidden), e.g. ``example``."""
    if not isinstance(value, str) or not value or any(ch in value for ch in "/\\:\0") or value.startswith(".") \
            or value != value.strip():
        raise ValueError(f"{name} must be a plain folder name or file name such as {example!r} (no folders, no leading dot), "
                         f"got {describe(value)}")
    return value


def path(value: Any, name: str = "path") -> Path:
    """``value`` as a ``Path``; only a str or an ``os.PathLike`` is a path."""
    if not isinstance(value, str | os.PathLike) or not str(os.fspath(value)).strip():
        raise TypeError(f"{name} must be a file path (a str or pathlib.Path), got {describe(value)}")
    return Path(value)


def one_of(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if isinstance(value, bool) or not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {describe(value)}")
    return value
