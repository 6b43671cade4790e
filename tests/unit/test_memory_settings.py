"""4/8-bit loading, 8-bit optimisers and Liger kernels: refused with the config, before any weights
load, where this machine (no CUDA GPU, no bitsandbytes, no liger-kernel) cannot run them; the
quantised base takes only methods that train new weights on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from ftcli.cli.registered import to_typed
from ftcli.config.schema import Kernels, ModelConfig, OptimizerName, TrainConfig, TrainerConfig
from ftcli.engine import kernels
from ftcli.engine.memory_levers import memory_levers
from ftcli.engine.optim import build_optimizer
from ftcli.errors import ConfigError, ModelError
from ftcli.models import quantization
from ftcli.models.loading import build_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NO_CUDA = "4-bit loading needs a CUDA GPU; this machine has none: drop model.load_in_4bit or run on a GPU"
NO_BNB = "model.load_in_4bit=true needs bitsandbytes, which is not installed: pip install 'ftcli[qlora]'"


@pytest.fixture
def problems(registered_configs):
    """The problems the config check reports for a `train` command line."""
    def check(*overrides: str) -> list[str]:
        with initialize_config_dir(str(CONFIGS), version_base="1.3", job_name="test"):
            cfg = compose(config_name="train", overrides=["model=tiny_llama", "task=instruction", *overrides])
        try:
            to_typed(cfg, TrainConfig)
        except ConfigError as exc:
            return exc.problems
        return []
    return check


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(quantization, "has_cuda", lambda: False)
    monkeypatch.setattr(quantization, "has_bitsandbytes", lambda: False)


@pytest.fixture
def gpu_with_bitsandbytes(monkeypatch):
    monkeypatch.setattr(quantization, "has_cuda", lambda: True)
    monkeypatch.setattr(quantization, "has_bitsandbytes", lambda: True)


def test_4bit_without_a_gpu_or_bitsandbytes_names_both(problems, no_gpu):
    assert problems("method=lora", "model.load_in_4bit=true") == [NO_CUDA, NO_BNB]


def test_4bit_with_bitsandbytes_but_no_gpu(problems, monkeypatch):
    monkeypatch.setattr(quantization, "has_cuda", lambda: False)
    monkeypatch.setattr(quantization, "has_bitsandbytes", lambda: True)
    assert problems("method=lora", "model.load_in_4bit=true") == [NO_CUDA]


@pytest.mark.parametrize("method", ["lora", "ia3", "prompt_tuning", "adapter", "lora_adapter"])
def test_methods_that_train_new_weights_take_a_quantised_base(problems, gpu_with_bitsandbytes, method):
    assert problems(f"method={method}", "model.load_in_4bit=true") == []


@pytest.mark.parametrize("method", ["full", "freeze", "bitfit"])
def test_methods_that_train_the_base_weights_are_refused_on_a_quantised_base(problems, gpu_with_bitsandbytes, method):
    (problem,) = problems(f"method={method}", "model.load_in_8bit=true")
    assert problem.startswith(f"method={method} trains the base weights themselves, and model.load_in_8bit loads "
                              "them quantised and frozen")


def test_4_and_8_bits_at_once_are_refused(problems, gpu_with_bitsandbytes):
    assert "model.load_in_4bit and model.load_in_8bit are both true; pick one" in problems(
        "method=lora", "model.load_in_4bit=true", "model.load_in_8bit=true")


def test_loftq_needs_a_4bit_base(problems, gpu_with_bitsandbytes):
    (problem,) = problems("method=lora", "method.init=loftq")
    assert problem.startswith("method.init=loftq fits LoRA to the error of a 4-bit base")
    assert problems("method=lora", "method.init=loftq", "model.load_in_4bit=true") == []


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_and_olora_on_a_quantised_base_are_refused(problems, gpu_with_bitsandbytes, init):
    (problem,) = problems("method=lora", f"method.init={init}", "model.load_in_4bit=true")
    assert problem.startswith(f"method.init={init} decomposes the full-precision base weights, and "
                              "model.load_in_4bit loads them quantised")


@pytest.mark.parametrize("task", ["preference", "kto", "grpo"])
def test_pissa_is_refused_where_the_reference_is_the_model_without_its_adapter(problems, task):
    (problem,) = problems(f"task={task}", "method=lora", "method.init=pissa")
    assert problem.startswith("method.init=pissa leaves the base weights without their principal part")
    assert problems(f"task={task}", "method=lora") == []
    assert problems("task=grpo", "task.beta=0", "method=lora", "method.init=pissa") == []  # no reference pass


def test_an_unknown_lora_init_is_refused(problems):
    (problem,) = problems("method=lora", "method.init=svd")
    assert problem.startswith("method.init='svd' is not a LoRA initialisation; use one of: default, gaussian")


@pytest.mark.parametrize("name", ["adamw_8bit", "paged_adamw_8bit"])
def test_8bit_optimisers_are_refused_without_a_gpu_and_bitsandbytes(problems, no_gpu, name):
    assert problems(f"trainer.optimizer={name}") == [
        f"trainer.optimizer={name} runs bitsandbytes' CUDA kernels; this machine has no CUDA GPU: "
        "use trainer.optimizer=adamw or run on a GPU",
        f"trainer.optimizer={name} needs bitsandbytes, which is not installed: pip install 'ftcli[qlora]'",
    ]


def test_liger_is_refused_on_a_machine_without_cuda(problems, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert problems("trainer.kernels=liger")[0] == (
        "trainer.kernels=liger runs Triton kernels, which need a CUDA GPU; this machine has none: "
        "drop trainer.kernels or run on a GPU")


def test_liger_and_the_chunked_loss_are_not_combined(problems):
    assert any(p.startswith("trainer.chunked_cross_entropy=true with trainer.kernels=liger")
               for p in problems("trainer.kernels=liger", "trainer.chunked_cross_entropy=true"))


def test_past_the_config_check_the_same_refusals_hold(no_gpu, monkeypatch):
    """Callers that skip the CLI's check (the library API) get the error at the point of use."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs bitsandbytes, which is not installed"):
        quantization.bnb_config(ModelConfig("org/model", load_in_4bit=True))
    with pytest.raises(ConfigError, match="trainer.optimizer=paged_adamw_8bit needs bitsandbytes"):
        build_optimizer(nn.Linear(2, 2), TrainerConfig(optimizer=OptimizerName.paged_adamw_8bit), 1e-3)
    with pytest.raises(ConfigError, match="need a CUDA GPU"):
        kernels.apply_kernels(nn.Linear(2, 2), TrainerConfig(kernels=Kernels.liger))


def test_a_tiny_model_has_no_weights_to_quantise(gpu_with_bitsandbytes):
    from transformers import AutoModelForCausalLM

    with pytest.raises(ModelError, match="a tiny model is built from config and has no weights to quantise"):
        build_model(ModelConfig("tiny:llama", load_in_4bit=True), AutoModelForCausalLM, [])


def test_an_unquantised_model_is_left_as_it_is():
    model = nn.Linear(2, 2)
    assert quantization.prepare_for_training(model, True) is model
    assert quantization.dequantized(model) is model


def test_out_of_memory_levers_leave_out_those_the_run_pulls():
    plain = memory_levers(TrainerConfig())
    assert plain[0].startswith("trainer.gradient_checkpointing=true")
    assert [lever.split(" ")[0] for lever in plain] == [
        "trainer.gradient_checkpointing=true", "a", "trainer.chunked_cross_entropy=true", "trainer.precision=bf16",
        "trainer.optimizer=paged_adamw_8bit", "model.load_in_4bit=true", "DeepSpeed"]
    pulled = memory_levers(TrainerConfig(gradient_checkpointing=True, chunked_cross_entropy=True,
                                         optimizer=OptimizerName.adamw_8bit))
    assert not any(lever.startswith(("trainer.gradient_checkpointing", "trainer.chunked", "trainer.optimizer"))
                   for lever in pulled)


def test_the_chunked_loss_is_refused_for_tasks_with_another_loss_and_a_lora_on_the_output_layer(problems):
    assert problems("trainer.chunked_cross_entropy=true") == []
    (task,) = problems("task=sentiment", "trainer.chunked_cross_entropy=true")
    assert task.startswith("trainer.chunked_cross_entropy=true: the loss of task=sentiment is not a causal LM's")
    (head,) = problems("method=lora", "method.target_modules=[q_proj,lm_head]", "trainer.chunked_cross_entropy=true")
    assert head.startswith("trainer.chunked_cross_entropy=true with lm_head in method.target_modules")


def test_flash_attention_in_float32_is_refused(problems, monkeypatch):
    from ftcli.models import attention_backend

    monkeypatch.setattr(attention_backend, "flash_attention_runs", lambda: True)
    assert problems("model.attn_implementation=flash_attention_2", "trainer.precision=fp32") == [
        "model.attn_implementation=flash_attention_2 runs in bf16 or fp16 only, and trainer.precision=fp32 trains in "
        "float32: set trainer.precision=bf16 (or auto), or model.attn_implementation=sdpa"]
    assert problems("model.attn_implementation=flash_attention_2", "trainer.precision=bf16") == []


def test_4bit_settings_become_transformers_bitsandbytes_config(gpu_with_bitsandbytes):
    from ftcli.config.schema import ComputeDtype, QuantType

    nf4 = quantization.bnb_config(ModelConfig("org/model", load_in_4bit=True))
    assert (nf4.load_in_4bit, nf4.bnb_4bit_quant_type, nf4.bnb_4bit_use_double_quant,
            nf4.bnb_4bit_compute_dtype) == (True, "nf4", True, torch.bfloat16)
    fp4 = quantization.bnb_config(ModelConfig("org/model", load_in_4bit=True, bnb_4bit_quant_type=QuantType.fp4,
                                              bnb_4bit_compute_dtype=ComputeDtype.fp16, bnb_4bit_use_double_quant=False))
    assert (fp4.bnb_4bit_quant_type, fp4.bnb_4bit_use_double_quant, fp4.bnb_4bit_compute_dtype) == (
        "fp4", False, torch.float16)
    assert quantization.bnb_config(ModelConfig("org/model", load_in_8bit=True)).load_in_8bit
    assert quantization.bnb_config(ModelConfig("org/model")) is None
