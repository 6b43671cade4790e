"""`ftcli COMMAND --help`: the config groups with their options, and the default settings."""

from __future__ import annotations

from pathlib import Path

import yaml

HIDDEN_GROUPS = {"hydra", "schema", "local"}

SUMMARIES = {  # `ftcli --help`: one line per command
    "train": "fine-tune a model; writes a run directory",
    "eval": "re-evaluate a run directory, on its data or new files; `eval task=prompting`: zero/few-shot, no training",
    "predict": "label new inputs with a run directory (jsonl out)",
    "export": "write a run as a plain transformers folder or a PEFT adapter",
    "ilf": "one round of learning from language feedback: outputs, feedback, refinements → train.jsonl",
}


EXAMPLES = {
    "eval": (
        "Examples:\n"
        "  ftcli eval run_dir=outputs/train/<run>\n"
        "  ftcli eval run_dir=<run> data.validation_file=dev.jsonl\n"
        "  ftcli eval run_dir=<run> data.test_file=test.csv data.text_column=body\n"
        "  ftcli eval 'run_dir=[<run>,<run>,<run>]' ensemble=vote"
    ),
    "predict": (
        "Examples:\n"
        "  ftcli predict run_dir=outputs/train/<run> input=reviews.txt output=preds.jsonl\n"
        "  cat reviews.txt | ftcli predict run_dir=<run> input=- output=-\n"
        "  ftcli predict run_dir=<run> input=dev.jsonl prediction_prefix=pred_\n"
        "  ftcli predict run_dir=<run> input=questions.txt output=out.jsonl stream=true\n"
        "  ftcli predict 'run_dir=[<run>,<run>]' input=reviews.txt"
    ),
    "export": (
        "Examples:\n"
        "  ftcli export run_dir=outputs/train/<run> merge=true output=my-model\n"
        "  ftcli export run_dir=<run> output=my-adapter\n"
        "  ftcli export run_dir=<run> merge=true output=my-model overwrite=true"
    ),
    "ilf": (
        "Examples:\n"
        "  ftcli ilf input=prompts.jsonl output=round1 policy_run=<run> critique_run=<run> refine_run=<run>\n"
        "  ftcli ilf input=prompts.jsonl output=round1 policy_run=<run> feedback_file=feedback.jsonl "
        "refine_run=<run>\n"
        "  ftcli ilf input=answered.jsonl output=round1 feedback_file=feedback.jsonl refine_run=<run> chunk_size=8"
    ),
    "eval_prompting": (
        "Examples:\n"
        "  ftcli eval task=prompting model=gpt2 task.shots=4\n"
        "  ftcli eval task=prompting model=google/flan-t5-base \"task.label_words={positive: ' yes', negative: ' no'}\"\n"
        "  ftcli eval task=prompting model=Qwen/Qwen2.5-0.5B data.validation_file=dev.jsonl data.train_file=train.jsonl"
    ),
}
DEFAULT_EXAMPLES = (  # `train`'s
    "Examples:\n"
    "  ftcli train task=sentiment method=lora trainer.epochs=2\n"
    "  ftcli train data.train_file=train.csv data.validation_file=dev.csv\n"
    "  ftcli train task=preference method=lora task.loss=simpo data.train_file=pairs.jsonl\n"
    "  ftcli train -m method=full,lora trainer.lr=2e-5,1e-4\n"
    "  ftcli train model.num_layers=3 trainer.distill.teacher=<run>\n"
    "  ftcli train task=sentiment --cfg job"
)


def print_command_help(command: str, config_dir: Path, usage: str | None = None) -> None:
    """Groups, options and default settings of `configs/<command>.yaml`; `usage` is what the person typed."""
    from ftcli import ui

    defaults = _defaults(config_dir / f"{command}.yaml")
    groups = sorted(
        p.name for p in config_dir.iterdir() if p.is_dir() and p.name not in HIDDEN_GROUPS and p.name in defaults
    )
    ui.info(f"usage: ftcli {usage or command} [group=option ...] [key=value ...] [-m] [--cfg job]\n", markup=False)
    lines = []
    if groups:
        lines.append("[bold]config groups[/] (default marked *):")
        for group in groups:
            options = sorted(f.stem for f in (config_dir / group).glob("*.yaml"))
            marked = [f"{o}*" if o == defaults.get(group) else o for o in options]
            lines.append(f"  [cyan]{group}[/]: {', '.join(marked)}")
        lines.append("")
    lines.append("[bold]settings[/] (override any with key=value; `--cfg job` shows them resolved):")
    ui.info("\n".join(lines))
    ui.info(_default_settings(command, config_dir), markup=False)
    ui.info(EXAMPLES.get(command, DEFAULT_EXAMPLES), markup=False)


def _defaults(primary: Path) -> dict[str, str | None]:
    chosen: dict[str, str | None] = {}
    for item in (yaml.safe_load(primary.read_text()) or {}).get("defaults", []):
        if isinstance(item, dict):
            for key, value in item.items():
                chosen[key.split(" ")[-1].split("@")[0].lstrip("/")] = value
    return chosen


def _default_settings(command: str, config_dir: Path) -> str:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from ftcli.cli.registered import register_configs

    register_configs()
    with initialize_config_dir(str(config_dir), version_base="1.3", job_name=command):
        cfg = compose(config_name=command)
    return OmegaConf.to_yaml(cfg)
