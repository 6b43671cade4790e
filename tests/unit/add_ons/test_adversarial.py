"""Adversarial training on the input embeddings: FGM's one step of exactly epsilon along the
gradient, PGD inside the epsilon-ball at every step, FreeLB's gradient the mean of its passes, for
every method, and no trace of the perturbation once the step is done.

The models are tiny and without dropout, so that passes at the same perturbation are equal and
the perturbation a pass ran at can be read back from the inputs of the layer after the lookup.
"""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from ftcli.config.schema import AdversarialConfig, AdversarialMethod, PerturbationNorm
from ftcli.engine.add_ons.adversarial import FastGradient, FreeLargeBatch, ProjectedGradient
from ftcli.engine.step import LossUnit, ModelLoss
from ftcli.errors import ConfigError
from ftcli.methods import METHODS, head_modules
from tests.unit.test_grad_accumulation import classification_rows, gradient_of_one_step, same, tiny

ONE_PROCESS = SimpleNamespace(no_sync=lambda model: nullcontext())  # the accelerator's part a step asks for
L2, LINF = PerturbationNorm.l2, PerturbationNorm.linf


def row_norms(values: torch.Tensor) -> torch.Tensor:
    """Each row's l2 norm over its positions and hidden units, shaped (rows, 1, 1)."""
    return values.flatten(1).norm(dim=1).view(-1, 1, 1)


def bert():
    return tiny(AutoModelForSequenceClassification, "bert", num_labels=2)


def padded_batch() -> dict[str, torch.Tensor]:
    """Three rows of 7 positions, the first with 3 of padding."""
    torch.manual_seed(1)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[0, 4:] = 0
    return {"input_ids": torch.randint(1000, 2000, (3, 7)) * mask, "attention_mask": mask,
            "labels": torch.tensor([0, 1, 1])}


def inputs_of(module: torch.nn.Module) -> list[torch.Tensor]:
    """What `module` is called with, one tensor per call (its first argument)."""
    seen: list[torch.Tensor] = []
    module.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone()),
        with_kwargs=True)
    return seen


def at(model, delta: torch.Tensor | None):
    """A context in which the model's word embeddings come out moved by `delta` (None: a zero leaf whose
    gradient is the loss's gradient with respect to the embeddings)."""
    leaf = torch.zeros(0)

    def add(module, args, output):
        nonlocal leaf
        leaf = torch.zeros_like(output, requires_grad=True) if delta is None else delta
        return output + leaf

    handle = model.get_input_embeddings().register_forward_hook(add)
    return handle, lambda: leaf


def grads_at(model, batch, delta: torch.Tensor | None):
    """The trainable gradients of the loss at `delta`, and the gradient with respect to the embeddings."""
    model.zero_grad()
    handle, leaf = at(model, delta)
    model(**batch).loss.backward()
    handle.remove()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return grads, leaf().grad


def run(step, model, batch):
    step.prepare(ONE_PROCESS, model)
    model.zero_grad()
    loss = step.backward(model, batch, lambda mean: mean.backward())
    return loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def adversarial(method: AdversarialMethod, **settings) -> AdversarialConfig:
    return AdversarialConfig(method=method, **settings)


@pytest.mark.parametrize("norm", [L2, LINF])
def test_fgm_moves_the_embeddings_by_epsilon_along_the_gradient_and_leaves_no_trace(norm):
    model, batch = bert(), padded_batch()
    _, g = grads_at(model, batch, None)
    mask = batch["attention_mask"][..., None].float()
    with torch.no_grad():
        clean = model(**batch).logits
    seen = inputs_of(model.bert.embeddings.LayerNorm)  # word + position + token type embeddings
    run(FastGradient(ModelLoss(), adversarial(AdversarialMethod.fgm, epsilon=0.5, norm=norm)), model, batch)
    assert len(seen) == 2
    moved = seen[1] - seen[0]
    if norm is L2:
        assert torch.allclose(row_norms(moved).flatten(), torch.full((3,), 0.5), atol=1e-5)
        expected = 0.5 * g * mask / row_norms(g * mask)
    else:
        expected = 0.5 * torch.sign(g) * mask
        assert moved.abs().amax().item() == pytest.approx(0.5, abs=1e-5)
    assert torch.allclose(moved, expected, atol=1e-5)
    assert (moved[0, 4:] == 0).all()  # padding stays where it was
    seen.clear()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, clean)  # the hooks are gone: the next forward is the clean one
    assert not model.get_input_embeddings()._forward_hooks and not model._forward_pre_hooks


def test_fgm_perturbs_each_example_of_a_packed_row_by_epsilon():
    """A padding-free row of three examples (positions starting again at 0): ε for each of them."""
    model = bert()
    torch.manual_seed(1)
    batch = {"input_ids": torch.randint(1000, 2000, (1, 9)), "position_ids": torch.tensor([[0, 1, 2, 3, 0, 1, 0, 1, 2]]),
             "labels": torch.tensor([1])}
    seen = inputs_of(model.bert.embeddings.LayerNorm)
    run(FastGradient(ModelLoss(), adversarial(AdversarialMethod.fgm, epsilon=0.5)), model, batch)
    moved = seen[1] - seen[0]
    norms = [moved[0, start:end].norm().item() for start, end in ((0, 4), (4, 6), (6, 9))]
    assert norms == [pytest.approx(0.5, abs=1e-5)] * 3


def test_fgm_trains_on_the_clean_and_the_attacked_gradient_and_logs_both_losses():
    model, batch = bert(), padded_batch()
    clean, g = grads_at(model, batch, None)
    mask, cfg = batch["attention_mask"][..., None].float(), adversarial(AdversarialMethod.fgm)
    delta = cfg.epsilon * g * mask / row_norms(g * mask)
    attacked, _ = grads_at(model, batch, delta)
    step = FastGradient(ModelLoss(), cfg)
    loss, grads = run(step, model, batch)
    with torch.no_grad():
        clean_loss = model(**batch).loss
        handle, _ = at(model, delta)
        attacked_loss = model(**batch).loss
        handle.remove()
    assert torch.equal(loss, clean_loss)  # the logged loss is the clean pass's
    assert same(grads, {n: clean[n] + attacked[n] for n in clean})
    assert step.logged() == {"adversarial_loss": pytest.approx(attacked_loss.item(), abs=1e-6)}
    assert step.logged() == {}  # counting starts again


@pytest.mark.parametrize("norm", [L2, LINF])
def test_pgd_stays_in_the_ball_at_every_step_and_trains_on_the_clean_and_the_last_pass(norm):
    model, batch = bert(), padded_batch()
    epsilon = 0.5 if norm is L2 else 0.02
    cfg = adversarial(AdversarialMethod.pgd, epsilon=epsilon, alpha=0.3 if norm is L2 else 0.015, steps=3, norm=norm)
    seen = inputs_of(model.bert.embeddings.LayerNorm)
    _, grads = run(ProjectedGradient(ModelLoss(), cfg), model, batch)
    assert len(seen) == 4  # the clean pass and 3 steps
    deltas = [after - seen[0] for after in seen[1:]]
    for delta in deltas:
        size = row_norms(delta).flatten() if norm is L2 else delta.abs().flatten(1).amax(1)
        assert (size <= epsilon + 1e-5).all() and (size > 0).all()
        assert (delta[0, 4:] == 0).all()
    assert not torch.allclose(deltas[0], deltas[-1])  # it did move
    clean, _ = grads_at(model, batch, None)
    last, _ = grads_at(model, batch, deltas[-1])
    assert same(grads, {n: clean[n] + last[n] for n in clean})  # the passes in between train nothing


def test_freelb_trains_on_the_mean_of_its_passes_each_inside_the_ball():
    model, batch, epsilon = bert(), padded_batch(), 0.5
    cfg = adversarial(AdversarialMethod.freelb, epsilon=epsilon, alpha=0.2, steps=3)
    seen = inputs_of(model.bert.embeddings.LayerNorm)
    with torch.no_grad():
        model(**batch)  # the clean inputs, to read each pass's perturbation against
    torch.manual_seed(7)
    step = FreeLargeBatch(ModelLoss(), cfg)
    loss, grads = run(step, model, batch)
    deltas = [after - seen[0] for after in seen[1:]]
    assert len(deltas) == 3
    for delta in deltas:
        assert ((row_norms(delta) <= epsilon + 1e-5) & (row_norms(delta) > 0)).all()  # the random start too
    passes = [grads_at(model, batch, delta)[0] for delta in deltas]
    assert same(grads, {n: sum(p[n] for p in passes) / 3 for n in grads})
    losses = []
    with torch.no_grad():
        for delta in deltas:
            handle, _ = at(model, delta)
            losses.append(model(**batch).loss)
            handle.remove()
    assert torch.allclose(loss, torch.stack(losses).mean(), atol=1e-6)  # no clean pass: the passes' mean is logged


def test_an_encoder_decoder_is_perturbed_at_the_encoders_input_only():
    from ftcli.models.tiny import tiny_config

    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_config(tiny_config("t5", dropout_rate=0.0))
    batch = {**padded_batch(), "labels": torch.randint(1000, 2000, (3, 5))}
    encoder, decoder = inputs_of(model.encoder.block[0]), inputs_of(model.decoder.block[0])
    run(FastGradient(ModelLoss(LossUnit.tokens), adversarial(AdversarialMethod.fgm, epsilon=0.5)), model, batch)
    assert len(encoder) == len(decoder) == 2
    assert torch.allclose(row_norms(encoder[1] - encoder[0]).flatten(), torch.full((3,), 0.5), atol=1e-5)
    assert torch.equal(decoder[1], decoder[0])


@pytest.mark.parametrize("method", ["full", "lora", "prompt_tuning", "prefix_tuning", "adapter"])
def test_every_methods_trainable_parameters_train_on_the_attacked_pass(method):
    """The attacked pass adds a gradient to every trainable parameter the loss depends on, whatever
    the method: the perturbation enters below all of them. One method of each way of adapting the
    model: its own weights, PEFT's wrapped layers, virtual tokens before the input, virtual keys and
    values in every layer, and ftcli's bottleneck layers."""
    base = bert()
    entry = METHODS.get(method)
    model = entry.impl.apply(base, entry.config_cls(), head_modules(base))
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = padded_batch()
    clean, _ = grads_at(model, batch, None)
    _, grads = run(FastGradient(ModelLoss(), adversarial(AdversarialMethod.fgm)), model, batch)
    assert grads.keys() == clean.keys() and clean
    # a key bias shifts every score of a query alike, which softmax ignores: its gradient is rounding noise
    depends = [n for n in clean if clean[n].abs().amax() > 1e-6]
    assert depends and all(not torch.allclose(grads[n], clean[n] * 2, atol=1e-9) for n in depends)


def test_micro_batches_are_perturbed_as_their_rows_are_in_one_batch():
    """Per-row norms: a row's perturbation depends neither on what its batch holds nor on its padding,
    so micro-batches of 4, 4 and 2 rows accumulate to the gradient of one batch of 10."""
    cfg = adversarial(AdversarialMethod.fgm, epsilon=0.5)
    whole = gradient_of_one_step(bert(), classification_rows(), FastGradient(ModelLoss(), cfg), 12, 1)
    accumulated = gradient_of_one_step(bert(), classification_rows(), FastGradient(ModelLoss(), cfg), 4, 3)
    assert same(accumulated, whole)


def test_a_model_that_never_looks_up_its_embeddings_is_refused():
    model, batch = bert(), padded_batch()
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach()
    by_embeds = {k: v for k, v in batch.items() if k != "input_ids"} | {"inputs_embeds": embeds}

    class Embedded(ModelLoss):
        def units(self, batch):
            return torch.tensor(3)

    step = FastGradient(Embedded(), adversarial(AdversarialMethod.fgm))
    with pytest.raises(ConfigError, match="never looked up its input embeddings"):
        run(step, model, by_embeds)
