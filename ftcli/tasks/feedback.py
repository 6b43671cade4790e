"""`feedback`: learning from natural-language feedback, with a causal language model and any method.

Rows hold a `prompt`, a model's first `output`, `feedback` (a critique written in words) and a
`refinement` (a better answer that takes the feedback into account); `tasks/feedback_rows.py`
reads them. `task.objective` says what the model learns to write:

- `critique`: the feedback, given the prompt and the output (a critique model, as Shepherd);
- `refine`: the refinement, given the prompt, the output and the feedback (ILF's refinement step);
- `imitate`: the refinement, given the prompt alone (ILF's policy step), optionally from the rows
  that pass `task.filter_column` (a boolean column, such as whether the refinement passed its unit
  tests) and `task.min_similarity` (ROUGE-L F1 between refinement and feedback, ILF's selection of
  refinements that use their feedback, measured by word overlap rather than embeddings);
- `hindsight` (Chain of Hindsight): one sequence holds the output, the feedback and the refinement,
  each behind a header, and the loss covers the two answers only, not the prompt, the headers or the
  human-written feedback. Generation starts after the prompt and `task.hindsight_better`, the
  positive header, so the model writes the better answer it learnt to tell apart.

Each objective's prompt is a template in the task config, whose `{prompt}`, `{output}` and
`{feedback}` fields are filled from the row; the filled text is the user's turn, written with the
tokenizer's chat template or the plain one (`tasks/chat.py`), and the answer is the assistant's.

Rows that would teach nothing are left out and named in a warning (`feedback_rows.Screened`):
empty feedback for an objective that reads it, and a refinement equal to its output.

Evaluation writes an answer for every validation row and scores it against the target field:
ROUGE-L (with ROUGE-1/2), chrF and exact match. With `task.run_code=true`, for code data, each
written program runs against the row's unit tests in a contained process (`tasks/code_runs.py`)
and pass@1 is reported; it is off by default, because it runs model-written code.
"""

from __future__ import annotations

import functools
import logging
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import DataConfig, GenerationConfig
from ftcli.data.readers import Row
from ftcli.engine.frozen import NO_FROZEN_MODELS, FrozenModels
from ftcli.errors import DataError
from ftcli.tasks.base import TASKS, Feature
from ftcli.tasks.chat import Renderer
from ftcli.tasks.feedback_rows import INPUTS, READS, TARGET, FeedbackColumns, Objective, Screened, read_fields, truthy
from ftcli.tasks.instruction import fit, normalise, tail, trained_labels
from ftcli.tasks.label_prompts import unescape
from ftcli.tasks.notes import NOTE, RowNote, is_blank
from ftcli.tasks.responses import ResponseConfig, ResponseKind, ResponseTask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


log = logging.getLogger(__name__)

TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "critique_template": ("prompt", "output"),
    "refine_template": ("prompt", "output", "feedback"),
    "imitate_template": ("prompt",),
    "hindsight_feedback": ("feedback",),
    "hindsight_worse": (),
    "hindsight_better": (),
}
"""The fields each template may name."""


@dataclass
class FeedbackConfig(ResponseConfig):
    name: str = "feedback"
    objective: Objective = Objective.refine
    max_length: int = 1024  # prompt + answer tokens; the end is cut first (see `instruction.fit`)
    prompt_column: str = "prompt"
    output_column: str = "output"
    feedback_column: str = "feedback"
    refinement_column: str = "refinement"
    critique_template: str = "{prompt}\n\nAn answer:\n{output}\n\nWhat is wrong with this answer, and how should it change?"
    refine_template: str = (
        "{prompt}\n\nAn answer:\n{output}\n\nFeedback on it:\n{feedback}\n\n"
        "Write a better answer that follows the feedback."
    )
    imitate_template: str = "{prompt}"
    hindsight_worse: str = "A worse answer:\n"
    hindsight_feedback: str = "\n\nWhat is wrong with it: {feedback}\n\n"
    hindsight_better: str = "A better answer:\n"  # generation starts after it
    filter_column: str = ""  # imitate: keep only rows whose column is true ("" keeps all)
    min_similarity: float = 0.0  # imitate: keep rows whose refinement has at least this ROUGE-L F1 with its feedback
    system_prompt: str = ""
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    run_code: bool = False  # true runs each written program against the row's tests (pass@1); off: it runs model code
    test_column: str = "test"
    entry_point_column: str = "entry_point"  # the function the tests call; else the prompt's last `def`
    code_timeout_s: float = 10.0
    code_memory_mb: int = 1024

    @property
    def columns(self) -> FeedbackColumns:
        return FeedbackColumns(self.prompt_column, self.output_column, self.feedback_column, self.refinement_column)

    def validate(self) -> list[str]:
        problems = super().validate()
        for setting, allowed in TEMPLATE_FIELDS.items():
            problems += _template_problems(setting, getattr(self, setting), allowed)
        if not 0.0 <= self.min_similarity <= 1.0:
            problems.append(f"task.min_similarity={self.min_similarity} must be between 0 and 1")
        objective = Objective(self.objective)
        if objective != Objective.imitate and (self.filter_column or self.min_similarity):
            problems.append(
                f"task.filter_column and task.min_similarity select refinements to imitate; with "
                f"task.objective={objective.value} they would do nothing (set task.objective=imitate)"
            )
        if self.run_code and self.objective == Objective.critique:
            problems.append("task.run_code=true scores written programs, and task.objective=critique writes feedback")
        if self.code_timeout_s <= 0 or self.code_memory_mb <= 0:
            problems.append("task.code_timeout_s and task.code_memory_mb must be positive")
        return problems


class Feedback(ResponseKind[FeedbackConfig]):
    """The registered kind; `bind` gives the `FeedbackTask` that encodes, generates and scores."""

    def best_metric(self, task: FeedbackConfig) -> str:
        if not task.generate_in_eval:
            return "perplexity"
        return "pass@1" if task.run_code else "rougeL"

    def bind(
        self, cfg: FeedbackConfig, data: DataConfig, labels: list[str], tokenizer: PreTrainedTokenizerBase,
        frozen: FrozenModels = NO_FROZEN_MODELS,
    ) -> FeedbackTask:
        return FeedbackTask(self, cfg, data, labels, tokenizer, frozen=frozen)


class FeedbackTask(ResponseTask[FeedbackConfig]):
    """A causal LM learning one objective from feedback rows, and writing it at evaluation and predict."""

    def encode(self, rows: list[Row], source: str, with_labels: bool = True) -> list[Feature]:
        """One feature per kept row: the sequence with its loss mask, the prompt to generate from,
        and the target text to score against. Without labels (predict), only the objective's inputs
        are read, and every row gives a feature."""
        cfg, objective = self.cfg, Objective(self.cfg.objective)
        renderer = Renderer(self.tokenizer, cfg.template)
        names = READS[objective] if with_labels else INPUTS[objective]
        opening = self._encode(self._answer_opening())
        screened, features, cut = Screened(), [], 0
        for index, row in enumerate(rows):
            where = f"{source}: record {index}"
            fields = read_fields(row, cfg.columns, names, objective, where)
            context = self._context(fields)
            whole = renderer.prompt(context) + opening
            prompt = tail(whole, cfg.max_length)
            if not with_labels:
                empty = any(is_blank(fields[name]) for name in names)
                features.append({"input_ids": prompt, NOTE: RowNote(index, len(whole) > cfg.max_length, empty)})
                continue
            reason = self._unfit(row, fields, where)
            if reason:
                screened.leave_out(reason, index)
                continue
            segments = renderer.answer_segments(context, self._pieces(fields))
            ids, mask = fit(segments, cfg.max_length)
            cut += sum(len(s.ids) for s in segments) > cfg.max_length
            features.append({
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": trained_labels(ids, mask),
                "prompt_ids": prompt,
                "reference": fields[TARGET[objective]],
                **self._code_fields(row, fields, where),
            })
        screened.report(source, len(rows))
        if cut:
            log.warning("%s: %d of %d rows are longer than task.max_length=%d tokens and were cut",
                        source, cut, len(features), cfg.max_length)
        return features

    def _context(self, fields: dict[str, str]) -> list[dict[str, str]]:
        """The turns before the answer: the system prompt if set, and the objective's filled template."""
        cfg = self.cfg
        setting = {Objective.critique: "critique_template", Objective.refine: "refine_template"}.get(
            cfg.objective, "imitate_template")
        turns = [{"role": "user", "content": fill(getattr(cfg, setting), fields)}]
        return ([{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []) + turns

    def _answer_opening(self) -> str:
        """What the answer starts with before the model writes: hindsight's positive header, else nothing."""
        return unescape(self.cfg.hindsight_better) if self.cfg.objective == Objective.hindsight else ""

    def _pieces(self, fields: dict[str, str]) -> list[tuple[str, bool]]:
        """The answer's texts, each with whether it carries the loss."""
        cfg = self.cfg
        if cfg.objective != Objective.hindsight:
            return [(fields[TARGET[cfg.objective]], True)]
        return [
            (unescape(cfg.hindsight_worse), False),
            (fields["output"], True),
            (fill(cfg.hindsight_feedback, fields) + unescape(cfg.hindsight_better), False),
            (fields["refinement"], True),
        ]

    def _unfit(self, row: Row, fields: dict[str, str], where: str) -> str | None:
        """Why a labelled row is left out, or None to keep it."""
        cfg = self.cfg
        if "feedback" in fields and is_blank(fields["feedback"]):
            return "have empty feedback"
        if is_blank(fields[TARGET[cfg.objective]]):
            return f"have an empty {TARGET[cfg.objective]}"
        if ("output" in fields and "refinement" in fields and cfg.output_column != cfg.refinement_column
                and normalise(fields["output"]) == normalise(fields["refinement"])):
            return "have a refinement equal to their output"
        if cfg.filter_column:
            if cfg.filter_column not in row:
                raise DataError(f"{where}: has no {cfg.filter_column!r} column, which task.filter_column names",
                                hint="set task.filter_column to a boolean column, or '' to keep every row")
            if not truthy(row[cfg.filter_column], cfg.filter_column, where):
                return f"fail task.filter_column={cfg.filter_column}"
        if cfg.min_similarity and similarity(fields["refinement"], _feedback_of(row, cfg, where)) < cfg.min_similarity:
            return f"have a refinement less similar to their feedback than task.min_similarity={cfg.min_similarity}"
        return None

    def _code_fields(self, row: Row, fields: dict[str, str], where: str) -> dict[str, str]:
        """The program's prompt, tests and entry point, kept when `task.run_code` scores programs."""
        cfg = self.cfg
        if not cfg.run_code:
            return {}
        from ftcli.tasks.code_runs import entry_point

        test = row.get(cfg.test_column)
        if not isinstance(test, str) or not test.strip():
            raise DataError(f"{where}: has no unit tests in {cfg.test_column!r}, which task.run_code=true runs",
                            hint="set task.test_column to the column of test code, or task.run_code=false")
        entry = row.get(cfg.entry_point_column)
        if not isinstance(entry, str) or not entry:
            try:
                entry = entry_point(fields["prompt"])
            except ValueError as exc:
                raise DataError(f"{where}: {exc}", hint="give the function name in task.entry_point_column") from exc
        return {"code_prompt": fields["prompt"], "code_test": test, "code_entry": entry}

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def finish(self, text: str) -> str:
        """A written answer without its trailing whitespace and leading blank lines; the first line
        keeps its indentation, which a program's body needs."""
        return text.lstrip("\n").rstrip()

    def metrics(self, texts: list[str], features: list[Feature]) -> dict[str, Any]:
        """ROUGE-1/2/L, chrF (0-100) and exact match against the target, and pass@1 with `task.run_code`."""
        from ftcli.tasks.metrics import load_metric

        references = [f["reference"] for f in features]
        rouge = load_metric("rouge").compute(predictions=texts, references=references)
        chrf = load_metric("bleu").compute(predictions=texts, references=references)["chrf"] if texts else 0.0
        matches = [normalise(p) == normalise(r) for p, r in zip(texts, references)]
        scores = {"exact_match": sum(matches) / len(matches) if matches else 0.0, "chrf": chrf, **rouge}
        if self.cfg.run_code:
            scores["pass@1"] = self._pass_at_1(texts, features)
        return scores

    def _pass_at_1(self, texts: list[str], features: list[Feature]) -> float:
        from ftcli.tasks.code_runs import Limits, pass_at_1, program

        limits = Limits(timeout_s=self.cfg.code_timeout_s, memory_mb=self.cfg.code_memory_mb)
        sources = [program(f["code_prompt"], text, f["code_test"], f["code_entry"]) for text, f in zip(texts, features)]
        rate, _ = pass_at_1(sources, limits)
        return rate


def fill(template: str, fields: dict[str, str]) -> str:
    """`template` with its `{field}`s filled (the config check has made sure it names only known fields)."""
    return unescape(template).format_map(fields)


def similarity(refinement: str, feedback: str) -> float:
    """ROUGE-L F1 between a refinement and its feedback: how much of the feedback's wording it takes up."""
    return float(_rouge_l().score(feedback, refinement)["rougeL"].fmeasure)


@functools.cache
def _rouge_l() -> Any:
    """One ROUGE-L scorer for every row (building one per row would repeat its set-up)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def _feedback_of(row: Row, cfg: FeedbackConfig, where: str) -> str:
    return read_fields(row, cfg.columns, ("feedback",), cfg.objective, where)["feedback"]


def _template_problems(setting: str, template: str, allowed: tuple[str, ...]) -> list[str]:
    try:
        named = [name for _, name, _, _ in string.Formatter().parse(unescape(template)) if name is not None]
    except ValueError as exc:
        return [f"task.{setting}={template!r} is not a valid template: {exc}"]
    unknown = [name for name in named if name not in allowed]
    if unknown:
        fields = ", ".join("{" + name + "}" for name in allowed) or "no field"
        return [f"task.{setting} names {{{unknown[0]}}}, and it can use {fields}"]
    if setting.endswith("_template") and "prompt" not in named:
        return [f"task.{setting}={template!r} has no {{prompt}} field, so the model would never see the prompt"]
    return []


TASKS.register("feedback", FeedbackConfig)(Feedback())
