"""Notebook 03, sections 5 and 6: one frozen pass (features and cached states), and fine-tuning MiniLM's top layers on
the cache. The functions are the notebook's own code (tests/test_bert_notebook.py keeps them the same); notebook 03b
and the scripts import them from here."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .bert import length_batches, pad_batch
from .runtime import seed_everything


def frozen_pass(model: torch.nn.Module, ids: Sequence[Sequence[int]], layer: int, config: dict, bf16: bool = False,
                batch_size: int = 16) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Taught in notebook 03, section 5.

    One pass of the frozen encoder: mean-pooled last hidden states (one row per review) and each review's
    layer-``layer`` states (float16, the cache the top layers train on).
    """
    device = model.device  # where the model is
    features = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    starts = np.cumsum([0] + [len(s) for s in ids])  # review i's tokens are rows starts[i]:starts[i + 1] of the cache
    cache = torch.empty(int(starts[-1]), model.config.hidden_size, dtype=torch.float16)  # one block: no fragments
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in tqdm(length_batches([len(s) for s in ids], batch_size), desc="frozen pass", leave=False):
            batch = pad_batch([ids[i] for i in b], multiple_of=config["pad_multiple"])
            out = model(**{k: v.to(device) for k, v in batch.items()}, output_hidden_states=True)
            mask = batch["attention_mask"].to(device).unsqueeze(-1).float()
            features[b] = ((out.last_hidden_state.float() * mask).sum(dim=1) / mask.sum(dim=1)).cpu().numpy()
            for row, i in enumerate(b):  # real tokens only: no padding in the cache
                cache[starts[i] : starts[i + 1]] = out.hidden_states[layer][row, : len(ids[i])].cpu()
    return features, [cache[starts[i] : starts[i + 1]] for i in range(len(ids))]


def advance_states(encoder: torch.nn.Module, states: Sequence[torch.Tensor], start: int, stop: int, config: dict,
                   bf16: bool = False, batch_size: int = 32) -> list[torch.Tensor]:
    """Cached layer-``start`` states through the encoder's frozen layers ``start:stop``: layer-``stop`` states, one block."""
    device = encoder.device  # where the model is
    lengths = [len(s) for s in states]
    starts = np.cumsum([0, *lengths])
    cache = torch.empty(int(starts[-1]), encoder.config.hidden_size, dtype=torch.float16)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in length_batches(lengths, batch_size):
            hidden, mask = (t.to(device) for t in pad_states([states[i] for i in b], config["pad_multiple"]))
            additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min  # as TopLayers
            for layer in encoder.encoder.layer[start:stop]:
                out = layer(hidden, attention_mask=additive)
                hidden = out[0] if isinstance(out, tuple) else out
            for row, i in enumerate(b):  # real tokens only
                cache[starts[i] : starts[i + 1]] = hidden[row, : lengths[i]].cpu()
    return [cache[starts[i] : starts[i + 1]] for i in range(len(states))]


class StatesOnDisk(Sequence):
    """One part's cached states in a .npy file of ``save_frozen``, read a review at a time: memory holds only those in use."""

    def __init__(self, path: Path, lengths: np.ndarray):
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            shape, fortran, dtype = read_header[version](f)  # a KeyError for a .npy version we never write
            self.offset = f.tell()
        if fortran or dtype != np.float16 or len(shape) != 2 or shape[0] != int(lengths.sum()):
            raise ValueError(f"{path} holds {dtype} {shape}, not the float16 states of {int(lengths.sum())} tokens")
        if Path(path).stat().st_size != self.offset + 2 * shape[0] * shape[1]:  # cut short while it was written
            raise ValueError(f"{path} is truncated: delete it and run the frozen pass again")
        self.path, self.lengths, self.hidden = Path(path), lengths, shape[1]
        self.starts = np.cumsum([0, *lengths])

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # negative indices count from the end; an IndexError past it ends iteration
        n = int(self.lengths[i])
        offset = self.offset + 2 * self.hidden * int(self.starts[i])  # float16: 2 bytes a number
        data = np.fromfile(self.path, dtype=np.float16, count=n * self.hidden, offset=offset)
        return torch.from_numpy(data).view(n, self.hidden)


def frozen_key(source: str | Path, layer: int, bf16: bool, **ids: Sequence[Sequence[int]]) -> dict:
    """What a frozen pass depends on: the model, the cached layer, the precision and each part's token ids (digests)."""
    digests = {}
    for part, part_ids in ids.items():
        h = hashlib.sha256()
        for review in part_ids:
            h.update(np.asarray(review, dtype=np.int64).tobytes() + b";")
        digests[part] = [len(part_ids), h.hexdigest()]
    return {"format": 1, "source": str(source), "layer": int(layer), "bf16": bool(bf16), "ids": digests}


def save_frozen(folder: str | Path, key: dict, **parts: tuple[np.ndarray, Sequence[torch.Tensor]]) -> Path:
    """Each part's (features, states) from ``frozen_pass`` as .npy files in ``folder``; ``key.json``, written last, says
    what they were computed from. The folder is replaced whole, and only if it holds such a cache or nothing."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not (folder / "key.json").is_file():
        raise FileExistsError(f"{folder} exists and is not a frozen-pass cache (no key.json): pass another folder, "
                              "or move its files away")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for part, (features, states) in parts.items():
        np.save(partial / f"{part}-features.npy", np.asarray(features, dtype=np.float32), allow_pickle=False)
        lengths = np.array([len(s) for s in states], dtype=np.int64)
        np.save(partial / f"{part}-lengths.npy", lengths, allow_pickle=False)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False,
                  "shape": (int(lengths.sum()), states[0].shape[-1])}
        with open(partial / f"{part}-states.npy", "wb") as f:  # one review at a time: no copy of the block in memory
            np.lib.format.write_array_header_2_0(f, header)
            for s in states:
                f.write(s.to(torch.float16).contiguous().numpy().tobytes())
    (partial / "key.json").write_text(json.dumps(key), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def load_frozen(folder: str | Path, key: dict) -> dict[str, tuple[np.ndarray, StatesOnDisk]] | None:
    """The parts ``save_frozen`` wrote under this ``key`` (states read from disk when used), or None if missing or other."""
    folder = Path(folder)
    try:
        if json.loads((folder / "key.json").read_text(encoding="utf-8")) != key:
            return None
        parts = {}
        for part, (n, _) in key["ids"].items():
            features = np.load(folder / f"{part}-features.npy", allow_pickle=False)
            lengths = np.load(folder / f"{part}-lengths.npy", allow_pickle=False)
            if not len(features) == len(lengths) == n:
                return None
            parts[part] = (features, StatesOnDisk(folder / f"{part}-states.npy", lengths))
        return parts
    except (OSError, ValueError, KeyError, TypeError):  # missing, truncated or unreadable: compute it again
        return None


def pad_states(states: Sequence[torch.Tensor], multiple_of: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Taught in notebook 03, section 6.

    Cached states of several reviews as one zero-padded float32 batch, and its attention mask.
    """
    width = -(-max(len(s) for s in states) // multiple_of) * multiple_of
    hidden = torch.zeros(len(states), width, states[0].shape[-1])
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for row, s in enumerate(states):
        hidden[row, : len(s)] = s.float()
        mask[row, : len(s)] = 1
    return hidden, mask


class TopLayers(torch.nn.Module):
    """Taught in notebook 03, section 6.

    Copies of the encoder's top ``k`` layers and pooler, and a new 2-class linear layer: a classifier on cached states.
    """

    def __init__(self, encoder: torch.nn.Module, k: int, seed: int):
        super().__init__()
        n_layers = encoder.config.num_hidden_layers
        self.layers = torch.nn.ModuleList(copy.deepcopy(encoder.encoder.layer[n_layers - k :]))
        self.pooler = copy.deepcopy(encoder.pooler)  # dense + tanh on [CLS], as in AutoModelForSequenceClassification
        seed_everything(seed)  # the new classifier's random weights depend on the seed
        self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, 2)

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The top layers' output; padded keys get the most negative score, so no token attends to them."""
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out  # older transformers return a tuple
        return hidden

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Two logits per review from its cached states."""
        return self.classifier(self.dropout(self.pooler(self.encode(hidden, mask))))


def predict_top(top: TopLayers, states: Sequence[torch.Tensor], config: dict, bf16: bool = False,
                batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Taught in notebook 03, section 6.

    Predicted classes and positive-class probabilities of ``top`` on cached states, in their order.
    """
    device = next(top.parameters()).device  # where the model is
    top.eval()
    probs = np.zeros(len(states), dtype=np.float32)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for b in length_batches([len(s) for s in states], batch_size):
            hidden, mask = pad_states([states[i] for i in b], config["pad_multiple"])
            probs[b] = top(hidden.to(device), mask.to(device)).float().softmax(dim=-1)[:, 1].cpu().numpy()
    return (probs > 0.5).astype(int), probs


def train_top(top: TopLayers, states: Sequence[torch.Tensor], labels: Sequence[int], epochs: int, seed: int,
              config: dict, bf16: bool = False, val: tuple | None = None,
              desc: str = "fine-tuning") -> tuple[list[float], dict[str, list[float]]]:
    """Taught in notebook 03, section 6.

    Notebook 03's recipe on cached states: AdamW (``lr`` for the layers, ``head_lr`` for pooler and classifier),
    warm-up and linear decay, clipping; per-step losses and per-epoch history (validation if ``val``).
    """
    device = next(top.parameters()).device  # where the model is
    head = [*top.pooler.parameters(), *top.classifier.parameters()]
    optimizer = torch.optim.AdamW([{"params": top.layers.parameters(), "lr": config["lr"]},  # pretrained layers
                                   {"params": head, "lr": config["head_lr"]}], weight_decay=0.01)  # the new head
    steps_per_epoch = int(np.ceil(len(states) / config["batch_size"]))
    total_steps = epochs * steps_per_epoch
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total_steps), total_steps)  # warm-up 10 %, decay
    y = torch.as_tensor(np.asarray(labels))
    history, step_losses = {"loss": [], "val_loss": [], "val_accuracy": []}, []
    for epoch in range(epochs):
        top.train()
        batches = length_batches([len(s) for s in states], config["batch_size"], shuffle=True, seed=seed + epoch)
        bar = tqdm(batches, desc=f"{desc}, epoch {epoch + 1}/{epochs}")
        for b in bar:
            hidden, mask = pad_states([states[i] for i in b], config["pad_multiple"])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = top(hidden.to(device), mask.to(device))
            loss = torch.nn.functional.cross_entropy(logits.float(), y[b].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(top.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(step_losses[-20:]):.3f}", refresh=False)  # shown at the next redraw
        history["loss"].append(float(np.mean(step_losses[-steps_per_epoch:])))
        if val is not None:
            val_pred, val_prob = predict_top(top, val[0], config, bf16=bf16)
            history["val_loss"].append(float(-np.mean(np.log(np.where(val[1] == 1, val_prob, 1 - val_prob) + 1e-7))))
            history["val_accuracy"].append(float((val_pred == val[1]).mean()))
            print(f"epoch {epoch + 1}: mean training loss {history['loss'][-1]:.3f}, "
                  f"validation accuracy {history['val_accuracy'][-1]:.1%}")
    return step_losses, history


def epochs_for(n: int, config: dict) -> int:
    """Taught in notebook 03b.

    The epoch rule for every label budget: ``config["epochs"]``, or more until ``config["min_steps"]`` optimizer steps.
    """
    return max(config["epochs"], int(np.ceil(config["min_steps"] * config["batch_size"] / n)))
