"""How fast a run trains: real tokens per second, the share of padding, and model FLOPs utilisation.

The loop counts, per micro-batch, the real tokens (the ones of every `*attention_mask` in the
batch; all of `input_ids` for a packed, padding-free batch, which holds no padding) and the token
slots the batch held (its padded size). The real count stays on the device (`TokenCount`) and is
read only at log steps, like the running loss, so counting costs no host sync per step; under
`accelerate launch` the counts are summed across processes when read, so the figures are the
whole job's.

Model FLOPs utilisation (`mfu`) is the share of the devices' peak dense matmul throughput the
training does useful work at, the PaLM paper's definition (Chowdhery et al. 2022, appendix B):
6·N FLOPs per token (2·N forward, 4·N backward) over the peak. N counts every parameter the
forward pass multiplies with, frozen ones too (a LoRA run still runs the whole model), and leaves
out embedding tables, which are looked up, not multiplied (an input embedding tied to the output
projection is counted, since the projection is a matmul). Attention's own FLOPs and the
recomputation of gradient checkpointing are not counted, so `mfu` is comparable across settings.
A frozen weight needs no weight gradient, so a LoRA step does nearer 4·N per token than 6·N: its
`mfu` is that of the same model fully trained at that speed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ftcli.engine.state import LoopState

log = logging.getLogger(__name__)

TERA = 1e12


@dataclass(frozen=True)
class PeakFlops:
    """A GPU's peak dense throughput in TFLOPS by compute type (None: no such tensor cores)."""

    bf16: float | None
    fp16: float
    tf32: float | None
    fp32: float


# Peak dense TFLOPS from the vendor's data sheets, where those give figures "with sparsity" halved
# (NVIDIA H100 and H200 Tensor Core GPU data sheets, 2024; A100 data sheet, 2021; A10, L4 and L40S
# data sheets, 2023; Ada architecture whitepaper v1.01 appendix A for the RTX 4090 and Ampere
# GA102 whitepaper v2.0 table 9 for the RTX 3090, FP16/BF16 tensor with FP32 accumulate, which is
# what PyTorch uses; V100 data sheet, 2020; T4 data sheet, 2019). V100 and T4 have no bf16 or tf32
# tensor cores. The first pattern that matches `torch.cuda.get_device_name()` names the device.
PEAK_TFLOPS: list[tuple[str, str, PeakFlops]] = [
    ("H100 NVL", r"H100.*NVL", PeakFlops(bf16=835.5, fp16=835.5, tf32=417.5, fp32=60.0)),
    ("H100 PCIe", r"H100.*PCIe", PeakFlops(bf16=756.0, fp16=756.0, tf32=378.0, fp32=51.0)),
    ("H100 SXM", r"H100", PeakFlops(bf16=989.5, fp16=989.5, tf32=494.5, fp32=67.0)),
    ("H200 NVL", r"H200.*NVL", PeakFlops(bf16=835.5, fp16=835.5, tf32=417.5, fp32=60.0)),
    ("H200 SXM", r"H200", PeakFlops(bf16=989.5, fp16=989.5, tf32=494.5, fp32=67.0)),
    ("A100", r"A100", PeakFlops(bf16=312.0, fp16=312.0, tf32=156.0, fp32=19.5)),
    ("A10", r"\bA10\b", PeakFlops(bf16=125.0, fp16=125.0, tf32=62.5, fp32=31.2)),
    ("L40S", r"L40S", PeakFlops(bf16=362.05, fp16=362.05, tf32=183.0, fp32=91.6)),
    ("L4", r"\bL4\b", PeakFlops(bf16=121.0, fp16=121.0, tf32=60.0, fp32=30.3)),
    ("RTX 4090", r"RTX 4090", PeakFlops(bf16=165.2, fp16=165.2, tf32=82.6, fp32=82.6)),
    ("RTX 3090", r"RTX 3090(?! Ti)", PeakFlops(bf16=71.0, fp16=71.0, tf32=35.6, fp32=35.6)),
    ("V100S PCIe", r"V100S", PeakFlops(bf16=None, fp16=130.0, tf32=None, fp32=16.4)),
    ("V100 PCIe", r"V100.*PCIE", PeakFlops(bf16=None, fp16=112.0, tf32=None, fp32=14.0)),
    ("V100 SXM2", r"V100", PeakFlops(bf16=None, fp16=125.0, tf32=None, fp32=15.7)),
    ("T4", r"\bT4\b", PeakFlops(bf16=None, fp16=65.0, tf32=None, fp32=8.1)),
]


def batch_tokens(batch: Mapping[str, Any]) -> tuple[torch.Tensor, int]:
    """(real tokens on the batch's device, token slots) of one collated batch.

    Real tokens are the ones of every attention mask in it (`attention_mask`, and a second
    sequence's such as `rejected_attention_mask`); a batch with none (packed: one row of
    concatenated examples, told apart by `position_ids`) holds no padding, so all of its
    `input_ids` are real. The slots are the masks' (or `input_ids`') sizes: a shape, read with
    no sync.
    """
    masks = [v for k, v in batch.items() if k.endswith("attention_mask") and isinstance(v, torch.Tensor)]
    if not masks:
        ids = batch["input_ids"]
        return torch.tensor(ids.numel(), device=ids.device), ids.numel()
    real = masks[0].sum(dtype=torch.long)
    for mask in masks[1:]:
        real = real + mask.sum(dtype=torch.long)
    return real, sum(mask.numel() for mask in masks)


class TokenCount:
    """Real tokens and token slots of the batches trained since the last `take`: the real count
    summed on the device, the slots (shapes) on the host."""

    def __init__(self, device: torch.device | str) -> None:
        self.real = torch.zeros((), dtype=torch.long, device=device)
        self.slots = 0

    def add(self, batch: Mapping[str, Any]) -> None:
        real, slots = batch_tokens(batch)
        self.real += real.to(self.real.device)
        self.slots += slots

    def take(self, accelerator: Any) -> tuple[int, int]:
        """The counts since the last take (a host sync), summed across processes, and start again.

        Every process must call it at the same step under `accelerate launch`: it is a collective.
        """
        counts = torch.stack([self.real, torch.tensor(self.slots, device=self.real.device)])
        if accelerator.num_processes > 1:
            counts = accelerator.reduce(counts, reduction="sum")
        real, slots = (int(n) for n in counts.tolist())
        self.real.zero_()
        self.slots = 0
        return real, slots


def tokens_per_second(state: LoopState, seconds: float) -> float:
    return round(state.tokens / seconds, 1) if seconds else 0.0


def padding_fraction(state: LoopState) -> float:
    """Padding tokens over all the token slots the trained batches held (0 when nothing was counted)."""
    return round(1 - state.tokens / state.token_slots, 4) if state.token_slots else 0.0


def forward_parameters(model: nn.Module) -> int:
    """The parameters a forward pass multiplies with: all of the model's, frozen ones too, less its
    embedding tables, which are lookups (a table whose weight is also a linear layer's, a tied
    output projection, is a matmul and stays in)."""
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    lookups = {id(m.weight): m.weight.numel() for m in model.modules()
               if isinstance(m, nn.Embedding) and id(m.weight) not in linear}
    return sum(p.numel() for p in model.parameters()) - sum(lookups.values())


def device_peak(name: str) -> tuple[str, PeakFlops] | None:
    """The device in the peak-FLOPs table that `name` (as CUDA reports it) is, or None."""
    for label, pattern, peak in PEAK_TFLOPS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return label, peak
    return None


def peak_flops(peak: PeakFlops, dtype: torch.dtype, tf32: bool) -> float | None:
    """Peak FLOPs per second for matmuls in `dtype` (fp32 runs on TF32 tensor cores when `tf32`)."""
    if dtype == torch.bfloat16:
        tflops = peak.bf16
    elif dtype == torch.float16:
        tflops = peak.fp16
    else:
        tflops = peak.tf32 if tf32 and peak.tf32 is not None else peak.fp32
    return None if tflops is None else tflops * TERA


def utilisation(parameters: int, tokens_per_second: float, peak: float, processes: int = 1) -> float:
    """Model FLOPs utilisation: 6·N·tokens/s over the peak of all `processes` devices together."""
    return 6 * parameters * tokens_per_second / (peak * processes)


def model_flops_utilisation(model: nn.Module, tokens_per_second: float, dtype: torch.dtype, device_name: str,
                            processes: int = 1, tf32: bool = False) -> float | None:
    """`mfu` of a run on `processes` devices named `device_name`; None, with the reason logged, for a
    device missing from the peak table or a compute type it has no tensor cores for."""
    found = device_peak(device_name)
    if found is None:
        log.warning("mfu: no peak FLOPs known for %r; add it to ftcli.engine.throughput.PEAK_TFLOPS", device_name)
        return None
    label, peak = found
    flops = peak_flops(peak, dtype, tf32)
    if flops is None:
        log.warning("mfu: the %s has no %s tensor cores; no peak FLOPs to compare with", label, dtype)
        return None
    return round(utilisation(forward_parameters(model), tokens_per_second, flops, processes), 4)


def compute_dtype(mixed_precision: str, model: nn.Module) -> torch.dtype:
    """The dtype matmuls run in: the autocast dtype of accelerate's `mixed_precision` mode, else the
    model's own (a model loaded in bf16 trains in bf16 without autocast)."""
    if mixed_precision == "bf16":
        return torch.bfloat16
    if mixed_precision == "fp16":
        return torch.float16
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def speed_figures(state: LoopState, model: nn.Module, mixed_precision: str) -> dict[str, Any]:
    """The `train` section's speed figures: `tokens_per_second`, `padding_fraction` and, on a
    CUDA device, `mfu` (null when the device's peak is unknown)."""
    from accelerate import PartialState

    figures: dict[str, Any] = {
        "tokens_per_second": tokens_per_second(state, state.train_seconds),
        "padding_fraction": padding_fraction(state),
    }
    process = PartialState()
    if process.device.type == "cuda":
        tf32 = torch.get_float32_matmul_precision() != "highest"  # "high" and "medium" let fp32 matmuls use TF32
        figures["mfu"] = model_flops_utilisation(
            model, figures["tokens_per_second"], compute_dtype(mixed_precision, model),
            torch.cuda.get_device_name(process.device), process.num_processes, tf32)
    return figures
