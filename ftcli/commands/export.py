"""`ftcli export`: a finished run as a folder that loads without ftcli, with a model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftcli import __version__, ui
from ftcli.commands.summary import SHOWN, overrides_row, run_rows
from ftcli.config.schema import ExportConfig
from ftcli.errors import ConfigError, RunDirError
from ftcli.files import staged_dir, write_text_atomic
from ftcli.methods import METHODS
from ftcli.models.loading import load_config
from ftcli.runs.directory import RunDir, ensure_outside, read_config
from ftcli.runs.portable import make_portable, public_name
from ftcli.runs.trained import TrainedRun, load_trained


def run(cfg: ExportConfig, output_dir: Path) -> Path:
    target = Path(cfg.output).expanduser() if cfg.output else output_dir / "model"
    ensure_outside(Path(cfg.run_dir), target, "output", f"{Path(cfg.run_dir).resolve()}-export")
    if target.exists() and not target.is_dir():
        raise RunDirError(f"output={target} is a file; export writes a folder", hint="name a new or empty folder")
    if target.exists() and any(target.iterdir()) and not cfg.overwrite:
        raise RunDirError(f"output={target} is not empty", hint="choose a new folder, or pass overwrite=true")
    run = RunDir(cfg.run_dir)
    run.ensure_readable()
    name = read_config(run).method.name
    method = METHODS.get(name).impl
    adapter = method.artifact == "adapter"
    if cfg.merge and not adapter:
        ui.info(f"merge=true has no effect for method={name}: its weights are already whole")
    if cfg.merge and not method.mergeable:
        raise ConfigError(
            f"method={name} cannot be merged into plain weights: its bottleneck layers or virtual "
            "tokens are extra computation that no weight matrix can hold",
            hint="export without merge=true: the adapter folder and a model card saying how to load it",
        )
    merged = adapter and cfg.merge
    trained = load_trained(cfg.run_dir, dequantize=merged)
    ui.print_summary(
        f"ftcli export of {cfg.run_dir} → {target}",
        {**run_rows(trained.cfg), **overrides_row(cfg, (*SHOWN, "run_dir", "output"))},
    )
    with staged_dir(target) as folder:
        if merged:
            method.merge(trained.model).save_pretrained(folder, safe_serialization=True)
        else:
            method.save(trained.model, folder, trained.cfg.method)
        trained.tokenizer.save_pretrained(folder)
        make_portable(folder)
        write_text_atomic(folder / "README.md", model_card(trained, run, merged))
    kind = {"peft": "PEFT adapter", "ftcli": "ftcli adapter"}.get(_library(trained, merged), "transformers model")
    ui.info(f"exported a {kind} to [bold]{target}[/]")
    return target


PIPELINE_TAGS = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForCausalLM": "text-generation",
    "ForSeq2SeqLM": "text2text-generation",
    "ForMaskedLM": "fill-mask",
}
TASK_PIPELINE_TAGS = {"summarization": "summarization", "translation": "translation"}  # finer than the head's
HEAD_NOUNS = {
    "ForTokenClassification": "tagger",
    "ForQuestionAnswering": "question-answering model",
    "ForCausalLM": "language model",
    "ForSeq2SeqLM": "sequence-to-sequence model",
    "ForMaskedLM": "masked language model",
}


def model_card(trained: TrainedRun, run: RunDir, merged: bool) -> str:
    """A README in the Hugging Face model-card layout: what was trained, on what, how well, how to load."""
    cfg = trained.cfg
    metrics = json.loads(run.metrics_file.read_text()) if run.metrics_file.exists() else {}
    scores = {split: {k: v for k, v in values.items() if isinstance(v, (int, float))}
              for split, values in metrics.items() if split != "train"}
    overrides = run.path / ".hydra" / "overrides.yaml"
    command = "ftcli train " + " ".join(_overrides(overrides)) if overrides.exists() else "(not recorded)"
    data = cfg.data.dataset or cfg.data.train_file or f"the bundled {cfg.task.name} sample"
    head = _auto_class(trained).__name__.removeprefix("AutoModel")  # ForSequenceClassification, ...
    library, base = _library(trained, merged), public_name(cfg.model.name_or_path)
    lines = [
        "---",
        "library_name: " + library,
        "pipeline_tag: " + TASK_PIPELINE_TAGS.get(cfg.task.name, PIPELINE_TAGS.get(head, "text-classification")),
        "tags: [ftcli, " + cfg.method.name + "]",
        "---",
        f"# {cfg.task.name} {HEAD_NOUNS.get(head, 'classifier')} ({cfg.method.name})",
        "",
        f"- base model: `{base}`",
        f"- method: `{cfg.method.name}`" + (" (merged into the weights)" if merged else ""),
        *([f"- labels: {', '.join(trained.labels)}"] if trained.labels else []),
        f"- training data: `{data}`",
        f"- command: `{command}`",
        f"- trained with ftcli {__version__}",
        "",
        "## Scores",
        "",
        "```json",
        json.dumps(scores, indent=2),
        "```",
        "",
        "## Loading",
        "",
        *([HEAD_NOTE, ""] if library == "peft" and trained.labels and head != "ForMaskedLM" else []),
        "```python",
        *_loading_snippet(library, base, head, trained.labels, _base_settings(trained)),
        "```",
        "",
    ]
    return "\n".join(lines)


def _auto_class(trained: TrainedRun) -> Any:
    """The `transformers` Auto class that loads the run's model (`task=prompt_based` builds one of three)."""
    from ftcli.models.label_word_auto import loading_class

    return loading_class(trained.kind.model_class(), load_config(trained.cfg.model))


def _library(trained: TrainedRun, merged: bool) -> str:
    """What loads the exported folder: transformers alone, peft, or ftcli (its own adapter format)."""
    from ftcli.methods.native import NativeMethod

    if trained.method.artifact == "model" or merged:
        return "transformers"
    return "ftcli" if isinstance(trained.method, NativeMethod) else "peft"


HEAD_NOTE = (
    "PEFT builds the base model named in `adapter_config.json` with the labels passed below, then loads the "
    "adapter, whose trained head replaces the base model's. A base checkpoint without such a head makes "
    "transformers report the head as newly initialized before the adapter's takes its place."
)


def _base_settings(trained: TrainedRun) -> dict[str, Any]:
    """The task's model-config settings beyond the labels (`problem_type`, `is_decoder`), as ftcli
    built the base model with them (`ftcli.runs.trained.load_trained`)."""
    return trained.kind.model_config(trained.cfg.task, load_config(trained.cfg.model))


def _loading_snippet(library: str, base: str, head: str, labels: list[str], settings: dict[str, Any]) -> list[str]:
    """How to load the folder, with the task's Auto class (`head` is e.g. `ForTokenClassification`).

    An adapter's base model is built with the run's labels and settings, which the base
    checkpoint's config does not hold; PEFT's loaders pass keyword arguments on to the base
    model's `from_pretrained`.
    """
    if library == "ftcli":
        return [
            f"from transformers import AutoModel{head}",
            "from ftcli.methods.native import load_adapter",
            *_from_pretrained(f"base = AutoModel{head}", repr(base), labels, settings),
            "model = load_adapter(base, FOLDER)",
        ]
    if library == "peft" and head == "ForMaskedLM":
        # PEFT has no masked-LM Auto class; ftcli's builds the base with a missing masked-LM head as it trained
        return [
            "from peft import PeftModel",
            "from ftcli.models.label_word_auto import AutoModelForLabelWords",
            f"base = AutoModelForLabelWords.from_pretrained({base!r})",
            "model = PeftModel.from_pretrained(base, FOLDER)",
        ]
    if library == "peft":
        return [
            f"from peft import AutoPeftModel{head}",
            *_from_pretrained(f"model = AutoPeftModel{head}", "FOLDER", labels, settings),
        ]
    return [
        f"from transformers import AutoModel{head}, AutoTokenizer",
        f"model = AutoModel{head}.from_pretrained(FOLDER)",
        "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
    ]


def _from_pretrained(call: str, source: str, labels: list[str], settings: dict[str, Any]) -> list[str]:
    """`call.from_pretrained(source, ...)` with the labels and settings as keyword arguments."""
    arguments = [f"{key}={value!r}" for key, value in settings.items()]
    if labels:
        arguments = ["id2label=dict(enumerate(labels))", "label2id={name: i for i, name in enumerate(labels)}",
                     *arguments]
    if not arguments:
        return [f"{call}.from_pretrained({source})"]
    return [
        *([f"labels = {labels!r}"] if labels else []),
        f"{call}.from_pretrained(",
        *(f"    {argument}," for argument in (source, *arguments)),
        ")",
    ]


def _overrides(path: Path) -> list[Any]:
    import yaml

    return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]
