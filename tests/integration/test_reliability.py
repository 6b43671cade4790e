"""Bad input, tried for real: each case runs the CLI once and must end with one clear message, its
exit code and no traceback, leaving every run directory and input file it was given byte for byte
as it was, and no half-written run directory where `train` refused to start.

`docs/reliability.md` tabulates these cases in the same order; `test_the_doc_table_lists_every_case`
keeps the two in step.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ftcli import __version__
from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERRUPTED, EXIT_MODEL, EXIT_OK, EXIT_RUN_DIR, EXIT_TRAINING
from ftcli.runs.directory import RunDir, read_config
from tests.integration.conftest import METHODS, SMOKE

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
DIVERGE = ("trainer.lr=1e30", "trainer.save_every=1")  # NaN at step 2, after a checkpoint at step 1
BOX = {ord(c): " " for c in "│╭╮╰╯─"}  # the error panel's border


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


ROWS = [{"text": f"review number {i}", "label": "positive" if i % 2 else "negative"} for i in range(20)]
GOOD = jsonl(*ROWS)
HEAD = jsonl(*ROWS[:2])  # two good lines, so the bad one below is line 3 (record 2)
TAIL = jsonl(*ROWS[2:])


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the files it needs, and the outcome it must have.

    `{data}` (the case's input folder), `{run}` (its copy of a run directory) and `{version}` are
    filled in, in arguments and in the message fragment. `train` cases get the tiny smoke-test
    settings first, and write to a new folder unless they name `hydra.run.dir=`.
    """

    id: str
    argv: tuple[str, ...]
    code: int
    fragment: str  # a piece of the message, whitespace normalised
    files: dict[str, str | bytes] = field(default_factory=dict)  # written under {data}
    links: dict[str, str] = field(default_factory=dict)  # symbolic links made under {data}
    run: str | None = None  # a method of `trained_runs`, or "unfinished", copied to {run}
    damage: tuple[Callable[[Path], None], ...] = ()  # edits of the copy before the command
    stdin: bytes | None = None
    during: Callable[[pytest.MonkeyPatch], None] | None = None  # what happens while it runs (a signal, no memory)
    leaves: tuple[str, ...] | None = None  # a `train` that trained: the checkpoints its unfinished run keeps


def delete(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


def write(name: str, data: str | bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        text = (run / name).read_text()
        assert old in text, f"{old!r} is not in {name}"
        (run / name).write_text(text.replace(old, new))

    return apply


def written_by(version: str) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        environment = json.loads((run / "environment.json").read_text())
        (run / "environment.json").write_text(json.dumps({**environment, "ftcli": version}))

    return apply


def ctrl_c_at_step(step: int) -> Callable[[pytest.MonkeyPatch], None]:
    """Ctrl-C (SIGINT to this process) once training step `step` is done."""

    def apply(monkeypatch: pytest.MonkeyPatch) -> None:
        from ftcli import ui

        on_step = ui.TrainProgress.on_step

        def pressed(self, done, record):
            on_step(self, done, record)
            if done == step:
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(ui.TrainProgress, "on_step", pressed)

    return apply


def out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training forward pass fails as a GPU's allocator does when a batch does not fit."""
    import torch
    from transformers import BertForSequenceClassification

    forward = BertForSequenceClassification.forward

    def no_memory(self, *args, **kwargs):
        if self.training:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", no_memory)


class _OpensAFile:
    """Unpickling this calls `open(path, "w")`: a stand-in for any code a pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def pickle_that_opens(name: str) -> Callable[[Path], None]:
    """A checkpoint file that, unpickled, would create `opened-by-a-pickle` beside the run."""

    def apply(run: Path) -> None:
        import torch

        torch.save({"cpu": _OpensAFile(run.parent / "opened-by-a-pickle")}, run / name)

    return apply


CASES = [
    # the command line
    Case("unknown-key", ("train", "trainer.lrr=1"), EXIT_CONFIG, "trainer.lrr is not a setting (did you mean 'lr'?)"),
    Case("unknown-option", ("train", "method=lorra"), EXIT_CONFIG,
         "method=lorra is not an option (did you mean 'lora'?); options for method: adapter, bitfit,"),
    Case("added-key", ("train", "+trainer.foo=1"), EXIT_CONFIG,
         "trainer.foo is not a known setting; valid keys under trainer: add_ons, adversarial, batch_size,"),
    Case("wrong-type", ("train", "trainer.batch_size=abc"), EXIT_CONFIG,
         "trainer.batch_size=abc: invalid literal for int() with base 10: 'abc'"),
    Case("out-of-range", ("train", "task.threshold=2"), EXIT_CONFIG, "task.threshold=2.0 must be between 0 and 1"),
    Case("missing-value", ("predict", "run_dir={run}"), EXIT_CONFIG, "input is required: add input=...", run="full"),
    # data files
    Case("missing-file", ("train", "data.train_file={data}/nope.jsonl"), EXIT_DATA,
         "data.train_file={data}/nope.jsonl: no such file"),
    Case("folder-as-file", ("train", "data.train_file={data}"), EXIT_DATA,
         "data.train_file={data} is a folder, not a file"),
    Case("unreadable-file", ("predict", "run_dir={run}", "input={data}/mem.jsonl"), EXIT_DATA,
         "input={data}/mem.jsonl could not be read: Input/output error", run="full",
         links={"mem.jsonl": "/proc/self/mem"}),  # exists, yet every read fails, even as root
    Case("unsupported-type", ("train", "data.train_file={data}/train.xlsx"), EXIT_DATA,
         "data.train_file={data}/train.xlsx: unsupported file type '.xlsx' fix: use one of: .jsonl,",
         files={"train.xlsx": GOOD}),
    Case("empty-file", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "the train split ({data}/train.jsonl) is empty", files={"train.jsonl": ""}),
    Case("header-only-csv", ("eval", "run_dir={run}", "data.validation_file={data}/dev.csv"), EXIT_DATA,
         "the validation split ({data}/dev.csv) is empty", run="full", files={"dev.csv": "text,label\n"}),
    Case("non-utf8", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "data.train_file={data}/train.jsonl: line 3 is not valid UTF-8",
         files={"train.jsonl": HEAD.encode() + b'{"text": "caf\xe9", "label": "positive"}\n' + TAIL.encode()}),
    Case("non-utf8-stdin", ("predict", "run_dir={run}", "input=-"), EXIT_DATA,
         "input=-: line 2 is not valid UTF-8", run="full", stdin=b"a fine day\ncaf\xe9 au lait\n"),
    Case("bad-json-line", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "data.train_file={data}/train.jsonl: line 3 is not valid JSON "
         "(Expecting property name enclosed in double quotes at column 2)",
         files={"train.jsonl": HEAD + "{text: 'oops'}\n" + TAIL}),
    Case("json-line-not-object", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "line 3 is a JSON list, not an object", files={"train.jsonl": HEAD + '["oops", "positive"]\n' + TAIL}),
    Case("csv-extra-field", ("train", "data.train_file={data}/train.csv"), EXIT_DATA,
         "data.train_file={data}/train.csv: line 3 has 3 fields, the header has 2 "
         "fix: quote fields that contain the delimiter",
         files={"train.csv": "text,label\nnice,positive\nawful, really,negative\n" + "fine,positive\n" * 8}),
    Case("missing-column", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "data.text_column='text' is not a column of {data}/train.jsonl; columns found: body, label",
         files={"train.jsonl": GOOD.replace('"text"', '"body"')}),
    Case("text-not-string", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "{data}/train.jsonl: record 2: 'text' is int, not text",
         files={"train.jsonl": HEAD + jsonl({"text": 5, "label": "positive"}) + TAIL}),
    Case("all-text-empty", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "train ({data}/train.jsonl): all 18 rows have empty text fix: check that data.text_column",
         files={"train.jsonl": jsonl(*({**row, "text": " "} for row in ROWS))}),
    Case("label-missing", ("train", "data.train_file={data}/train.jsonl", "data.validation_file={data}/dev.jsonl"),
         EXIT_DATA, "{data}/train.jsonl: record 2 has no label (label is None)",
         files={"train.jsonl": HEAD + '{"text": "so-so", "label": null}\n' + TAIL,
                "dev.jsonl": GOOD}),
    Case("label-is-a-list", ("train", "data.train_file={data}/train.jsonl", "data.validation_file={data}/dev.jsonl"),
         EXIT_DATA, "record 2 has label=['positive', 'negative'], not a single label "
         "fix: for several labels per row use task.problem=multi_label",
         files={"train.jsonl": HEAD + jsonl({"text": "mixed", "label": ["positive", "negative"]}) + TAIL,
                "dev.jsonl": GOOD}),
    Case("one-label-only", ("train", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "every training row has the label 'positive'; single-label classification needs at least two labels",
         files={"train.jsonl": GOOD.replace("negative", "positive")}),
    Case("feedback-missing-column", ("train", "task=feedback", "data.train_file={data}/train.jsonl"), EXIT_DATA,
         "{data}/train.jsonl: record 0: has no 'feedback' column, which task.objective=refine reads "
         "(it has: 'prompt', 'output', 'refinement') fix: set task.feedback_column",
         files={"train.jsonl": jsonl(*({"prompt": f"q{i}", "output": "a", "refinement": "b"} for i in range(4)))}),
    Case("feedback-nothing-to-learn", ("train", "task=feedback", "data.train_file={data}/train.jsonl",
                                         "data.validation_file={data}/train.jsonl"), EXIT_DATA,
         "{data}/train.jsonl: every one of its 4 rows was left out: 3 have a refinement equal to their output "
         "(records 0, 1, 2); 1 have empty feedback (record 3)",
         files={"train.jsonl": jsonl(*({"prompt": f"q{i}", "output": "a", "feedback": "fine" if i < 3 else " ",
                                        "refinement": "a"} for i in range(4)))}),
    # data given to a trained run
    Case("eval-unknown-label", ("eval", "run_dir={run}", "data.validation_file={data}/dev.jsonl"), EXIT_DATA,
         "{data}/dev.jsonl: record 2 has label 'neutral', which is not in the label set ['negative', 'positive']",
         run="full", files={"dev.jsonl": HEAD + jsonl({"text": "meh", "label": "neutral"}) + TAIL}),
    Case("eval-missing-column", ("eval", "run_dir={run}", "data.validation_file={data}/dev.jsonl"), EXIT_DATA,
         "data.label_column='label' is not a column of {data}/dev.jsonl; columns found: text, stars",
         run="full", files={"dev.jsonl": GOOD.replace('"label"', '"stars"')}),
    Case("predict-missing-column", ("predict", "run_dir={run}", "input={data}/in.jsonl"), EXIT_DATA,
         "data.text_column='text' is not a column of input={data}/in.jsonl; columns found: review",
         run="full", files={"in.jsonl": jsonl({"review": "great"})}),
    Case("predict-field-taken", ("predict", "run_dir={run}", "input={data}/in.jsonl"), EXIT_CONFIG,
         "input={data}/in.jsonl: record 0 already has the field(s) 'label', which predict writes its prediction to "
         "fix: keep the input's fields and name the prediction's apart: prediction_prefix=pred_ writes pred_label,",
         run="full", files={"in.jsonl": jsonl({"text": "great", "label": 1})}),
    Case("predict-output-folder", ("predict", "run_dir={run}", "input={data}/in.txt", "output={data}"), EXIT_CONFIG,
         "output={data} is a folder; predictions are written to one jsonl file", run="full",
         files={"in.txt": "great\n"}),
    Case("predict-output-unwritable", ("predict", "run_dir={run}", "input={data}/in.txt",
                                       "output={data}/in.txt/predictions.jsonl"), EXIT_CONFIG,
         "output={data}/in.txt/predictions.jsonl could not be written: [Errno 17] File exists: '{data}/in.txt' "
         "fix: name a jsonl file in a folder you can write to", run="full", files={"in.txt": "great\n"}),
    # models
    Case("model-not-cached", ("train", "model.name_or_path=some-org/no-such-model"), EXIT_MODEL,
         "model.name_or_path='some-org/no-such-model' is not a local folder, is not in the Hugging Face cache, "
         "and the Hub is unreachable (HF_HUB_OFFLINE is set)"),
    Case("model-folder-missing", ("train", "model.name_or_path={data}/no-model"), EXIT_MODEL,
         "model.name_or_path='{data}/no-model': no such folder"),
    Case("model-without-the-head", ("train", "task=summarization"), EXIT_MODEL,
         "model.name_or_path='tiny:bert': task=summarization needs an encoder-decoder, and this bert model is "
         "encoder-only (AutoModelForSeq2SeqLM has no class for it) fix: use model=minilm2minilm or model=tiny_t5"),
    Case("base-model-not-cached", ("eval", "run_dir={run}"), EXIT_MODEL,
         "model.name_or_path='some-org/no-such-model' is not a local folder", run="lora",
         damage=(edit("config.yaml", "name_or_path: tiny:bert", "name_or_path: some-org/no-such-model"),)),
    # run directories
    Case("run-dir-missing", ("eval", "run_dir={data}/no-run"), EXIT_RUN_DIR,
         "run_dir={data}/no-run: no such directory"),
    Case("labels-deleted", ("eval", "run_dir={run}"), EXIT_RUN_DIR,
         "run_dir={run} is not a finished ftcli run: missing labels.json", run="full", damage=(delete("labels.json"),)),
    Case("labels-damaged", ("predict", "run_dir={run}", "input={data}/in.txt"), EXIT_RUN_DIR,
         "{run}/labels.json does not hold a list of label names", run="full", files={"in.txt": "great\n"},
         damage=(write("labels.json", '{"names": ["negative", "positive"]}'),)),
    Case("weights-deleted", ("predict", "run_dir={run}", "input={data}/in.txt"), EXIT_RUN_DIR,
         "{run}/adapter holds no weights (no .safetensors file)", run="lora", files={"in.txt": "great\n"},
         damage=(delete("adapter/adapter_model.safetensors"),)),
    Case("weights-damaged", ("eval", "run_dir={run}"), EXIT_RUN_DIR,
         "{run}/model could not be loaded: Error while deserializing header", run="full",
         damage=(write("model/model.safetensors", b"\xff" * 64),)),
    Case("tokenizer-deleted", ("eval", "run_dir={run}"), EXIT_RUN_DIR,
         "{run}/model holds no tokenizer vocabulary", run="full", damage=(delete("model/tokenizer.json"),)),
    Case("config-from-other-version", ("eval", "run_dir={run}"), EXIT_RUN_DIR,
         "{run}/config.yaml is not a valid ftcli training config: Key 'learning_rate' not in 'TrainerConfig' "
         "fix: the run was written by ftcli 0.0.9 and this is ftcli {version}", run="full",
         damage=(edit("config.yaml", "  lr: ", "  learning_rate: "), written_by("0.0.9"))),
    Case("config-unknown-task", ("export", "run_dir={run}", "output={data}/export"), EXIT_RUN_DIR,
         "{run}/config.yaml is not a valid ftcli training config: unknown task 'sentiment_v2' "
         "(did you mean 'sentiment'?)", run="full", damage=(edit("config.yaml", "sentiment", "sentiment_v2"),)),
    Case("config-names-code", ("eval", "run_dir={run}"), EXIT_RUN_DIR,
         "config.yaml is not a valid ftcli training config: Key '_target_' not in 'ModelConfig'", run="full",
         damage=(edit("config.yaml", "model:\n", "model:\n  _target_: os.system\n"),)),
    Case("config-not-yaml", ("predict", "run_dir={run}", "input={data}/in.txt"), EXIT_RUN_DIR,
         "config.yaml is not a valid ftcli training config: while parsing a flow sequence", run="full",
         files={"in.txt": "great\n"}, damage=(write("config.yaml", "model: [tiny:bert\n"),)),
    Case("export-output-not-empty", ("export", "run_dir={run}", "output={data}/export"), EXIT_RUN_DIR,
         "output={data}/export is not empty fix: choose a new folder, or pass overwrite=true", run="full",
         files={"export/keep.txt": "mine"}),
    Case("export-output-is-a-file", ("export", "run_dir={run}", "output={data}/export.txt"), EXIT_RUN_DIR,
         "output={data}/export.txt is a file; export writes a folder", run="full", files={"export.txt": "mine"}),
    Case("predict-output-into-run", ("predict", "run_dir={run}", "input={data}/in.txt", "output={run}/metrics.json"),
         EXIT_RUN_DIR, "output={run}/metrics.json would overwrite the run it reads ({run}) fix: choose a location "
         "outside the run's own files, e.g. output={run}/predictions.jsonl", run="full", files={"in.txt": "great\n"}),
    Case("export-over-the-run", ("export", "run_dir={run}", "output={run}", "overwrite=true"), EXIT_RUN_DIR,
         "output={run} would overwrite the run it reads ({run})", run="full"),
    Case("job-dir-is-the-run", ("eval", "run_dir={run}", "hydra.run.dir={run}"), EXIT_CONFIG,
         "hydra.run.dir={run} is the run directory being read: its .hydra/ record and metrics would be replaced",
         run="full"),
    Case("export-merge-unmergeable", ("export", "run_dir={run}", "merge=true", "output={data}/export"), EXIT_CONFIG,
         "method=adapter cannot be merged into plain weights", run="adapter"),
    # training into a run directory
    Case("train-into-finished-run", ("train", "hydra.run.dir={run}"), EXIT_RUN_DIR,
         "{run} already holds a finished run fix: choose another hydra.run.dir, or pass overwrite=true", run="full"),
    Case("overwrite-with-bad-data", ("train", "overwrite=true", "data.train_file={data}/nope.jsonl",
                                     "hydra.run.dir={run}"), EXIT_DATA, "no such file", run="full"),
    Case("train-over-unfinished-run", ("train", *DIVERGE, "hydra.run.dir={run}"), EXIT_RUN_DIR,
         "{run} holds checkpoints of an unfinished run (newest: step-1) fix: continue it with trainer.resume=auto",
         run="unfinished"),
    Case("resume-missing-checkpoint", ("train", "trainer.resume={data}/checkpoints/step-9"), EXIT_RUN_DIR,
         "trainer.resume={data}/checkpoints/step-9: no checkpoint there"),
    Case("resume-changed-settings", ("train", "trainer.lr=1e-3", "trainer.save_every=1", "trainer.resume=auto",
                                     "hydra.run.dir={run}"), EXIT_CONFIG,
         "trainer.resume: {run}/checkpoints/step-1 was written by a run with other settings: trainer.lr",
         run="unfinished"),
    Case("resume-damaged-checkpoint", ("train", *DIVERGE, "trainer.resume=auto", "hydra.run.dir={run}"), EXIT_RUN_DIR,
         "{run}/checkpoints/step-1 is not a complete ftcli checkpoint: trainable.safetensors could not be read",
         run="unfinished", damage=(delete("checkpoints/step-1/trainable.safetensors"),)),
    Case("resume-checkpoint-with-code", ("train", *DIVERGE, "trainer.resume=auto", "hydra.run.dir={run}"),
         EXIT_RUN_DIR, "{run}/checkpoints/step-1 is not a complete ftcli checkpoint: rng.pt could not be read "
         "(it holds Python objects besides tensors, which ftcli does not unpickle)", run="unfinished",
         damage=(pickle_that_opens("checkpoints/step-1/rng.pt"),)),
    Case("max-length-past-positions", ("train", "task.max_length=600"), EXIT_CONFIG,
         "task.max_length=600 exceeds the 512 positions of this bert model fix: set task.max_length=512 or fewer"),
    Case("resume-finished-run", ("train", "trainer.resume=auto", "hydra.run.dir={run}"), EXIT_OK,
         "{run} already holds a finished run; nothing to resume", run="full"),
    # training
    Case("non-finite-loss", ("train", *DIVERGE), EXIT_TRAINING,
         "the training loss became nan by step 2 (lr 5e+29); the last good checkpoint, {new}/checkpoints/step-1, "
         "is kept fix: lower trainer.lr", leaves=("step-1",)),
    Case("out-of-memory", ("train",), EXIT_TRAINING,
         "out of memory at step 1 with trainer.batch_size=8 (a batch of 8x38 tokens) fix: trainer.batch_size=4 "
         "trainer.grad_accum_steps=2 trains with the same effective batch in less memory", during=out_of_memory,
         leaves=()),
    Case("ctrl-c", ("train", "trainer.save_every=100"), EXIT_INTERRUPTED,
         "SIGINT at step 1 of 4: checkpoint saved in {new}/checkpoints/step-1 fix: continue with: ftcli train",
         during=ctrl_c_at_step(1), leaves=("step-1",)),
]


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory) -> Path:
    """A run stopped by a non-finite loss at step 2, with its checkpoint of step 1 kept."""
    run = tmp_path_factory.mktemp("unfinished") / "run"
    assert main(["train", *SMOKE, *DIVERGE, f"hydra.run.dir={run}"]) == EXIT_TRAINING
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-1"]
    return run


def tree_digest(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every path under `root` with a digest of what it holds (a link: its target), `skip` left out."""
    digest = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in dirs + files:
            path = Path(folder, name)
            if path in skip:
                continue
            key = str(path.relative_to(root))
            if path.is_symlink():
                digest[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                digest[key] = "folder"
            else:
                digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path, request, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per sentence in the panel
    monkeypatch.delenv("FTCLI_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    data, run, new, job = tmp_path / "data", tmp_path / "run", tmp_path / "new-run", tmp_path / "job"
    data.mkdir()
    for name, content in case.files.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    for name, target in case.links.items():
        (data / name).symlink_to(target)
    if case.run == "unfinished":
        shutil.copytree(request.getfixturevalue("unfinished_run"), run, symlinks=True)
    elif case.run is not None:
        shutil.copytree(request.getfixturevalue("trained_runs")[case.run], run, symlinks=True)
    for damage in case.damage:
        damage(run)
    if case.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8"))
    monkeypatch.chdir(tmp_path)  # anything written to the working directory shows in the digest

    def fill(text: str) -> str:
        for key, value in {"data": data, "run": run, "new": new, "version": __version__}.items():
            text = text.replace("{" + key + "}", str(value))
        return text

    command, *overrides = [fill(arg) for arg in case.argv]
    if command == "train":
        overrides = [*SMOKE, *overrides]
        if not any(o.startswith("hydra.run.dir=") for o in overrides):
            overrides.append(f"hydra.run.dir={new}")
    elif not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides.append(f"hydra.run.dir={job}")
    before = tree_digest(tmp_path, skip=(job,))
    if case.during is not None:
        case.during(monkeypatch)
    capsys.readouterr()

    code = main([command, *overrides])

    captured = capsys.readouterr()
    message = " ".join((captured.err + captured.out).translate(BOX).split())
    assert code == case.code, message
    assert fill(case.fragment) in message
    assert "Traceback" not in captured.err + captured.out
    if case.leaves is not None:  # kept to look into or resume, yet not a finished run that eval would accept
        checkpoints = new / "checkpoints"
        assert (sorted(p.name for p in checkpoints.iterdir()) if checkpoints.is_dir() else []) == list(case.leaves)
        assert not RunDir(new).is_finished()
        assert tree_digest(tmp_path, skip=(job, new)) == before
    else:
        assert tree_digest(tmp_path, skip=(job,)) == before  # nothing changed, nothing left behind


def test_the_doc_table_lists_every_case():
    """docs/reliability.md has one row per case, in the same order, with the same exit code."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| case |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, line
        rows.append((cells[0].strip("`"), int(cells[3])))
    assert rows == [(case.id, case.code) for case in CASES]


@pytest.mark.parametrize("method", METHODS)
def test_saved_runs_hold_safetensors_and_no_pickles(trained_runs, method):
    """No method writes weights in a format that can carry code (`.bin`, `.pt`, `.pkl`, `.ckpt`)."""
    files = [p for p in trained_runs[method].rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files), method
    assert not [p for p in files if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}], method


def test_remote_code_is_off_unless_asked_for(trained_runs):
    assert read_config(RunDir(trained_runs["full"])).model.trust_remote_code is False
