"""Label words' scores from a language model: one row of scores per prompt, one score per label.

`LabelWordHead` wraps the trained language model as a classifier whose logits are those scores,
and whose loss is their cross-entropy against the labels. Training (`LabelWordLoss`), evaluation
and prediction all run the model through it, so they score alike, and the class scores are what
`ModelLoss.scores` gives the add-ons that rework a loss (label smoothing, R-Drop, distillation).

- **Causal LM**: the log-likelihood of the word's tokens after the prompt (`task.score=mean`: per
  token). Prompts are left-padded, so every prompt ends at the last position. With one-token words
  one forward pass scores them all from the last position's logits; longer words are read after
  each prompt, one sequence per label.
- **Encoder-decoder**: the log-likelihood of the word as the decoder's output for the prompt, one
  decoder sequence per label.
- **Masked LM**: the head's logit of each word's first (or only) token at the mask.

Only the logits that score a word are computed: a causal LM's last positions (`logits_to_keep`),
and a masked LM's output layer at the mask alone. A vocabulary-sized row per token would cost a
small encoder such as MiniLM more than the encoder itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ftcli.engine.step import IGNORE_INDEX, Batch, ClassScores, LossUnit, ModelLoss, Objective, cross_entropy
from ftcli.models.language_models import LanguageModel
from ftcli.tasks.label_prompts import MASK_INDEX, Score

if TYPE_CHECKING:
    from accelerate import Accelerator


@dataclass(frozen=True)
class LabelWords:
    """What the label words are scored as: their token ids, by which kind of model, summed or per token."""

    ids: list[list[int]]  # each label's word, in label order
    lm: LanguageModel
    score: Score = Score.sum
    pad_id: int = 0  # the tokenizer's padding token, which fills the rows words are appended to

    @property
    def longest(self) -> int:
        return max(len(word) for word in self.ids)


class LabelWordHead(nn.Module):
    """A language model as a classifier: its logits are the label words' scores after each prompt.

    `output_layer` is a masked LM's output embeddings, computed only at the mask; it is given rather
    than asked for, since a model that `accelerate` wraps for several processes does not hand it out.
    """

    def __init__(self, lm: nn.Module, words: LabelWords, output_layer: nn.Module | None = None) -> None:
        super().__init__()
        self.lm, self.words = lm, words
        self.output_layer = output_layer
        self.train(lm.training)  # in the model's own mode, which evaluation hands back when it ends

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                mask_index: torch.Tensor | None = None) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        if self.words.lm is LanguageModel.masked:
            assert mask_index is not None  # the masked-LM collator always puts it in
            scores = self._masked(input_ids, attention_mask, mask_index)
        else:
            scores = self._causal(input_ids, attention_mask) if self.words.lm is LanguageModel.causal \
                else self._seq2seq(input_ids, attention_mask)
            if self.words.score is Score.mean:
                scores = scores / torch.tensor([len(w) for w in self.words.ids], device=scores.device)
        loss = cross_entropy(ClassScores(scores, labels)) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=scores)

    def _masked(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        assert self.output_layer is not None  # `LabelWordLoss.prepare` and the task's `outputs` give it
        with _only_at(self.output_layer, at, input_ids.shape[1]):
            logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits
        first = torch.tensor([word[0] for word in self.words.ids], device=logits.device)
        return logits[:, 0, first].float()

    def _causal(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        words, rows = self.words.ids, len(input_ids)
        if self.words.longest == 1:
            logits = self._run_causal(input_ids, attention_mask, keep=1)[:, -1]
            first = torch.tensor([word[0] for word in words], device=logits.device)
            return torch.log_softmax(logits, -1)[:, first]
        # each prompt followed by each word, padded on the left again so that every word ends its row
        longest, ids, mask = self.words.longest, [], []
        for word in words:
            front, tokens = longest - len(word), _tokens(word, rows, input_ids)
            ids.append(torch.cat([input_ids.new_full((rows, front), self.words.pad_id), input_ids, tokens], 1))
            ones = torch.ones_like(tokens)
            mask.append(torch.cat([attention_mask.new_zeros((rows, front)), attention_mask, ones], 1))
        logits = self._run_causal(torch.stack(ids, 1).flatten(0, 1), torch.stack(mask, 1).flatten(0, 1), longest + 1)
        log_probs = torch.log_softmax(logits[:, :-1], -1)  # position j predicts token j + 1: the word's own
        targets = _targets(words, longest, input_ids.device, right=True).repeat(rows, 1)  # row r·L + k: prompt r, word k
        return _summed(log_probs, targets).view(rows, len(words))

    def _run_causal(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: int) -> torch.Tensor:
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift real positions
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                       logits_to_keep=keep).logits.float()

    def _seq2seq(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        words, rows = self.words.ids, len(input_ids)
        targets = _targets(words, self.words.longest, input_ids.device, right=False).repeat(rows, 1)
        logits = self.lm(input_ids=input_ids.repeat_interleave(len(words), 0),
                         attention_mask=attention_mask.repeat_interleave(len(words), 0), labels=targets).logits
        return _summed(torch.log_softmax(logits.float(), -1), targets).view(rows, len(words))


def output_layer(model: Any, words: LabelWords) -> nn.Module | None:
    """The output embeddings of a masked LM (a `transformers` model, or PEFT's wrapper, which hands
    over its base model's), which `LabelWordHead` computes only at the mask; None for other kinds."""
    return model.get_output_embeddings() if words.lm is LanguageModel.masked else None


@contextmanager
def _only_at(layer: nn.Module, at: torch.Tensor, width: int) -> Iterator[None]:
    """While inside, `layer` (a masked LM's output layer) reads only each row's state at `at`.

    A method's virtual tokens come before the input (prompt tuning), so positions count from the
    end of the `width` input tokens.
    """

    def pick(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        hidden = args[0]
        rows = torch.arange(len(hidden), device=hidden.device)
        return (hidden[rows, at + hidden.shape[1] - width][:, None],)

    handle = layer.register_forward_pre_hook(pick)
    try:
        yield
    finally:
        handle.remove()


def _tokens(word: list[int], rows: int, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(word, device=like.device, dtype=like.dtype).expand(rows, -1)


def _targets(words: list[list[int]], width: int, device: torch.device, right: bool) -> torch.Tensor:
    """Each word's tokens in a row of `width`, the rest IGNORE_INDEX: at its end (`right`, where a
    causal LM's appended word is) or at its start (where a decoder begins)."""
    targets = torch.full((len(words), width), IGNORE_INDEX, dtype=torch.long, device=device)
    for row, word in enumerate(words):
        targets[row, slice(width - len(word), width) if right else slice(0, len(word))] = torch.tensor(word)
    return targets


def _summed(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    picked = log_probs.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return (picked * (targets != IGNORE_INDEX)).sum(-1)


@dataclass
class LabelWordLoss(ModelLoss):
    """The cross-entropy over the label words' scores, a mean over prompts."""

    words: LabelWords = field(kw_only=True)
    unit: LossUnit = LossUnit.rows
    objective: Objective = Objective.classes
    output_layer: nn.Module | None = field(default=None, repr=False)

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        self.output_layer = output_layer(model, self.words)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return super().loss(LabelWordHead(model, self.words, self.output_layer), batch)

    def scores(self, model: nn.Module, batch: Batch) -> tuple[Any, list[ClassScores]]:
        return super().scores(LabelWordHead(model, self.words, self.output_layer), batch)


@dataclass(frozen=True)
class PromptCollator:
    """Pads prompts into a batch: on the left for a causal LM, whose prompts must all end at the
    last position, on the right otherwise; labels and mask positions come along as tensors."""

    pad_id: int
    left: bool

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            place = slice(width - n, width) if self.left else slice(0, n)
            ids[row, place], mask[row, place] = torch.tensor(feature["input_ids"]), 1
        batch = {"input_ids": ids, "attention_mask": mask}
        for key in ("labels", MASK_INDEX):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features])
        return batch
