"""Speed figures: real tokens and padding of batches, the loop's counts, and model FLOPs utilisation."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ftcli import ui
from ftcli.config.schema import EvalStrategy, Precision, TrainerConfig
from ftcli.engine.batching import TrainBatches
from ftcli.engine.checkpoint import Checkpointing, list_checkpoints
from ftcli.engine.loop import Training, train_loop
from ftcli.engine.state import LoopState
from ftcli.engine.throughput import (
    PEAK_TFLOPS,
    TokenCount,
    batch_tokens,
    compute_dtype,
    device_peak,
    forward_parameters,
    model_flops_utilisation,
    padding_fraction,
    peak_flops,
    utilisation,
)

# a batch of two rows padded to 4: 3 + 2 real tokens in 8 slots
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])


def test_a_padded_batch_counts_its_attention_masks_ones():
    real, slots = batch_tokens({"input_ids": MASK * 7, "attention_mask": MASK, "labels": MASK * 7})
    assert (int(real), slots) == (5, 8)
    state = LoopState(tokens=5, token_slots=8)
    assert padding_fraction(state) == 0.375


def test_a_second_sequences_mask_is_counted_and_the_first_not_twice():
    rejected = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    batch = {"input_ids": MASK, "attention_mask": MASK, "rejected_input_ids": rejected,
             "rejected_attention_mask": rejected}
    real, slots = batch_tokens(batch)
    assert (int(real), slots) == (10, 16)


def test_a_packed_batch_has_no_padding():
    ids = torch.arange(9).reshape(1, 9)
    real, slots = batch_tokens({"input_ids": ids, "position_ids": torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]]),
                                "labels": ids})
    assert (int(real), slots) == (9, 9)


def test_the_count_sums_batches_until_taken_then_starts_again():
    count = TokenCount("cpu")
    for _ in range(3):
        count.add({"input_ids": MASK, "attention_mask": MASK})
    single = SimpleNamespace(num_processes=1)
    assert count.take(single) == (15, 24)
    assert count.take(single) == (0, 0)


def test_under_several_processes_the_counts_are_summed_across_them():
    count = TokenCount("cpu")
    count.add({"input_ids": MASK, "attention_mask": MASK})
    reduced = []

    def reduce(tensor, reduction):
        reduced.append(reduction)
        return tensor * 2  # two processes that counted the same

    assert count.take(SimpleNamespace(num_processes=2, reduce=reduce)) == (10, 16) and reduced == ["sum"]


class MeanPool(nn.Module):
    """y = w·mean(embedding of the real tokens), an MSE loss per row."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, input_ids, attention_mask, labels):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(loss=nn.functional.mse_loss(self.out(pooled).squeeze(-1), labels))


LENGTHS = [3, 7, 1, 5, 4, 6, 2, 8, 3, 5, 2, 6]  # 52 real tokens
FEATURES = [{"input_ids": [(i + j) % 20 for j in range(n)], "labels": float(i % 2)} for i, n in enumerate(LENGTHS)]


def collate(rows):
    longest = max(len(r["input_ids"]) for r in rows)
    return {
        "input_ids": torch.tensor([r["input_ids"] + [0] * (longest - len(r["input_ids"])) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (longest - len(r["input_ids"])) for r in rows]),
        "labels": torch.tensor([r["labels"] for r in rows]),
    }


class Quiet:
    def on_train_begin(self, total_steps): ...
    def on_step(self, step, record): ...
    def on_evaluate(self, step, record): ...
    def on_train_end(self): ...


def test_the_loop_counts_every_real_token_of_every_accumulated_batch_once(tmp_path):
    """One epoch of 3 optimiser steps of 2 accumulated batches of 2 rows: each row trained once. A
    checkpoint after step 1 (between log steps) holds the tokens of that step's two batches."""
    cfg = TrainerConfig(max_steps=3, batch_size=2, grad_accum_steps=2, group_by_length=False, logging_steps=2,
                        eval_strategy=EvalStrategy.no, precision=Precision.fp32, save_every=1, keep_checkpoints=5)
    torch.manual_seed(0)
    checkpoints = Checkpointing(tmp_path, cfg.save_every, cfg.keep_checkpoints, {})
    state = train_loop(Training(MeanPool(), FEATURES, collate, 0.01, 0, lambda m: {}, Quiet(), checkpoints=checkpoints),
                       cfg)
    batches = list(TrainBatches(LENGTHS, 2, 0, group_by_length=False))
    slots = [2 * max(LENGTHS[i] for i in batch) for batch in batches]
    assert state.tokens == sum(LENGTHS) == 52 and state.samples == 12
    assert state.token_slots == sum(slots) and state.token_slots > state.tokens  # the sampler's batches, padded
    first = json.loads((list_checkpoints(tmp_path)[0] / "state.json").read_text())
    assert first["step"] == 1 and first["tokens"] == sum(LENGTHS[i] for b in batches[:2] for i in b)
    assert first["token_slots"] == sum(slots[:2])
    logged = [r for r in state.history if "loss" in r]
    assert [r["step"] for r in logged] == [2, 3] and all(r["tokens_per_second"] > 0 for r in logged)


def tiny_llama(tied: bool) -> nn.Module:
    from transformers import AutoModelForCausalLM

    from ftcli.models.tiny import tiny_config

    return AutoModelForCausalLM.from_config(tiny_config("llama", tie_word_embeddings=tied))


def test_the_forward_parameters_leave_out_the_input_embedding_unless_it_is_also_the_output_projection():
    for tied in (True, False):
        model = tiny_llama(tied)
        total = sum(p.numel() for p in model.parameters())
        table = model.get_input_embeddings().weight.numel()
        assert forward_parameters(model) == (total if tied else total - table)
    lora = nn.Sequential(nn.Embedding(10, 3), nn.Linear(3, 3))
    lora[1].weight.requires_grad_(False)  # frozen weights still run in the forward pass
    assert forward_parameters(lora) == 12


@pytest.mark.parametrize(("name", "label"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA A100-SXM4-80GB", "A100"), ("NVIDIA A100-PCIE-40GB", "A100"),
    ("NVIDIA A10", "A10"), ("NVIDIA L4", "L4"), ("NVIDIA L40S", "L40S"), ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ("NVIDIA GeForce RTX 3090", "RTX 3090"), ("Tesla V100-SXM2-16GB", "V100 SXM2"), ("Tesla V100-PCIE-32GB", "V100 PCIe"),
    ("Tesla T4", "T4"),
])
def test_device_names_as_cuda_reports_them_find_their_peak(name, label):
    assert device_peak(name)[0] == label


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 3090 Ti", "NVIDIA A10G", "NVIDIA L40", "AMD Instinct MI300X"])
def test_devices_not_in_the_table_are_not_mistaken_for_one_that_is(name):
    assert device_peak(name) is None


def test_every_device_has_its_tensor_cores_above_its_fp32_peak():
    for _, _, peak in PEAK_TFLOPS:
        assert peak.fp16 > peak.fp32 and (peak.bf16 is None or peak.bf16 == peak.fp16)


def test_mfu_is_six_n_tokens_per_second_over_the_peak_of_all_devices():
    assert utilisation(10**9, 50_000, 1e15) == pytest.approx(0.3)
    assert utilisation(10**9, 50_000, 1e15, processes=4) == pytest.approx(0.075)
    _, h100 = device_peak("NVIDIA H100 80GB HBM3")
    assert peak_flops(h100, torch.bfloat16, tf32=False) == 989.5e12
    assert peak_flops(h100, torch.float32, tf32=False) == 67e12 and peak_flops(h100, torch.float32, tf32=True) == 494.5e12
    model = nn.Linear(1000, 1000, bias=False)  # 10**6 parameters
    mfu = model_flops_utilisation(model, 1e7, torch.bfloat16, "NVIDIA A100-SXM4-80GB")
    assert mfu == round(6e6 * 1e7 / 312e12, 4)


def test_an_unknown_device_or_compute_type_gives_no_mfu_and_says_why(caplog):
    model = nn.Linear(4, 4)
    with caplog.at_level(logging.WARNING, logger="ftcli.engine.throughput"):
        assert model_flops_utilisation(model, 1e5, torch.bfloat16, "Some Future GPU") is None
        assert model_flops_utilisation(model, 1e5, torch.bfloat16, "Tesla T4") is None
    assert "no peak FLOPs known for 'Some Future GPU'" in caplog.text and "T4 has no torch.bfloat16" in caplog.text
    assert model_flops_utilisation(model, 1e5, torch.float16, "Tesla T4") is not None


def test_the_compute_dtype_is_the_autocast_one_else_the_models():
    model = nn.Linear(2, 2)
    assert compute_dtype("bf16", model) == torch.bfloat16 and compute_dtype("fp16", model) == torch.float16
    assert compute_dtype("no", model) == torch.float32 and compute_dtype("no", model.to(torch.bfloat16)) == torch.bfloat16


def test_the_costs_line_shows_tokens_padding_and_mfu(capsys):
    train = {"wall_seconds": 3.0, "samples_per_second": 10.0, "tokens_per_second": 1234.5, "padding_fraction": 0.125,
             "peak_rss_mb": 900.0}
    ui.print_costs(train)
    assert "10.0 samples/s, 1,234 tokens/s, padding 12.5%)" in capsys.readouterr().out
    ui.print_costs({**train, "mfu": 0.4213, "peak_gpu_mb": 2048.0})
    assert "padding 12.5%, MFU 42.1%), peak RSS 900 MB, peak GPU 2,048 MB" in capsys.readouterr().out
