"""What else to turn, after the batch size, when a training step does not fit in memory.

The levers are named in the order they cost least for what they save: gradient checkpointing
(exact, about a third slower), the chunked next-token cross-entropy (exact; it saves the most
for causal LMs with a large vocabulary), lower precision, an 8-bit optimiser state, a 4-bit
base under LoRA (QLoRA, for a model whose weights alone fill the GPU), and DeepSpeed's optimiser
offload to CPU memory. A lever the run already pulls is left out.
"""

from __future__ import annotations

from ftcli.config.schema import OptimizerName, Precision, TrainerConfig


def memory_levers(cfg: TrainerConfig) -> list[str]:
    levers = []
    if not cfg.gradient_checkpointing:
        levers.append("trainer.gradient_checkpointing=true (recomputes activations: same weights, slower steps)")
    levers.append("a smaller task.max_length")
    if not cfg.chunked_cross_entropy:
        levers.append("trainer.chunked_cross_entropy=true (causal LMs: no full logits, most useful with a large "
                      "vocabulary)")
    if cfg.precision in (Precision.auto, Precision.fp32):
        levers.append("trainer.precision=bf16")
    if cfg.optimizer is OptimizerName.adamw:
        levers.append("trainer.optimizer=paged_adamw_8bit (8-bit optimiser state; CUDA)")
    levers.append("model.load_in_4bit=true with method=lora (QLoRA: a 4-bit base for a big model; CUDA)")
    levers.append("DeepSpeed ZeRO with the optimiser offloaded to CPU memory (accelerate launch --use_deepspeed "
                  "--offload_optimizer_device cpu)")
    return levers
