"""The config checks of the settings that fit big models in small memory, before any weights load.

4/8-bit loading, the 8-bit optimisers, Liger kernels and flash-attention need a CUDA GPU and
optional packages; the quantised base takes only methods that train new weights on top of it, and
LoftQ needs it. Each module owns its own rule; this one gathers them for `ftcli.cli.registered`,
which reports every problem at once.
"""

from __future__ import annotations

from ftcli.config.schema import AttnImplementation, OptimizerName, Precision, TrainConfig


def memory_problems(cfg: TrainConfig) -> list[str]:
    from ftcli.engine.kernels import kernel_problems
    from ftcli.methods import METHODS
    from ftcli.methods.lora import LoraConfig
    from ftcli.methods.lora_init import changes_base
    from ftcli.models.attention_backend import attention_problems
    from ftcli.models.quantization import has_bitsandbytes, has_cuda, quantization_problems
    from ftcli.tasks.grpo import GrpoConfig
    from ftcli.tasks.policy import PolicyConfig

    parts = [part for part in cfg.method.parts() if part in METHODS]
    base_training = [part for part in parts if METHODS.get(part).impl.artifact == "model"]
    problems = quantization_problems(cfg.model, base_training)
    optimizer = cfg.trainer.optimizer
    if optimizer is not OptimizerName.adamw:
        if not has_cuda():
            problems.append(f"trainer.optimizer={optimizer.value} runs bitsandbytes' CUDA kernels; this machine has no "
                            "CUDA GPU: use trainer.optimizer=adamw or run on a GPU")
        if not has_bitsandbytes():
            problems.append(f"trainer.optimizer={optimizer.value} needs bitsandbytes, which is not installed: "
                            "pip install 'ftcli[qlora]'")
    init = cfg.method.init if isinstance(cfg.method, LoraConfig) else "default"
    if changes_base(init) and cfg.model.quantized_bits is not None:
        problems.append(f"method.init={init} decomposes the full-precision base weights, and "
                        f"model.load_in_{cfg.model.quantized_bits}bit loads them quantised: use method.init=loftq "
                        "(with model.load_in_4bit) or default, or drop the quantisation")
    reference = (isinstance(cfg.task, PolicyConfig) and cfg.task.needs_reference) or (
        isinstance(cfg.task, GrpoConfig) and cfg.task.beta > 0)
    if changes_base(init) and reference:
        # the reference is the model with its adapter switched off: after PiSSA/OLoRA, the residual base
        problems.append(f"method.init={init} leaves the base weights without their principal part, and "
                        f"task={cfg.task.name} scores its reference with the adapter switched off, so the reference "
                        "would not be the starting model: use method.init=default (or gaussian) for this task")
    if init == "loftq" and not cfg.model.load_in_4bit:
        problems.append("method.init=loftq fits LoRA to the error of a 4-bit base, and model.load_in_4bit is false: "
                        "set model.load_in_4bit=true (on a GPU), or use method.init=pissa on a full-precision base")
    if cfg.model.attn_implementation is AttnImplementation.flash_attention_2 and cfg.trainer.precision is Precision.fp32:
        problems.append("model.attn_implementation=flash_attention_2 runs in bf16 or fp16 only, and trainer.precision=fp32 "
                        "trains in float32: set trainer.precision=bf16 (or auto), or model.attn_implementation=sdpa")
    return problems + kernel_problems(cfg.trainer) + attention_problems(cfg.model) + _chunked_loss_problems(cfg)


def _chunked_loss_problems(cfg: TrainConfig) -> list[str]:
    """The chunked cross-entropy replaces a causal LM's next-token loss over its labels, computed from the
    output layer's own weight: tasks with another loss, and a LoRA on the output layer, are refused."""
    from ftcli.methods.lora import LoraConfig
    from ftcli.tasks.responses import ResponseConfig

    if not cfg.trainer.chunked_cross_entropy:
        return []
    problems = []
    if not isinstance(cfg.task, ResponseConfig):
        problems.append(f"trainer.chunked_cross_entropy=true: the loss of task={cfg.task.name} is not a causal LM's "
                        "next-token cross-entropy, so there are no vocabulary logits to chunk; it applies to "
                        "task=instruction and task=feedback")
    targets = cfg.method.targets() if isinstance(cfg.method, LoraConfig) else None
    if isinstance(targets, list) and "lm_head" in targets:
        problems.append("trainer.chunked_cross_entropy=true with lm_head in method.target_modules: the chunked loss "
                        "computes the logits from the output layer's own weight, which a LoRA on it would bypass; "
                        "leave lm_head out or drop trainer.chunked_cross_entropy")
    return problems
