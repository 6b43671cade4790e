"""How LoRA's A and B start (`method.init`), and what a start that changes the base means for saving.

`default` is LoRA's own (A random, B zero: the adapted model starts as the base); `gaussian` and
`orthogonal` change only how A (and B) are drawn. PiSSA (Meng et al. 2024) starts A and B from
the top singular vectors of each target weight and leaves the rest (the residual) in the base, and
OLoRA from a QR decomposition, so base + adapter still equals the original weight at the start,
but the base held in memory is no longer the original. An adapter trained on that residual would
be wrong on the original base, so `save_converted` writes it as a plain LoRA instead: PEFT's
`path_initial_model_for_weight_conversion` turns the change the training made,
`AB - A0B0 = [A | A0][B | -B0]`, into an adapter of twice the rank that loads on the original
base model, as `eval`, `predict` and `export` build it. LoftQ (Li et al. 2023) fits A and B to
the error of quantising the base to 4 bits, so it needs `model.load_in_4bit=true` (PEFT's
`replace_lora_weights_loftq`, on a CUDA GPU); the base then stays quantised everywhere the run is
loaded, and the adapter is saved as it is.
"""

from __future__ import annotations

import re
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ftcli.methods.base import AdaptedModel

PLAIN = ("default", "gaussian", "orthogonal", "olora", "pissa", "loftq")
CHANGES_BASE = re.compile(r"^(pissa|pissa_niter_\d+|olora)$")
# the starting adapter of each model trained from a base-changing start, for `save_converted`
_STARTS: weakref.WeakKeyDictionary[Any, dict[str, torch.Tensor]] = weakref.WeakKeyDictionary()


@contextmanager
def quiet_conversion_advice() -> Iterator[None]:
    """Without PEFT's warning that PiSSA and OLoRA change the base and should be converted: `save_converted` does."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*changes the base weights of the model")
        yield


def init_problems(init: str, use_dora: bool = False) -> list[str]:
    if changes_base(init) and use_dora:
        return [f"method.init={init} with method.use_dora=true: the adapter is saved converted to a plain LoRA "
                "(the change from its start), which DoRA's magnitudes do not survive; drop one of them"]
    if init in PLAIN or CHANGES_BASE.match(init):
        return []
    return [f"method.init={init!r} is not a LoRA initialisation; use one of: {', '.join(PLAIN)}, "
            "or pissa_niter_<N> (PiSSA by fast SVD with N subspace iterations, e.g. pissa_niter_4)"]


def changes_base(init: str) -> bool:
    """Whether the initialisation moves part of the base weights into the adapter (PiSSA, OLoRA)."""
    return bool(CHANGES_BASE.match(init))


def peft_value(init: str) -> Any:
    """`init_lora_weights` as PEFT takes it. LoftQ starts as default LoRA and is fitted after (`after_apply`)."""
    return True if init in ("default", "loftq") else init


def after_apply(model: AdaptedModel, init: str) -> None:
    """LoftQ's fit on a 4-bit base; for PiSSA and OLoRA, a copy of the starting adapter."""
    from peft import get_peft_model_state_dict

    if init == "loftq":
        from peft import replace_lora_weights_loftq

        replace_lora_weights_loftq(model)
    elif changes_base(init):
        _STARTS[model] = {name: tensor.detach().clone() for name, tensor in get_peft_model_state_dict(model).items()}


def save_converted(model: AdaptedModel, directory: Path) -> bool:
    """Save a PiSSA or OLoRA adapter as the plain LoRA that loads on the original base; False (and
    nothing written) for a model that did not start that way.

    PEFT's conversion keeps only the LoRA matrices, so the other saved weights (the task head, as
    `modules_to_save`) are put back beside them: a converted classifier reloads with its trained head.
    """
    start = _STARTS.get(model)
    if start is None:
        return False
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    weights = directory / "adapter_model.safetensors"
    with tempfile.TemporaryDirectory() as scratch:
        initial = Path(scratch) / "initial_adapter"
        initial.mkdir()
        save_file({k: v.contiguous() for k, v in start.items()}, str(initial / "adapter_model.safetensors"))
        # PEFT writes the starting adapter's config there itself, then subtracts A0B0
        with quiet_conversion_advice():
            model.save_pretrained(str(directory), safe_serialization=True,
                                  path_initial_model_for_weight_conversion=str(initial))
    converted = load_file(str(weights))
    rest = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items() if k not in converted}
    if rest:
        save_file({**converted, **rest}, str(weights), metadata={"format": "pt"})
    return True
