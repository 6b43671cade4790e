"""trainer.chunked_cross_entropy: the same loss and gradients as the model's own next-token loss,
without the (tokens x vocabulary) logits, and refused where it would compute something else."""

from __future__ import annotations

import peft
import pytest
import torch
from transformers import AutoModelForCausalLM

from ftcli.config.schema import ModelConfig
from ftcli.engine.chunked_loss import ChunkedNextTokenLoss, chunked_step
from ftcli.engine.step import IGNORE_INDEX, LossUnit, ModelLoss
from ftcli.errors import ConfigError
from ftcli.models.loading import build_model

TOL = dict(rtol=1e-5, atol=1e-5)


def tiny(arch: str, **config) -> torch.nn.Module:
    model = build_model(ModelConfig(f"tiny:{arch}"), AutoModelForCausalLM, [], **config)
    return model.eval()  # no dropout: two forward passes see the same network


def padded_batch() -> dict[str, torch.Tensor]:
    """Three rows: a masked prompt, a full row, and one padded at its end."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (3, 13), generator=gen)
    labels, mask = ids.clone(), torch.ones_like(ids)
    labels[0, :5] = IGNORE_INDEX
    labels[2, 9:], mask[2, 9:] = IGNORE_INDEX, 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def loss_and_grads(step, model, batch):
    model.zero_grad(set_to_none=True)
    loss = step.loss(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def chunked(model, chunk_tokens: int) -> ChunkedNextTokenLoss:
    step = chunked_step(ModelLoss(LossUnit.next_tokens), model, chunk_tokens)
    step.prepare(None, model)
    return step


def assert_same(plain, chunked_result):
    (loss, grads), (chunk_loss, chunk_grads) = plain, chunked_result
    torch.testing.assert_close(chunk_loss, loss, **TOL)
    assert chunk_grads.keys() == grads.keys()
    for name in grads:
        torch.testing.assert_close(chunk_grads[name], grads[name], **TOL, msg=name)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("chunk_tokens", [1, 7, 4096])
def test_same_loss_and_gradients_as_the_models_own(arch, chunk_tokens):
    model, batch = tiny(arch), padded_batch()
    plain = loss_and_grads(ModelLoss(LossUnit.next_tokens), model, batch)
    assert_same(plain, loss_and_grads(chunked(model, chunk_tokens), model, batch))


def test_same_for_a_bert_run_as_a_decoder():
    """The embedded MiniLM's shape as task=instruction runs it: its head transforms the hidden state first."""
    model, batch = tiny("bert", is_decoder=True), padded_batch()
    plain = loss_and_grads(ModelLoss(LossUnit.next_tokens), model, batch)
    assert_same(plain, loss_and_grads(chunked(model, 5), model, batch))


def test_same_under_lora_and_only_adapter_weights_get_gradients():
    model = peft.get_peft_model(tiny("llama"), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                 init_lora_weights=False))
    batch = padded_batch()
    plain = loss_and_grads(ModelLoss(LossUnit.next_tokens), model, batch)
    result = loss_and_grads(chunked(model, 5), model, batch)
    assert_same(plain, result)
    assert result[1] and all("lora_" in name for name in result[1])


def test_same_on_a_packed_row():
    """Padding-free rows (task.packing): position ids restart per example, the first label of each is ignored;
    without a KV cache, as the task builds the model for packing."""
    model = tiny("llama", use_cache=False)
    ids = torch.randint(5, 1000, (1, 15), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[0, [0, 6]] = IGNORE_INDEX
    batch = {"input_ids": ids, "labels": labels, "position_ids": torch.tensor([[*range(6), *range(9)]])}
    assert_same(loss_and_grads(ModelLoss(LossUnit.next_tokens), model, batch),
                loss_and_grads(chunked(model, 4), model, batch))


def test_the_output_layer_computes_no_logits():
    model, shapes = tiny("gpt2"), []
    model.get_output_embeddings().register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape)))
    chunked(model, 8).loss(model, padded_batch())
    assert shapes == [(3, 0, model.config.vocab_size)]


def test_a_lora_on_the_output_layer_is_refused():
    model = peft.get_peft_model(tiny("llama"), peft.LoraConfig(r=4, target_modules=["q_proj", "lm_head"]))
    with pytest.raises(ConfigError, match="output layer is a Linear, not a plain linear layer"):
        chunked_step(ModelLoss(LossUnit.next_tokens), model, 8)


@pytest.mark.parametrize("step", [ModelLoss(LossUnit.rows), ModelLoss(LossUnit.tokens)])
def test_a_loss_that_is_not_next_token_cross_entropy_is_refused(step):
    with pytest.raises(ConfigError, match="not a causal LM's next-token cross-entropy"):
        chunked_step(step, tiny("llama"), 8)


def test_rescaled_logits_are_refused():
    model = tiny("llama")
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ConfigError, match="final_logit_softcapping"):
        chunked_step(ModelLoss(LossUnit.next_tokens), model, 8)
