"""Layer-wise learning-rate decay (`trainer.layer_decay`, d): the lower a layer, the slower it trains.

Of a model with L transformer layers, layer i (0-based from the input) trains at lr·d^(L−i), the
embeddings at lr·d^(L+1), and everything else at lr: the task head, what sits above the last
layer (a final norm, BERT's pooler), and parameters a method adds outside the layers (PEFT's
virtual tokens and prefix encoder, which hold no pretrained knowledge to keep). A method's own
parameters inside a layer (LoRA matrices, bottleneck adapters) train at that layer's rate.

The layer of a parameter is read from its name: the first `<list>.<index>.` component, where the
list is `layer` (BERT, RoBERTa, DistilBERT), `h` (GPT-2), `layers` (Llama, Mistral, Qwen) or
`block` (T5), whatever prefix a PEFT wrapper adds in front. The embeddings are the components
`embeddings`, `wte`, `wpe`, `embed_tokens`, `embed_positions` and `shared`. An output layer tied
to the input embeddings is one tensor with them and trains at their rate.

An encoder-decoder counts as one stack from input to output: the encoder's layers, then the
decoder's (so T5 with 6 + 6 layers has L = 12, and the decoder's top layer trains at lr·d), since
every decoder layer reads the encoder's output; the shared embeddings, read by both stacks,
train at lr·d^(L+1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)(?:\.|$)")
EMBEDDINGS = frozenset({"embeddings", "wte", "wpe", "embed_tokens", "embed_positions", "shared"})


@dataclass(frozen=True)
class Depths:
    """Where each stack of layers starts in the model's depth, and the depth L of all of them together."""

    offsets: dict[str, int]  # stack prefix (`bert.encoder`, `encoder`, `decoder`) → its first layer's depth
    layers: int

    @classmethod
    def of(cls, names: Iterable[str]) -> Depths:
        """The stacks among parameter `names` (all of the model's, trained or not), in the order the model
        registers them: the input side first."""
        counts: dict[str, int] = {}
        for name in names:
            match = LAYER.search(name)
            if match:
                stack = name[:match.start()]
                counts[stack] = max(counts.get(stack, 0), int(match.group(1)) + 1)
        offsets, depth = {}, 0
        for stack, count in counts.items():
            offsets[stack], depth = depth, depth + count
        return cls(offsets, depth)

    def exponent(self, name: str) -> int:
        """The power of d a parameter's learning rate is multiplied by."""
        match = LAYER.search(name)
        if match and name[:match.start()] in self.offsets:
            return self.layers - (self.offsets[name[:match.start()]] + int(match.group(1)))
        if EMBEDDINGS & set(name.split(".")):
            return self.layers + 1
        return 0


def layer_factors(names: Iterable[str], decay: float) -> Callable[[str], float] | None:
    """The learning-rate factor by parameter name for decay `decay`; None when no layer is found among `names`."""
    depths = Depths.of(names)
    if not depths.layers:
        return None
    return lambda name: decay ** depths.exponent(name)


def times(first: Callable[[str], float] | None, second: Callable[[str], float] | None) -> Callable[[str], float] | None:
    """Two learning-rate factors by parameter name multiplied (a method's LoRA+ ratio and the layer decay)."""
    if first is None or second is None:
        return first or second
    return lambda name: first(name) * second(name)
