"""Rebuilding a trained model from a run directory alone: config, labels, tokenizer, weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ftcli.config.schema import DataConfig, TaskConfig, TrainConfig
from ftcli.engine.frozen import FrozenModels, ScoreTexts
from ftcli.errors import FtcliError, ModelError, RunDirError, first_line
from ftcli.methods import METHODS, Method
from ftcli.models.loading import build_model, load_config, prepare_tokenizer, sync_pad_token
from ftcli.runs.directory import LABELS, RunDir, read_config
from ftcli.tasks import TASKS, Task, TaskKind
from ftcli.tasks.pipeline import row_predictions
from ftcli.tasks.reward_model import RewardModelConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.methods.base import AdaptedModel

T = TypeVar("T")
DAMAGED_HINT = "the run directory is incomplete or damaged: restore it from a copy, or train again"
REWARD = "reward"  # the field a reward model's predictions hold its score in
REWARD_COLUMNS = ("prompt", "response")  # the columns of the rows a reward model scores, unless it names its own


@dataclass
class TrainedRun:
    """A finished run, loaded: its config and labels, its model and tokenizer, and its task bound to them."""

    cfg: TrainConfig
    labels: list[str]
    kind: TaskKind[Any]
    task: Task[Any]  # `kind` bound to cfg.task, cfg.data, labels and tokenizer
    method: Method[Any]
    model: AdaptedModel
    tokenizer: PreTrainedTokenizerBase
    frozen: FrozenModels

    def rebound(self, data: DataConfig | None = None, task: TaskConfig | None = None) -> TrainedRun:
        """The run with other data columns or task settings (`eval`'s and `predict`'s overrides) in
        its config, and its task bound to them."""
        cfg = replace(self.cfg, data=data or self.cfg.data, task=task or self.cfg.task)
        bound = self.kind.bind(cfg.task, cfg.data, self.labels, self.tokenizer, self.frozen)
        return replace(self, cfg=cfg, task=bound)


def frozen_models(cfg: TrainConfig, kind: TaskKind[Any], method: Method[Any], labels: list[str],
                  tokenizer: PreTrainedTokenizerBase) -> FrozenModels:
    """The reference model of a run: its method's adaptation switched off, or else the base model
    the run started from, loaded again when first asked for; reward models load with `reward_scorer`."""

    def load_base() -> PreTrainedModel:
        import torch

        # under the run's seed, as `train` built the model it trains: weights the checkpoint lacks
        # (a new head, MiniLM's language-model transform) start as the trained model's did
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            settings = kind.model_config(cfg.task, load_config(cfg.model))
            base = build_model(cfg.model, kind.model_class(), labels, **settings)
        sync_pad_token(base, tokenizer)
        return base

    return FrozenModels(method.switch_off, load_base, reward_scorer)


def reward_scorer(path: str) -> ScoreTexts:
    """Scores (prompt, response) pairs with the finished run at `path`: the `reward` its predictions hold.

    Any run whose task predicts a `reward` for rows of a `prompt` and a `response` scores this way
    (`task=reward_model`); the pairs are read as `predict` reads them, in the run's own batches and precision.
    """
    trained = load_trained(path)
    if REWARD not in trained.task.prediction_fields():
        raise ModelError(
            f"{path} is a task={trained.cfg.task.name} run, whose predictions hold no {REWARD!r}",
            hint="point run_dir at a finished task=reward_model run",
        )
    batch_size, precision = trained.cfg.trainer.eval_batch_size, trained.cfg.trainer.precision
    own = trained.cfg.task
    columns = (own.prompt_column, own.response_column) if isinstance(own, RewardModelConfig) else REWARD_COLUMNS

    def score(prompts: list[str], responses: list[str]) -> list[float]:
        rows = [dict(zip(columns, pair)) for pair in zip(prompts, responses)]
        features = trained.task.encode(rows, f"the reward model {path}", with_labels=False)
        predictions = row_predictions(trained.task, trained.model, features, batch_size, precision)
        return [float(prediction[REWARD]) for prediction in predictions]

    return score


def load_trained(path: str | Path, dequantize: bool = False) -> TrainedRun:
    """Everything `eval`, `predict` and `export` need, read back from `path`; with `dequantize`, a base
    loaded in 4 or 8 bits is dequantised before the adapter goes on (`export merge=true`)."""
    import torch
    import transformers
    from accelerate import PartialState

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    run = RunDir(path)
    run.ensure_readable()
    cfg = read_config(run)
    if cfg.trainer.meta.tasks:
        raise RunDirError(
            f"run_dir={run.path} is a meta-training run: its model/ is an encoder without a task head, "
            "a starting point for fine-tuning rather than a model to evaluate or predict with",
            hint=f"fine-tune it first: ftcli train task=... data.train_file=... model.name_or_path={run.path}",
        )
    labels = read_labels(run)
    kind = TASKS.get(cfg.task.name).impl
    method = METHODS.get(cfg.method.name).impl
    artifact = run.path / method.artifact
    if not artifact.is_dir():
        raise RunDirError(
            f"run_dir={run.path} has no {method.artifact}/ folder, where method={cfg.method.name} saves its weights",
            hint=DAMAGED_HINT,
        )
    if not any(artifact.glob("*.safetensors")):
        raise RunDirError(f"{artifact} holds no weights (no .safetensors file)", hint=DAMAGED_HINT)
    if method.artifact == "model":
        model = _from_artifact(artifact, lambda: kind.model_class().from_pretrained(artifact, dtype=torch.float32))
    else:
        settings = kind.model_config(cfg.task, load_config(cfg.model))
        base = build_model(cfg.model, kind.model_class(), labels, **settings)
        if dequantize:
            from ftcli.models.quantization import dequantized

            base = dequantized(base)
        model = _from_artifact(artifact, lambda: method.load(base, artifact))
    tokenizer = saved_tokenizer(artifact)
    sync_pad_token(model, tokenizer)
    model.to(PartialState().device).eval()
    frozen = frozen_models(cfg, kind, method, labels, tokenizer)
    task = kind.bind(cfg.task, cfg.data, labels, tokenizer, frozen)
    return TrainedRun(cfg, labels, kind, task, method, model, tokenizer, frozen)


def saved_tokenizer(artifact: Path) -> PreTrainedTokenizerBase:
    """The tokenizer a run saved in its model or adapter folder, ready to use; its weights stay unread."""
    return prepare_tokenizer(_from_artifact(artifact, lambda: _load_tokenizer(artifact)))


def read_labels(run: RunDir) -> list[str]:
    """`labels.json`'s label names, refused unless they are a list of strings."""
    data = run.read_json(LABELS)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
        raise RunDirError(
            f"{run.path / LABELS} does not hold a list of label names: expected {{\"labels\": [\"...\", ...]}}",
            hint=DAMAGED_HINT,
        )
    return labels


def _load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in `folder`; refused when its vocabulary files are gone.

    `AutoTokenizer` quietly builds a tokenizer with an empty vocabulary from a folder that holds
    only `config.json`, which would turn every word into `[UNK]` and every prediction into noise.
    """
    if not (folder / "tokenizer_config.json").is_file():
        raise RunDirError(f"{folder} holds no tokenizer (tokenizer_config.json is missing)", hint=DAMAGED_HINT)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab_files = {"tokenizer.json", *getattr(type(tokenizer), "vocab_files_names", {}).values()}
    if not any((folder / name).is_file() for name in vocab_files):
        raise RunDirError(
            f"{folder} holds no tokenizer vocabulary (none of {', '.join(sorted(vocab_files))})", hint=DAMAGED_HINT
        )
    return tokenizer


def _from_artifact(folder: Path, load: Callable[[], T]) -> T:
    """`load()`, with a failure to read the saved weights or tokenizer reported as a damaged run directory."""
    try:
        return load()
    except FtcliError:
        raise
    except Exception as exc:  # transformers, peft and safetensors raise many unrelated types for a bad folder
        raise RunDirError(f"{folder} could not be loaded: {first_line(exc)}", hint=DAMAGED_HINT) from exc
