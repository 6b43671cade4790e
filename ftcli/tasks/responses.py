"""What the tasks share whose causal language model learns to write a response to a prompt.

`instruction` and `feedback` both turn a row into a prompt and an answer that carries the loss,
batch them padded (or packed) for the loss, and generate from left-padded prompts, stopping where
the template ends an assistant turn. `ResponseConfig` holds the settings that needs,
`ResponseKind` the model it trains (a left-to-right LM) and `ResponseTask` the rest of the bound
task; each task adds how its rows become segments and how its answers are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ftcli.config.schema import DataConfig, GenerationConfig, TaskConfig
from ftcli.data.splits import Splits
from ftcli.engine.step import IGNORE_INDEX, Collate, LossUnit, ModelLoss, TrainingStep
from ftcli.tasks.base import Feature
from ftcli.tasks.chat import Renderer, Template
from ftcli.tasks.generating import GeneratingTask

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from ftcli.models.sources import ModelClass


@dataclass
class ResponseConfig(TaskConfig):
    """How responses are written (`template`), batched (`packing`) and generated."""

    template: Template = Template.auto
    packing: bool = False
    generate_in_eval: bool = True
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def packs_examples(self) -> bool:
        return self.packing

    def validate(self) -> list[str]:
        return super().validate() + self.generation.validate()


R = TypeVar("R", bound=ResponseConfig)


class ResponseKind(Generic[R]):
    """The model side of a response task: a causal LM, with no label set (the vocabulary is it)."""

    def model_class(self) -> ModelClass:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def model_config(self, task: R, model: PretrainedConfig) -> dict[str, Any]:
        """A left-to-right language model (`as_decoder`), and no KV cache when packing.

        `transformers` reads packed position ids as separate sequences only when the forward pass
        keeps no KV cache; with one, packed examples would attend to each other.
        """
        return {**as_decoder(model), **({"use_cache": False} if task.packing else {})}

    def label_names(self, splits: Splits, task: R, data: DataConfig) -> list[str]:
        return []


class ResponseTask(GeneratingTask[R]):
    """A bound response task: the loss over the answer's tokens, and generation from each prompt."""

    @property
    def generation(self) -> GenerationConfig:
        return self.cfg.generation

    @property
    def generate_in_eval(self) -> bool:
        return self.cfg.generate_in_eval

    def collator(self) -> Collate:
        """Pads batches for the loss (or flattens them, with `task.packing`), dropping generation-only fields."""
        return response_collator(self.tokenizer, self.cfg.packing)

    def training_step(self) -> TrainingStep:
        return ModelLoss(LossUnit.next_tokens)

    def stop_ids(self) -> list[int]:
        """Where generation stops: the end of an assistant turn in the template the run trained with."""
        return Renderer(self.tokenizer, self.cfg.template).stop_ids()

    def prompts(self, features: list[Feature]) -> list[Feature]:
        """What generation starts from: the prompt of each feature."""
        return [{"input_ids": f.get("prompt_ids", f["input_ids"])} for f in features]

    def prompt_collator(self) -> Collate:
        return left_padded(self.tokenizer)


def as_decoder(model: PretrainedConfig) -> dict[str, Any]:
    """Model-config settings that make a model a left-to-right language model: `is_decoder` for
    encoders that can be one.

    Only configs of models that run either way (BERT-likes: the embedded MiniLM) have an
    `is_decoder` field; set, it gives them causal attention. Causal LMs (GPT-2, Llama, Qwen)
    are decoders already and have no such field, so `from_pretrained` would hand it to their
    constructor, which refuses it.
    """
    encoder = hasattr(model, "is_decoder") and not getattr(model, "is_encoder_decoder", False)
    return {"is_decoder": True} if encoder else {}


def response_collator(tokenizer: PreTrainedTokenizerBase, packing: bool) -> Collate:
    """Pads features with their labels for the loss (or flattens them into one row, `packing`),
    dropping the fields only generation and scoring read."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    pad: DataCollatorWithFlattening | DataCollatorForSeq2Seq
    keys: tuple[str, ...]
    if packing:
        pad = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
        keys = ("input_ids", "labels")
    else:
        pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
        keys = ("input_ids", "attention_mask", "labels")
    return lambda features: pad([{k: f[k] for k in keys if k in f} for f in features])


def left_padded(tokenizer: PreTrainedTokenizerBase) -> Collate:
    """Batches prompts left-padded, so every prompt in a batch ends where generation begins."""
    return lambda features: tokenizer.pad(features, padding=True, padding_side="left", return_tensors="pt")


