"""`scripts/bench_preference.py` runs end to end on a tiny Llama and a few pairs, and reports every model.

Only that it runs and reports is checked; its accuracy figures come from real runs (docs/results.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_preference.py"


def test_bench_preference_reports_the_base_model_and_each_run(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path
    from ftcli.models.tiny import tiny_config

    model = tmp_path / "tiny"
    AutoModelForCausalLM.from_config(tiny_config("llama")).save_pretrained(model)
    AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(model)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"What is {i} plus one?", "chosen": f"{i + 1}.",
                                         "rejected": "I will not say."}) + "\n" for i in range(20)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(pairs), "--model", str(model), "--seeds", "1",
         "--max-pairs", "20", "--epochs", "1", "--runs", "sft,dpo", "--max-length", "32", "--",
         "trainer.max_steps=2"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert {"base", "sft", "dpo"} <= set(rows)
    assert "±" in rows["dpo"] and rows["base"].split("|")[2].strip() == "—"
