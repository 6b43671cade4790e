"""ftcli's own adapter format, for methods PEFT cannot save: bottleneck adapters and mixed methods.

A folder holds two files:

- `ftcli_method.json`: `{"format": 1, "method": <registered name>, "config": {...method settings}}`
- `trainable.safetensors`: every trainable tensor of the adapted model, by parameter name

Loading re-applies the method to a freshly built base model (adapter layers are inserted
deterministically) and then fills in the saved tensors, checking that every trainable tensor
is present and nothing is left over. PEFT's own registry (`register_peft_method`) only accepts
names from its closed `PeftType` enum, so these methods cannot be saved as PEFT folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ftcli.errors import ModelError
from ftcli.methods.base import M, MethodBase

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel

CONFIG_FILE = "ftcli_method.json"
WEIGHTS_FILE = "trainable.safetensors"
FORMAT = 1


class NativeMethod(MethodBase[M]):
    """Base for methods saved in ftcli's format; subclasses supply `apply`.

    Not mergeable: bottleneck layers (and a mixed method's virtual tokens) are extra computation,
    so `merge` keeps `MethodBase`'s refusal.
    """

    artifact = "adapter"
    mergeable = False

    def apply(self, model: PreTrainedModel, cfg: M, head: list[str]) -> AdaptedModel:
        raise NotImplementedError

    def save(self, model: AdaptedModel, directory: Path, cfg: M) -> None:
        from safetensors.torch import save_file

        from ftcli.config.schema import plain

        tensors = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
        save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        document = {"format": FORMAT, "method": cfg.name, "config": plain(cfg)}
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")

    def load(self, base: PreTrainedModel, directory: Path) -> AdaptedModel:
        return load_adapter(base, directory)


def load_adapter(base: PreTrainedModel, directory: str | Path) -> AdaptedModel:
    """The trained model from a freshly built task model `base` and an ftcli adapter folder.

    `base` must be the same architecture, weights and labels the adapter was trained on.
    """
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from ftcli.methods.base import METHODS, head_modules

    directory = Path(directory)
    document = json.loads((directory / CONFIG_FILE).read_text())
    if document.get("format") != FORMAT:
        raise ModelError(f"{directory / CONFIG_FILE} has format {document.get('format')!r}; this ftcli reads {FORMAT}")
    entry = METHODS.get(document["method"])
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(entry.config_cls), document["config"]))
    model = entry.impl.apply(base, cfg, head_modules(base))
    state = load_file(str(directory / WEIGHTS_FILE))
    params = dict(model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(trainable - state.keys()), sorted(state.keys() - params.keys())
    if missing or unexpected:
        raise ModelError(
            f"{directory} does not fit this base model: "
            + "; ".join(f"{label}: {', '.join(names[:5])}" for label, names in
                        (("missing", missing), ("unexpected", unexpected)) if names),
            hint="load it onto the base model and labels it was trained with (see the run's config.yaml)",
        )
    model.load_state_dict(state, strict=False)
    return model
