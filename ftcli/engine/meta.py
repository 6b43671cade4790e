"""First-order meta-learning of a classifier's encoder: Reptile and FOMAML, one episode per outer step.

The model is the one a classification task fine-tunes, with the last linear layer of its head
replaced by the identity (`without_last_layer`): its `logits` are then the features that layer
would classify (BERT's pooler output, GPT-2's last token, RoBERTa's dense layer), so what is
meta-learned is exactly what an ordinary run's fresh head reads. Everything the method trains
(with `method=full`, every weight) is θ.

Each episode has its own classes, so its head is new: a linear layer over them, started from
the support rows' class means as in Proto-MAML (Triantafillou et al., 2020): W_c = 2μ_c and
b_c = −‖μ_c‖², which scores h by ‖h‖² − ‖h − μ_c‖², the nearest class mean. A zero head would
score every query as class 0 before adapting, and pass no gradient to the encoder in the first
inner step. The means are taken without gradient, as befits a first-order method; the head is
adapted with θ and dropped after the episode.

The inner loop is plain SGD (no momentum, no state), `steps` full-batch steps on the support
rows from θ to θ', so there is nothing per episode to reset or checkpoint. The outer step is a
torch SGD optimiser over θ whose learning rate is the meta step size, handed the direction as
the gradient: θ − θ' for Reptile, so θ ← θ + ε(θ' − θ); the query loss's gradient at θ' for
FOMAML, so θ ← θ − β·∇L_query(θ'). Accuracy and loss are measured in eval mode (no dropout); the
inner steps and the query gradient run in the mode the caller left the model in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ftcli.config.meta import MetaAlgorithm
from ftcli.engine.eval_mode import evaluating
from ftcli.engine.step import Batch, ClassScores, cross_entropy
from ftcli.errors import ModelError

Autocast = Callable[[], AbstractContextManager[Any]]


@dataclass
class EpisodeBatch:
    """One episode's support and query rows, collated on the model's device; their `labels` are the
    episode's class ids, 0 to `ways` − 1."""

    support: Batch
    query: Batch
    ways: int


@dataclass(frozen=True)
class InnerLoop:
    """How an episode adapts θ, and which outer direction follows."""

    algorithm: MetaAlgorithm
    steps: int
    lr: float


@dataclass(frozen=True)
class Adaptation:
    """One episode's query rows, scored in eval mode before and after the inner steps."""

    accuracy_before: float  # the prototype head on θ
    accuracy: float  # the adapted head on θ'
    loss: float  # the cross-entropy after adapting


@dataclass
class _Adapted:
    params: list[nn.Parameter]  # θ, adapted to θ' while the episode is open
    starts: list[torch.Tensor]  # θ itself, put back when it closes
    head: nn.Linear
    figures: Adaptation


def without_last_layer(model: nn.Module, head: list[str]) -> nn.Module:
    """`model`, in place, with the last linear layer of its head modules `head` replaced by the identity.

    Raises:
        ModelError: when the head holds no linear layer to replace.
    """
    layers = [name for part in head for name, module in model.get_submodule(part).named_modules(prefix=part)
              if isinstance(module, nn.Linear)]
    if not layers:
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ModelError(
            f"this {model_type} model's classification head ({', '.join(head) or 'none'}) has no linear layer "
            "for an episode's classes to replace",
            hint="meta-train a model whose sequence-classification head ends in a linear layer "
            "(BERT-like encoders, GPT-2)",
        )
    model.set_submodule(layers[-1], nn.Identity())
    return model


def meta_step(model: nn.Module, episode: EpisodeBatch, inner: InnerLoop, optimizer: torch.optim.Optimizer,
              autocast: Autocast) -> Adaptation:
    """One outer step on `episode`: adapt θ to θ', then let `optimizer` move θ along the algorithm's direction."""
    with _adapting(model, episode, inner, autocast) as adapted:
        if inner.algorithm is MetaAlgorithm.fomaml:
            direction = _gradient(model, adapted.head, episode.query, adapted.params, autocast)
        else:
            direction = [start - p.detach() for p, start in zip(adapted.params, adapted.starts)]
    for param, grad in zip(adapted.params, direction):
        param.grad = grad
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return adapted.figures


def adaptation(model: nn.Module, episode: EpisodeBatch, inner: InnerLoop, autocast: Autocast) -> Adaptation:
    """How well `episode`'s queries are scored before and after adapting to it; θ is left as it was."""
    with _adapting(model, episode, inner, autocast) as adapted:
        return adapted.figures


def prototype_head(features: torch.Tensor, labels: torch.Tensor, ways: int) -> nn.Linear:
    """A linear layer scoring class c by ‖h‖² − ‖h − μ_c‖², μ_c the mean of class c's `features`."""
    means = torch.stack([features[labels == c].mean(0) for c in range(ways)])
    head = nn.Linear(features.shape[1], ways, device=features.device)
    with torch.no_grad():
        head.weight.copy_(2 * means)
        head.bias.copy_(-(means**2).sum(1))
    return head


def features(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The pooled features of `batch` (the model's `logits` once its last layer is the identity), in float32."""
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()


@contextmanager
def _adapting(model: nn.Module, episode: EpisodeBatch, inner: InnerLoop, autocast: Autocast) -> Iterator[_Adapted]:
    """θ adapted to `episode` inside the block, and put back when it ends (whatever ends it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    starts = [p.detach().clone() for p in params]
    try:
        support, query = episode.support, episode.query
        with evaluating(model), torch.no_grad(), autocast():
            head = prototype_head(features(model, support), support["labels"], episode.ways)
            before = _accuracy(head(features(model, query)), query["labels"])
        trained = [*params, *head.parameters()]
        for _ in range(inner.steps):
            grads = _gradient(model, head, support, trained, autocast)
            with torch.no_grad():
                for param, grad in zip(trained, grads):
                    param.sub_(grad, alpha=inner.lr)
        with evaluating(model), torch.no_grad(), autocast():
            logits = head(features(model, query))
            loss = float(cross_entropy(ClassScores(logits, query["labels"])))
            figures = Adaptation(before, _accuracy(logits, query["labels"]), loss)
        yield _Adapted(params, starts, head, figures)
    finally:
        with torch.no_grad():
            for param, start in zip(params, starts):
                param.copy_(start)


def _gradient(model: nn.Module, head: nn.Linear, batch: Batch, params: list[nn.Parameter],
              autocast: Autocast) -> list[torch.Tensor]:
    """The gradient of `batch`'s cross-entropy under `head` with respect to `params` (zero for a
    parameter the forward pass does not reach)."""
    with autocast():
        loss = cross_entropy(ClassScores(head(features(model, batch)), batch["labels"]))
    grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    return list(grads)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean())
