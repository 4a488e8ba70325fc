"""helpers.top_layers on a tiny 3-layer BERT: the frozen pass's cache, the copied top layers on it, padding, the way back
into one model, training, and notebook 03b's epoch rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import bert, top_layers

CONFIG = {"lr": 1e-3, "head_lr": 1e-2, "batch_size": 4, "pad_multiple": 8}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # conftest.py: tiny models run on one thread


def _ids(n: int, seed: int = 0, longest: int = 20) -> list[list[int]]:
    """``n`` reviews of [CLS] ... [SEP] of different lengths."""
    rng = np.random.default_rng(seed)
    return [[101, *rng.integers(1, 100, size=rng.integers(1, longest)).tolist(), 102] for _ in range(n)]


@pytest.fixture(scope="module")
def encoder(tiny_bert: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(tiny_bert).eval()


def test_frozen_pass_caches_each_reviews_real_tokens_in_one_float16_block(encoder) -> None:
    import torch

    ids = _ids(9)
    layer = 1
    features, states = top_layers.frozen_pass(encoder, ids, layer, CONFIG, batch_size=4)
    assert features.shape == (9, 32) and features.dtype == np.float32
    assert len(states) == len(ids)
    assert [s.shape for s in states] == [(len(i), 32) for i in ids]
    assert all(s.dtype == torch.float16 and s.is_contiguous() for s in states)
    base = states[0].untyped_storage().data_ptr()
    assert all(s.untyped_storage().data_ptr() == base for s in states)  # views of one block
    starts = np.cumsum([0] + [len(i) for i in ids])
    assert [s.data_ptr() - base for s in states] == [int(k) * 32 * 2 for k in starts[:-1]]  # back to back, in order
    with torch.inference_mode():  # each review alone, no padding: the same states and the same mean
        for i in (0, 4, 8):
            out = encoder(input_ids=torch.tensor([ids[i]]), output_hidden_states=True)
            assert torch.allclose(states[i].float(), out.hidden_states[layer][0], atol=1e-2)
            assert np.allclose(features[i], out.last_hidden_state[0].mean(dim=0).numpy(), atol=1e-5)


def test_pad_states_pads_with_zeros_to_a_multiple() -> None:
    import torch

    states = [torch.ones(3, 4, dtype=torch.float16), torch.full((9, 4), 2.0, dtype=torch.float16)]
    hidden, mask = top_layers.pad_states(states, multiple_of=8)
    assert hidden.shape == (2, 16, 4) and hidden.dtype == torch.float32 and mask.shape == (2, 16)
    assert mask.sum(dim=1).tolist() == [3, 9] and hidden[0, 3:].abs().sum() == 0 and hidden[1, :9].eq(2).all()


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_top_layers_on_the_cache_compute_what_the_whole_encoder_computes(tiny_bert: Path, k: int,
                                                                         attention: str) -> None:
    """The top k layers on the cache of layer n - k (k = n: the embeddings, layer 0) give the encoder's last hidden
    states on the real tokens; the difference is the cache's float16 rounding."""
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_bert, attn_implementation=attention).eval()
    n = encoder.config.num_hidden_layers
    ids = _ids(6, seed=1)
    states = top_layers.frozen_pass(encoder, ids, n - k, CONFIG)[1]
    top = top_layers.TopLayers(encoder, k, 0).eval()
    assert len(top.layers) == k
    hidden, mask = top_layers.pad_states(states, CONFIG["pad_multiple"])
    batch = bert.pad_batch(ids, multiple_of=CONFIG["pad_multiple"])
    with torch.inference_mode():
        ours = top.encode(hidden, mask)
        theirs = encoder(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert ours.shape == theirs.shape
    assert torch.allclose(ours[real], theirs[real], atol=1e-2)


def test_top_layers_are_copies_and_the_classifier_depends_on_the_seed(encoder) -> None:
    import torch

    top, again, other = (top_layers.TopLayers(encoder, 2, seed) for seed in (5, 5, 6))
    assert torch.equal(top.classifier.weight, again.classifier.weight)
    assert not torch.equal(top.classifier.weight, other.classifier.weight)
    with torch.no_grad():
        top.layers[0].output.dense.weight.add_(1.0)
    assert not torch.equal(top.layers[0].output.dense.weight, encoder.encoder.layer[1].output.dense.weight)  # a copy
    assert top.classifier.out_features == 2


def test_padding_does_not_change_a_reviews_logits(encoder) -> None:
    import torch

    ids = [_ids(1, seed=2, longest=5)[0], [101, *range(1, 30), 102]]  # a short review and a much longer one
    states = top_layers.frozen_pass(encoder, ids, 1, CONFIG)[1]
    top = top_layers.TopLayers(encoder, 2, 0).eval()
    with torch.inference_mode():
        alone = top(*top_layers.pad_states(states[:1], CONFIG["pad_multiple"]))
        hidden, mask = top_layers.pad_states(states, CONFIG["pad_multiple"])
        together = top(hidden, mask)
    assert hidden.shape[1] > len(ids[0]) + CONFIG["pad_multiple"]  # the short review got much more padding
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    _, probs = top_layers.predict_top(top, states, CONFIG, batch_size=2)
    _, probs_alone = top_layers.predict_top(top, states[:1], CONFIG)
    assert np.allclose(probs[0], probs_alone[0], atol=1e-5)


def test_trained_layers_go_back_into_one_model(tiny_bert: Path, encoder) -> None:
    """Notebook 03's cell c03e7a02: the layers, pooler and classifier written into AutoModelForSequenceClassification
    predict from token ids what predict_top predicts from the cache."""
    import torch
    from transformers import AutoModelForSequenceClassification

    ids = _ids(12, seed=3)
    labels = np.array([0, 1] * 6)
    n, k = encoder.config.num_hidden_layers, 2
    cut = n - k
    states = top_layers.frozen_pass(encoder, ids, cut, CONFIG)[1]
    top = top_layers.TopLayers(encoder, k, 0)
    top_layers.train_top(top, states, labels, 2, 0, {**CONFIG, "lr": 1e-2}, desc="test")  # move the layers
    assert not torch.equal(top.layers[0].output.dense.weight, encoder.encoder.layer[cut].output.dense.weight)
    top_classes, top_probs = top_layers.predict_top(top, states, CONFIG)

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    fresh_probs = bert.predict(model, ids, CONFIG)[1]
    for i, layer in enumerate(top.layers):
        model.base_model.encoder.layer[cut + i].load_state_dict(layer.state_dict())
    model.base_model.pooler.load_state_dict(top.pooler.state_dict())
    model.classifier.load_state_dict(top.classifier.state_dict())
    classes, probs = bert.predict(model, ids, CONFIG)
    assert np.abs(probs - top_probs).max() < 1e-2  # the cache's float16 rounding
    assert np.array_equal(classes[np.abs(top_probs - 0.5) > 0.01], top_classes[np.abs(top_probs - 0.5) > 0.01])
    assert np.abs(fresh_probs - top_probs).max() > 1e-2  # without the write-back the model predicts something else


def test_train_top_lowers_the_loss_on_a_separable_toy_set(encoder) -> None:
    """Reviews of token 5 against reviews of token 6: the loss falls and every review ends up classified right."""
    rng = np.random.default_rng(4)
    labels = np.array([0, 1] * 8)
    ids = [[101, *([5 + int(y)] * int(rng.integers(3, 10))), 102] for y in labels]
    states = top_layers.frozen_pass(encoder, ids, 1, CONFIG)[1]
    top = top_layers.TopLayers(encoder, 2, 0)
    config = {**CONFIG, "lr": 3e-3, "head_lr": 3e-2}  # a random tiny BERT: larger rates than MiniLM's (seeds 0-2 pass)
    losses, history = top_layers.train_top(top, states, labels, 10, 0, config, val=(states, labels), desc="toy")
    assert len(losses) == 10 * 4 and len(history["loss"]) == len(history["val_loss"]) == 10
    assert history["loss"][0] > 0.5 and history["loss"][-1] < 0.1 and history["val_loss"][-1] < 0.1
    assert np.array_equal(top_layers.predict_top(top, states, CONFIG)[0], labels)


def test_epochs_for_gives_every_budget_the_pools_steps() -> None:
    config = {"epochs": 1, "min_steps": 150, "batch_size": 16}  # notebook 03b's small preset: 150 steps = the pool's
    assert top_layers.epochs_for(64, config) == 38  # ceil(150 * 16 / 64) = ceil(37.5)
    assert top_layers.epochs_for(256, config) == 10 and top_layers.epochs_for(1024, config) == 3
    assert top_layers.epochs_for(2400, config) == 1  # the pool: one epoch is 150 steps
    assert top_layers.epochs_for(100_000, {**config, "epochs": 3}) == 3  # never fewer than config["epochs"]


def test_save_frozen_then_load_frozen_gives_the_same_features_and_states(encoder, tmp_path: Path) -> None:
    import torch

    ids = {"pool": _ids(7, seed=1), "subset": _ids(5, seed=2)}
    passes = {part: top_layers.frozen_pass(encoder, part_ids, 1, CONFIG, batch_size=4) for part, part_ids in ids.items()}
    key = top_layers.frozen_key("tiny", 1, False, **ids)
    folder = top_layers.save_frozen(tmp_path / "cache" / "frozen", key, **passes)
    assert sorted(p.name for p in folder.iterdir())[-1] == "subset-states.npy" and (folder / "key.json").is_file()
    assert not (tmp_path / "cache" / "frozen.partial").exists()
    loaded = top_layers.load_frozen(folder, key)
    assert loaded is not None and sorted(loaded) == ["pool", "subset"]
    for part, (features, states) in passes.items():
        assert np.array_equal(loaded[part][0], features)
        assert len(loaded[part][1]) == len(states)
        assert all(torch.equal(a, b) and a.dtype == torch.float16 for a, b in zip(loaded[part][1], states, strict=True))
    hidden, mask = top_layers.pad_states(loaded["pool"][1][:3], 8)  # usable as the notebook uses them
    assert hidden.dtype == torch.float32 and mask.sum() == sum(len(s) for s in ids["pool"][:3])
    assert isinstance(loaded["pool"][1], top_layers.StatesOnDisk) and len(loaded["pool"][1][2:5]) == 3  # read when used
    states = loaded["pool"][1]
    with pytest.raises(ValueError, match="not the float16 states"):
        top_layers.StatesOnDisk(states.path, states.lengths[:-1])  # lengths of another part


def test_load_frozen_returns_none_for_other_inputs_or_a_broken_folder(encoder, tmp_path: Path) -> None:
    ids = _ids(4, seed=3)
    key = top_layers.frozen_key("tiny", 1, False, pool=ids)
    folder = tmp_path / "frozen"
    assert top_layers.load_frozen(folder, key) is None  # never written
    top_layers.save_frozen(folder, key, pool=top_layers.frozen_pass(encoder, ids, 1, CONFIG))
    assert top_layers.load_frozen(folder, top_layers.frozen_key("tiny", 2, False, pool=ids)) is None  # another layer
    assert top_layers.load_frozen(folder, top_layers.frozen_key("tiny", 1, True, pool=ids)) is None  # bfloat16
    other = [list(r) for r in ids]
    other[0][1] += 1
    assert top_layers.load_frozen(folder, top_layers.frozen_key("tiny", 1, False, pool=other)) is None  # one token
    states_file = folder / "pool-states.npy"
    states_file.write_bytes(states_file.read_bytes()[:-64])
    assert top_layers.load_frozen(folder, key) is None  # truncated: computed again, not read short in training
    (folder / "pool-lengths.npy").write_bytes(b"not a numpy file")
    assert top_layers.load_frozen(folder, key) is None  # broken: computed again, not half-read


def test_save_frozen_replaces_its_own_cache_but_never_a_folder_of_other_files(encoder, tmp_path: Path) -> None:
    ids = _ids(3, seed=4)
    passes = top_layers.frozen_pass(encoder, ids, 1, CONFIG)
    key = top_layers.frozen_key("tiny", 1, False, pool=ids)
    folder = top_layers.save_frozen(tmp_path / "frozen", key, pool=passes)
    top_layers.save_frozen(folder, key, pool=passes)  # its own cache: replaced
    assert top_layers.load_frozen(folder, key) is not None
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a learner's file")
    with pytest.raises(FileExistsError, match="not a frozen-pass cache"):
        top_layers.save_frozen(mine, key, pool=passes)
    assert (mine / "notes.txt").read_text() == "a learner's file"


def test_advance_states_gives_a_later_layers_cache(encoder, tmp_path: Path) -> None:
    import torch

    ids = _ids(10, seed=5)
    at_1 = top_layers.frozen_pass(encoder, ids, 1, CONFIG, batch_size=4)
    _, at_3 = top_layers.frozen_pass(encoder, ids, 3, CONFIG, batch_size=4)
    key = top_layers.frozen_key("tiny", 1, False, pool=ids)
    on_disk = top_layers.load_frozen(top_layers.save_frozen(tmp_path / "f", key, pool=at_1), key)["pool"][1]
    for states in (at_1[1], on_disk):  # in memory or read from disk
        advanced = top_layers.advance_states(encoder, states, 1, 3, CONFIG, batch_size=3)
        assert [a.shape for a in advanced] == [s.shape for s in at_3] and all(a.dtype == torch.float16 for a in advanced)
        assert max((a.float() - s.float()).abs().max().item() for a, s in zip(advanced, at_3, strict=True)) < 2e-2
        assert advanced[1].untyped_storage().data_ptr() == advanced[7].untyped_storage().data_ptr()  # one block
