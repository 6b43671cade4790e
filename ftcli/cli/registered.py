"""Where configs meet the task, scorer and method registries.

The config layer (`ftcli.config`) holds the schemas and what they check by themselves; the
registries sit above it, with the implementations. This module joins the two for the CLI:
`register_configs` stores every schema with Hydra's ConfigStore (the top-level ones and, from the
registries, each task's, scorer's and method's), and `to_typed` checks a composed config with the
rules that need the registries as well (`RULES`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from omegaconf import DictConfig

from ftcli.config import checks
from ftcli.config.schema import ScoreConfig, TrainConfig
from ftcli.registry import did_you_mean

T = TypeVar("T")


def register_configs() -> None:
    """Store every schema with Hydra's ConfigStore, as composing any command's config needs.

    Task and scorer schemas go under `schema/task/<name>`, method schemas under
    `schema/method/<name>`, so each YAML in `configs/task` and `configs/method` names its schema
    in its defaults list (`/schema/method/lora@_here_`) and the schema names never show up among a
    group's options; each scorer's `configs/eval_<scorer>.yaml` builds on `base_eval_<scorer>`.
    """
    from hydra.core.config_store import ConfigStore

    from ftcli.config.store import register_base_schemas
    from ftcli.methods import METHODS
    from ftcli.tasks import TASKS
    from ftcli.tasks.scorers import SCORERS

    store = ConfigStore.instance()
    register_base_schemas(store)
    for scorer in SCORERS:
        store.store(name=f"base_eval_{scorer.name}", node=ScoreConfig)
    for entry in METHODS:
        store.store(group="schema/method", name=entry.name, node=entry.config_cls)
    for entry in (*TASKS, *SCORERS):
        store.store(group="schema/task", name=entry.name, node=entry.config_cls)


def to_typed(cfg: DictConfig, schema: type[T]) -> T:
    """`ftcli.config.checks.to_typed` with the registries' rules: what the CLI runs before a job."""
    return checks.to_typed(cfg, schema, RULES)


class Rules:
    """The checks of a `train` config that ask the registries (`ftcli.config.checks.RegistryRules`)."""

    def across_groups(self, cfg: Any) -> list[str]:
        """A scorer is not trained, nor are its rows augmented; packed batches need every example to keep
        its own positions; augmentation and shots need rows of the kind they change or draw;
        meta-training takes method=full and single-label classification only."""
        from ftcli.methods import METHODS
        from ftcli.tasks.scorers import SCORERS

        if isinstance(cfg, ScoreConfig) and cfg.data.augment.active():
            return [f"data.augment: `ftcli eval task={cfg.task.name}` trains nothing, so it has no training rows to "
                    "augment; drop the data.augment settings"]
        if not isinstance(cfg, TrainConfig):
            return []
        if cfg.trainer.meta.tasks:
            return _meta_problems(cfg)
        name = cfg.task.name
        if name in SCORERS:
            return [f"task={name} trains nothing: it scores a pretrained model as it is; "
                    f"run `ftcli eval task={name} model=...` instead"]
        prompts = [part for part in cfg.method.parts() if part in METHODS and METHODS.get(part).impl.prompt_learning]
        if cfg.task.packs_examples() and prompts:
            return [
                f"task.packing=true cannot be combined with {prompts[0]}: PEFT drops the position ids that keep "
                "packed examples apart (and prefix tuning's cached keys turn the separation off); "
                "set task.packing=false or use method=lora, adapter or full"
            ]
        return _training_set_problems(cfg)

    def registered(self, cfg: Any) -> list[str]:
        """A task or method YAML must name a registered implementation with the matching schema.

        The task group holds scorers' settings too (`configs/task/`), so their names count as registered
        tasks here; `across_groups` refuses training one.
        """
        from ftcli.methods import METHODS
        from ftcli.tasks import TASKS
        from ftcli.tasks.scorers import SCORERS

        if not isinstance(cfg, TrainConfig):
            return []
        problems = []
        tasks = {entry.name: entry.config_cls for entry in (*TASKS, *SCORERS)}
        methods = {entry.name: entry.config_cls for entry in METHODS}
        for group, node, schemas in (("task", cfg.task, tasks), ("method", cfg.method, methods)):
            names = sorted(schemas)
            if node.name not in schemas:
                problems.append(
                    f"{group}.name={node.name!r} is not a registered {group}"
                    f"{did_you_mean(node.name, names)}; choose one of: {', '.join(names)}"
                )
            elif type(node) is not schemas[node.name]:
                problems.append(
                    f"{group}.name={node.name!r} does not match the {group} settings given "
                    f"({type(node).__name__}); pick the {group} with {group}={node.name} instead"
                )
        return (problems + _unknown_add_ons(cfg.trainer.add_ons) + _reward_problems(cfg.task) + _teacher_problems(cfg)
                + _strategy_problems(cfg) + _memory_problems(cfg))


def _strategy_problems(cfg: TrainConfig) -> list[str]:
    """Under a multi-process launch, what this machine lacks for `trainer.distributed.strategy`."""
    from ftcli.engine import processes
    from ftcli.engine.strategies import check_runnable
    from ftcli.errors import ConfigError

    if not processes.launched():
        return []
    try:
        check_runnable(cfg.trainer.distributed)
    except ConfigError as exc:
        return [f"{exc.message} (fix: {exc.hint})"]
    return cfg.trainer.launch_problems()


def _memory_problems(cfg: TrainConfig) -> list[str]:
    """Quantised loading, 8-bit optimisers, kernels and attention backends this machine cannot run."""
    from ftcli.runs.memory_settings import memory_problems

    return memory_problems(cfg)


def _training_set_problems(cfg: TrainConfig) -> list[str]:
    """`data.augment` on a task whose rows hold no free text that can change while the label stays,
    and `data.shots_per_class` on one whose rows are not each of one class; each names the tasks that fit."""
    from ftcli.config.schema import DataConfig
    from ftcli.tasks import TASKS

    task, data, problems = cfg.task, cfg.data, []
    if data.augment.active() and not task.text_columns(data):
        fit = [entry.name for entry in TASKS if entry.config_cls().text_columns(DataConfig())]
        setting = f"data.augment.copies={data.augment.copies}" if data.augment.copies else "data.augment.rewrite_runs"
        problems.append(
            f"{setting}: task={task.name} rows are not augmented: EDA and rewrites change a row's free text and keep "
            f"its label, which only holds for the rows of {', '.join(fit)}"
        )
    if data.shots_per_class is not None and not task.classifies_by_label():
        fit = [entry.name for entry in TASKS if entry.config_cls().classifies_by_label()]
        problems.append(
            f"data.shots_per_class={data.shots_per_class} draws rows of each class, and the rows of task={task.name} "
            f"with these settings are not each of one class in data.label_column; it fits {', '.join(fit)} "
            "(single-label rows)"
        )
    return problems


def _meta_problems(cfg: TrainConfig) -> list[str]:
    """What meta-training (`trainer.meta.tasks`) cannot be combined with: a method other than full, a
    task other than single-label classification, data settings it does not read, training add-ons."""
    from ftcli.tasks.classification import ClassificationConfig, Problem

    problems = []
    if cfg.method.name != "full":
        problems.append(
            f"trainer.meta.tasks cannot be combined with method={cfg.method.name}: meta-training learns the "
            "encoder's own weights, which method=full trains and saves as a whole model; meta-train with "
            f"method=full, then fine-tune its run directory with method={cfg.method.name} model.name_or_path=<run dir>"
        )
    task = cfg.task
    if not isinstance(task, ClassificationConfig) or task.problem is not Problem.single_label:
        problem = f" with task.problem={task.problem.value}" if isinstance(task, ClassificationConfig) else ""
        problems.append(
            f"trainer.meta.tasks cannot be combined with task={task.name}{problem}: meta-training learns "
            "single-label classification; use task=text_classification, sentiment or pair_classification "
            "with task.problem=single_label"
        )
    given = [f"data.{key}" for key in ("dataset", "train_file", "validation_file", "test_file", "label_names")
             if getattr(cfg.data, key) is not None]
    if given:
        one = len(given) == 1
        problems.append(
            f"{', '.join(given)} {'is' if one else 'are'} not read by meta-training, whose datasets, each with its "
            f"own labels, are the files of trainer.meta.tasks; drop {'it' if one else 'them'} "
            "(fine-tune on your data afterwards with model.name_or_path=<run dir>)"
        )
    trainer, data = cfg.trainer, cfg.data
    asked = {
        "trainer.add_ons": trainer.add_ons, "trainer.adversarial.method": trainer.adversarial.method.value != "none",
        "trainer.rdrop": trainer.rdrop, "trainer.label_smoothing": trainer.label_smoothing,
        "trainer.layer_decay": trainer.layer_decay, "trainer.ema": trainer.ema,
        "trainer.distill.teacher": trainer.distill.teacher, "data.augment": data.augment.active(),
        "data.shots_per_class": data.shots_per_class,
    }
    on = [name for name, value in asked.items() if value]
    if on:
        problems.append(
            f"{', '.join(on)} change the training of one dataset; meta-training has inner and outer steps and "
            "episodes of its own: drop them here, and use them when fine-tuning the result (model.name_or_path=<run dir>)"
        )
    return problems


def _unknown_add_ons(names: list[str]) -> list[str]:
    """`trainer.add_ons` names that no training add-on registered."""
    from ftcli.engine.step import ADD_ONS
    from ftcli.errors import ConfigError

    problems = []
    for name in names:
        try:
            ADD_ONS.get(name)
        except ConfigError as exc:
            problems.append(f"trainer.add_ons: {exc.message}")
    return problems


def _reward_problems(task: Any) -> list[str]:
    """`task.rewards` entries that name no registered reward function or lack the settings theirs
    reads, and reward-model run directories that hold no finished run."""
    from ftcli.runs.directory import RunDir
    from ftcli.tasks.grpo import GrpoConfig
    from ftcli.tasks.rewards import reward_problems

    if not isinstance(task, GrpoConfig):
        return []
    problems = reward_problems(task.rewards)
    for i, reward in enumerate(task.rewards):
        if reward.name == "reward_model" and reward.run_dir and not RunDir(reward.run_dir).is_finished():
            problems.append(f"task.rewards[{i}].run_dir={reward.run_dir} is not the directory of a finished run "
                            "(its metrics.json and model or adapter folder)")
    return problems


def _teacher_problems(cfg: TrainConfig) -> list[str]:
    """A distillation teacher that is not a finished run; `ftcli.runs.teacher` checks the rest once
    the student's labels and tokenizer exist."""
    from ftcli.runs.directory import RunDir

    teacher = cfg.trainer.distill.teacher
    if teacher is None or RunDir(teacher).is_finished():
        return []
    return [f"trainer.distill.teacher={teacher} is not the directory of a finished run "
            "(its metrics.json and model or adapter folder)"]


RULES = Rules()
