"""`scripts/bench.py` runs end to end on a tiny model and tiny data: both trainers, both predictors.

Only that it runs and reports is checked; its speed figures come from real runs (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SCRIPT = SCRIPTS / "bench.py"


def test_bench_compares_both_trainers_and_predictors(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.models.tiny import tiny_config

    model = tmp_path / "tiny"
    AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=2)).save_pretrained(model)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(model)
    data = tmp_path / "data"
    data.mkdir()
    for name, count in (("train.jsonl", 48), ("dev.jsonl", 16)):
        rows = [{"text": f"sentence {i} is {'good' if i % 2 else 'bad'}", "label": i % 2,
                 "label_text": "positive" if i % 2 else "negative"} for i in range(count)]
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(data), "--model", str(model), "--methods", "full",
         "--max-train-samples", "32", "--batch-size", "8", "--predict-samples", "20", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    train_rows = [line for line in lines if line.startswith("| full |")][-2:]  # the table, after the progress lines
    assert [row.split("|")[2].strip() for row in train_rows] == ["HF Trainer", "ftcli"]
    assert train_rows[0].rstrip().endswith("| 1.00x |")
    predict_rows = [line for line in lines if line.startswith(("| transformers pipeline |", "| ftcli predict |"))]
    assert len(predict_rows) == 2 and all("| 20 |" in row for row in predict_rows)
    assert "same label for 100.00% of the sentences" in result.stdout


def test_bench_levers_reports_both_passes_of_each_variant(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.models.tiny import tiny_config

    model = tmp_path / "tiny"
    AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=2)).save_pretrained(model)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(model)
    rows = [{"text": "word " * (1 + i % 9), "label": i % 2} for i in range(64)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_levers.py"), "--data-dir", str(tmp_path), "--model", str(model),
         "--variants", "base,no_cudnn_attention,pad8", "--batches", "3", "--batch-size", "4"],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert rows["base"].count("| 1.00x |") == 2
    assert {"no_cudnn_attention", "pad8"} <= set(rows)
