"""Where a model takes prefix tuning's keys and values: its per-layer key/value cache argument.

PEFT hands prefix tuning's learned keys and values to the task model's forward, or, when that does
not take them, to its backbone's (the first `PreTrainedModel` child), as `past_key_values`; before it
calls, it looks for that name in the forward's signature. Newer `transformers` call the argument
`cache` (from 5.24 on, with `past_key_values` a deprecated alias that the signature does not show,
and that 5.40 removes), so PEFT would find no place for the prefix on BERT, RoBERTa or GPT-2 and
stop. `accept_past_key_values` gives such a module a forward that takes `past_key_values` and
passes it on as `cache`, so one code path serves both namings. PEFT itself has no such switch,
which is why it is written here.
"""

from __future__ import annotations

import inspect
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

CACHE_ARGUMENTS = ("past_key_values", "cache")  # the older name first: what PEFT passes


def prefix_receivers(model: nn.Module) -> list[nn.Module]:
    """The modules PEFT may hand the prefix to: the task model, then its backbone if it has one."""
    from transformers import PreTrainedModel

    backbone = next((child for _, child in model.named_children() if isinstance(child, PreTrainedModel)), None)
    return [m for m in (model, backbone) if m is not None]


def cache_argument(module: nn.Module) -> str | None:
    """The name under which `module.forward` takes a per-layer key/value cache, or None if it takes none."""
    parameters = inspect.signature(module.forward).parameters
    return next((name for name in CACHE_ARGUMENTS if name in parameters), None)


def takes_prefix(model: nn.Module) -> bool:
    """Whether PEFT can hand this model a prefix: the model or its backbone takes a per-layer cache."""
    return any(cache_argument(m) is not None for m in prefix_receivers(model))


def accept_past_key_values(model: nn.Module) -> None:
    """Let every module PEFT may call with `past_key_values` take it, whatever its forward names it.

    Only modules that call the cache `cache` change, and only on this instance; the forward is bound
    to the module, so a deep copy's forward is bound to the copy.
    """
    for module in prefix_receivers(model):
        if cache_argument(module) == "cache":
            module.forward = types.MethodType(_taking_past_key_values(type(module).forward), module)


def _taking_past_key_values(forward: Any) -> Any:
    """`forward` (a class's, unbound) also taking `past_key_values`, passed on as `cache`.

    The wrapper shows `forward`'s own parameters plus `past_key_values` as its signature:
    `generate` checks its inputs against the forward's signature and refuses what it cannot
    find there (`input_ids` and `attention_mask` too, behind a bare `*args, **kwargs`).
    """

    def wrapper(self: nn.Module, *args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return forward(self, *args, **kwargs)

    signature = inspect.signature(forward)
    params = list(signature.parameters.values())
    extra = inspect.Parameter("past_key_values", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    wrapper.__signature__ = signature.replace(parameters=[*params[:at], extra, *params[at:]])  # type: ignore[attr-defined]
    return wrapper
