"""What train, eval and predict say about the rows they read, on the tiny BERT: inputs cut at
task.max_length and inputs without text are counted (and marked in predict's output), predict
keeps one output line per input line with the input's fields untouched, and every jsonl line
stays one line for any line splitter."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG
from tests.integration.conftest import SMOKE

LONG = "word " * 40  # 42 tokens with [CLS] and [SEP]: cut at task.max_length=16
MAX_LENGTH = 16


def labelled(i: int, text: str) -> dict:
    return {"text": text, "label": "positive" if i % 2 else "negative"}


# 8 of 32 training rows too long, 2 empty; 3 of 10 validation rows too long
TRAIN = [labelled(i, LONG if i % 4 == 0 else "" if i == 5 else " \t" if i == 7 else f"review {i}") for i in range(32)]
DEV = [labelled(i, LONG if i < 3 else f"dev review {i}") for i in range(10)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def said(text: str) -> str:
    """Captured output without whitespace and the error panel's border: rich wraps long lines, paths
    included, anywhere. Compare `squeezed` fragments with it."""
    return squeezed(text.translate({ord(c): " " for c in "│╭╮╰╯─"}))


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path, str]:
    """A LoRA run with task.max_length=16 on TRAIN and DEV; its directory, the DEV file and what training printed."""
    root = tmp_path_factory.mktemp("rows")
    train_file, dev_file = write_jsonl(root / "train.jsonl", TRAIN), write_jsonl(root / "dev.jsonl", DEV)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", *SMOKE, "method=lora", f"task.max_length={MAX_LENGTH}", f"data.train_file={train_file}",
                     f"data.validation_file={dev_file}", f"hydra.run.dir={root / 'run'}"])
    assert code == 0, printed.getvalue()
    return root / "run", dev_file, said(printed.getvalue())


def predict(run_dir: Path, source: Path, tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out.jsonl"
    code = main(["predict", f"run_dir={run_dir}", f"input={source}", f"output={out}", *extra,
                 f"hydra.run.dir={tmp_path / 'p'}"])
    return code, out


def test_training_counts_the_cut_and_the_empty_rows_of_each_split(run):
    _, _, printed = run
    assert squeezed("train: 8 of 32 rows longer than task.max_length=16 tokens were cut; raise task.max_length "
                    "(the model takes up to 512)") in printed
    assert squeezed("validation: 3 of 10 rows longer than task.max_length=16 tokens were cut") in printed
    assert squeezed("train: 2 of 32 rows have empty text: the model is trained on them with no text to read") in printed
    assert squeezed("validation: 3 of 10 rows have") not in printed


def test_eval_counts_the_cut_rows_and_names_the_remedy(run, tmp_path, capsys):
    run_dir, dev_file, _ = run
    assert main(["eval", f"run_dir={run_dir}", f"data.validation_file={dev_file}", f"hydra.run.dir={tmp_path}"]) == 0
    assert squeezed("validation: 3 of 10 rows longer than task.max_length=16 tokens were cut; train with a larger "
                    "task.max_length (the model takes up to 512)") in said(capsys.readouterr().out)


def test_predict_keeps_a_row_per_line_and_marks_cut_and_empty_ones(run, tmp_path, capsys):
    lines = ["short one", LONG, "", "   ", "  padded\t", "last"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines), encoding="utf-8")  # no final newline: the last line is a row all the same
    capsys.readouterr()
    code, out = predict(run[0], source, tmp_path)
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert [row["text"] for row in rows] == lines  # as written: not stripped, blank lines kept
    assert [row.get("truncated", False) for row in rows] == [False, True, False, False, False, False]
    assert [row.get("empty", False) for row in rows] == [False, False, True, True, False, False]
    assert set(rows[0]) == {"text", "label", "probs"}  # rows read whole are as before
    assert all(row["label"] in ("negative", "positive") for row in rows)
    printed = said(capsys.readouterr().out)
    assert squeezed(f'input={source}: 1 of 6 inputs longer than task.max_length=16 tokens were cut (marked '
                    '"truncated": true); train with a larger task.max_length (the model takes up to 512)') in printed
    assert squeezed(f"input={source}: 2 of 6 inputs are empty (records 2, 3): their predictions mean nothing "
                    '(marked "empty": true)') in printed


def test_a_field_the_prediction_would_overwrite_is_refused(run, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "fine", "id": 1}, {"text": "great", "label": 1}])
    capsys.readouterr()
    code, out = predict(run[0], source, tmp_path)
    message = said(capsys.readouterr().err)
    assert code == EXIT_CONFIG and not out.exists()
    assert squeezed(f"input={source}: record 1 already has the field(s) 'label', which predict writes its "
                    "prediction to") in message
    assert squeezed("prediction_prefix=pred_ writes pred_label, pred_probs, pred_truncated, pred_empty") in message


def test_prediction_prefix_keeps_the_inputs_fields_untouched(run, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "great", "label": 1, "probs": None}, {"text": ""}])
    code, out = predict(run[0], source, tmp_path, "prediction_prefix=pred_")
    assert code == 0
    first, second = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert first["label"] == 1 and first["probs"] is None  # the integer stays an integer
    assert first["pred_label"] in ("negative", "positive") and abs(sum(first["pred_probs"].values()) - 1) < 1e-4
    assert second["pred_empty"] is True and "empty" not in second


def test_line_separators_in_text_stay_inside_their_output_line(run, tmp_path):
    texts = ["one\u2028two", "three\x85four", "five\u2029six", "tab\tand\x1cfile separator"]
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text} for text in texts])
    code, out = predict(run[0], source, tmp_path)
    assert code == 0
    written = out.read_text(encoding="utf-8")
    assert not any(c in written for c in "\u2028\u2029\x85\x1c")  # escaped
    assert [json.loads(line)["text"] for line in written.splitlines()] == texts
    for line in (run[0] / "train_log.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)
