"""Notebook 04's small GPT: attention, the block, the model, its training loop and generation.

Taught in notebook 04 (sections 2, 3 and 5), which asserts that its cells and these functions compute the same; the bonus
notebook 04b and scripts/experiments import them from here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import lm
from . import validate as check
from .data import work_dir, write_npz
from .runtime import faster_precision


def attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v over the last two axes; mask: True where a query may look."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class MultiHeadAttention(nn.Module):
    """h heads of scaled dot-product attention; mask: "causal", "none" or (queries, keys) bools."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # W_Q, W_K, W_V stacked
        self.proj = nn.Linear(d_model, d_model)  # W_O

    def forward(self, x, mask="causal", cache=None):
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, h, T, d_k)
        if cache is not None:  # generation: prepend the keys and values of earlier positions
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        if isinstance(mask, str):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=mask == "causal")
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))  # heads side by side, projected


class Block(nn.Module):
    """Pre-LN transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x, mask="causal", cache=None):
        x = x + self.attn(self.ln1(x), mask, cache)
        return x + self.mlp(self.ln2(x))


def init_weights(model, n_layers):
    """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layers)."""
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            into_residual = name.endswith(("attn.proj.weight", "mlp.2.weight"))
            std = 0.02 / math.sqrt(2 * n_layers) if into_residual else 0.02
            nn.init.normal_(p, 0.0, std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


class GPT(nn.Module):
    """A decoder-only transformer language model with a condition embedding at every position."""

    def __init__(self, vocab_size, context, d_model, n_layers, n_heads, n_conditions=3):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.cond = nn.Embedding(n_conditions, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.bias = nn.Parameter(torch.zeros(n_conditions, vocab_size))  # per condition and token
        init_weights(self, n_layers)

    def forward(self, ids, cond, caches=None):
        """Logits (batch, T, vocab) for token ids and condition ids, both (batch, T)."""
        B, T = ids.shape
        past = caches[0]["k"].shape[2] if caches and "k" in caches[0] else 0
        positions = torch.arange(past, past + T, device=ids.device)
        x = self.tok(ids) + self.pos(positions) + self.cond(cond)
        if past == 0:  # no cache: the causal mask
            mask = "causal"
        elif T == 1:  # one new token may look at every cached one
            mask = "none"
        else:  # several new tokens after a cached past
            mask = torch.ones(T, past + T, dtype=torch.bool, device=ids.device).tril(past)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if caches is None else caches[i])
        bias = F.embedding(cond, self.bias)  # each position's row of the bias table
        return self.ln_f(x) @ self.tok.weight.T + bias  # weight tying: reuse the token embedding


def init_output_bias(model, tokens, conds):
    """Start each condition's output bias at the add-one log frequencies of its tokens (a unigram)."""
    vocab = model.bias.shape[1]
    with torch.no_grad():
        for k in range(model.bias.shape[0]):
            logp = lm.unigram_logprobs(tokens[conds == k], np.arange(vocab), vocab)
            model.bias[k] = torch.from_numpy(logp).float()


def autocast(device, bf16):
    """bfloat16 matrix products when bf16 (chosen by timing); the weights stay 32-bit."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


@torch.inference_mode()
def token_losses(model, x, y, c, batch_size=32, bf16=False):
    """Cross-entropy (nats) of each target of windows x -> y with conditions c; shape of y."""
    model.eval()
    device, out = model.tok.weight.device, np.empty(np.shape(y), dtype=np.float32)
    for i in range(0, len(x), batch_size):
        xb, yb, cb = (torch.from_numpy(a[i : i + batch_size]).to(device) for a in (x, y, c))
        with autocast(device, bf16):
            logits = model(xb, cb).float()
        losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none")
        out[i : i + batch_size] = losses.cpu().numpy()  # copied: kept tensors would fragment the freed memory
    model.train()
    return out


def choose_precision(model, batch, repeats=2):
    """Time a forward and backward pass on batch (B, T) in float32 and bfloat16; (use_bf16, seconds)."""
    def step(use_bf16):
        with autocast(batch.device, use_bf16):
            logits = model(batch, torch.zeros_like(batch))
        F.cross_entropy(logits.float().flatten(0, 1), batch.flatten()).backward()
        model.zero_grad(set_to_none=True)
        if batch.device.type == "cuda":
            torch.cuda.synchronize()  # GPU work is asynchronous: wait, or the clock stops too early

    return faster_precision(step, repeats=repeats)


def lr_factor(step, warmup, total):
    """Linear warm-up to 1, then cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model, weight_decay):
    """AdamW groups: decay weight matrices and embeddings, not biases, LayerNorms, bias table."""
    named = list(model.named_parameters())
    decayed = {n for n, p in named if p.dim() >= 2 and not n.endswith("bias")}
    return [{"params": [p for n, p in named if n in decayed], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}]


def train_step(model, optimizer, scheduler, x, y, c, bf16=False):
    """One AdamW step on windows x -> y with conditions c, gradients clipped at norm 1; the loss."""
    with autocast(x.device, bf16):
        logits = model(x, c)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def train_gpt(model, tokens, conds, steps, batch_size, lr, warmup, seed, bf16=False,
              validate: Callable | None = None):
    """Train on random windows of the stream; losses, learning rates, validation curve, seconds."""
    steps = check.integer(steps, "steps", minimum=1)
    batch_size = check.integer(batch_size, "batch_size", minimum=1)
    tokens, conds = check.stream(tokens, conds)
    device = model.tok.weight.device
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=lr, betas=(0.9, 0.95), fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, steps))
    rng = np.random.default_rng(seed)
    losses, lrs, val_curve, val_seconds = [], [], [], 0.0
    start = time.perf_counter()
    for step in tqdm(range(steps), desc="training the GPT"):
        windows = lm.random_windows(tokens, conds, model.context, batch_size, rng)
        x, y, c = (torch.from_numpy(a).to(device) for a in windows)
        lrs.append(scheduler.get_last_lr()[0])
        losses.append(train_step(model, optimizer, scheduler, x, y, c, bf16))
        if validate is not None and ((step + 1) % max(1, steps // 6) == 0 or step + 1 == steps):
            val_start = time.perf_counter()
            val_curve.append((step + 1, validate(model)))
            val_seconds += time.perf_counter() - val_start
    seconds = time.perf_counter() - start - val_seconds
    return np.array(losses), np.array(lrs), val_curve, seconds


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """Logits (batch, vocab) over the temperature; tokens outside top k or nucleus p get -inf."""
    logits = logits / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # keep tokens until the mass before them is p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """One token per row of logits (batch, vocab): greedy when temperature == 0, else sampled."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    if generator is not None and generator.device.type != logits.device.type:
        raise ValueError(f"generator is on {generator.device} but the logits on {logits.device}: "
                         f"pass torch.Generator(device=logits.device)")
    probs = filter_logits(logits, temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.inference_mode()
def generate(model, prompts, conds, n_new, use_cache=True, **sampling):
    """Continue equal-length prompts (batch, T0) by n_new tokens; use_cache keeps keys, values."""
    n_new = check.integer(n_new, "n_new", minimum=0, hint="the number of tokens to add")
    if prompts.dim() != 2 or len(conds) != prompts.shape[0]:
        raise ValueError(f"prompts must be (batch, T0) with one condition per row: got prompts of shape "
                         f"{tuple(prompts.shape)} and {len(conds)} conds")
    model.eval()
    device = model.tok.weight.device
    ids = prompts.to(device)
    cond = torch.as_tensor(conds, device=device).view(-1, 1)
    room = model.context + 1 - ids.shape[1]  # the last new token is never fed back
    if n_new > room:
        raise ValueError(f"n_new={n_new} after {ids.shape[1]} prompt tokens overflows the "
                         f"context of {model.context}: pass n_new <= {room}")
    caches = [{} for _ in model.blocks] if use_cache else None
    step_input = ids
    for _ in range(n_new):
        inputs = step_input if use_cache else ids
        logits = model(inputs, cond.expand(-1, inputs.shape[1]), caches)[:, -1].float()
        new = next_token(logits, **sampling)
        ids = torch.cat([ids, new[:, None]], dim=1)
        step_input = new[:, None]
    model.train()
    return ids


# The settings of notebook 04's CONFIG that make its GPT; a saved GPT is reused only when all of them (and the seed) match.
TRAINING_KEYS = ("vocab_size", "n_unsup", "lm_unsup", "d_model", "n_layers", "n_heads", "context", "batch_size", "steps",
                 "warmup", "lr")


def saved_path(preset: str) -> Path:
    """Where notebook 04 saves its trained GPT for notebook 04b: ``<work>/models/gpt-<preset>.npz``."""
    return work_dir() / "models" / f"gpt-{preset}.npz"


def _settings(config: dict, seed: int) -> str:
    return json.dumps({"seed": seed, **{k: config[k] for k in TRAINING_KEYS}}, sort_keys=True)


def save(model, preset: str, seed: int, config: dict) -> Path:
    """Save a trained GPT's weights with the settings that made it (plain arrays, no pickle), atomically."""
    arrays = {f"w/{k}": v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    arrays["settings"] = np.frombuffer(_settings(config, seed).encode(), dtype=np.uint8)
    path = saved_path(preset)
    write_npz(path, arrays, "notebook 04's GPT")
    return path


def load(preset: str, seed: int, config: dict, device) -> GPT | None:
    """Notebook 04's saved GPT if it was trained with these settings and seed; None (say why) when it must be retrained."""
    path = saved_path(preset)
    if not path.exists():
        print(f"{path} not found: run notebook 04 first to reuse its GPT, or train it here")
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            if saved["settings"].tobytes().decode() != _settings(config, seed):
                print(f"{path} was trained with other settings or another seed: training it here instead")
                return None
            state = {k[2:]: torch.from_numpy(saved[k]) for k in saved.files if k.startswith("w/")}
        model = GPT(config["vocab_size"], config["context"], config["d_model"], config["n_layers"], config["n_heads"])
        model.load_state_dict(state)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"Ignoring the unreadable {path} ({err}): training the GPT here; notebook 04 writes it again")
        return None
    return model.to(device)
