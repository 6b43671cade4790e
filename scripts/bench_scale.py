"""The scale levers against their baseline, each a fresh `ftcli train` of the same causal LM on the same rows.

    python scripts/bench_scale.py                      # on a CUDA GPU: every comparison below
    python scripts/bench_scale.py --dry-run            # the plan: the command of each run, nothing trained
    python scripts/bench_scale.py --layers 2 --hidden 128 --steps 4 --only plain,ddp_1 # a quick check, CPU too

Instruction tuning (`task=instruction`, the plain template, packing) of a randomly initialised
Llama built from `--layers`/`--hidden` on the embedded MiniLM's vocabulary (random weights cost the
time and memory trained ones do), on the bundled instruction sample repeated to `--rows` rows, for
`--steps` optimiser steps of `--batch-size` rows, cut at `--max-length` tokens. Each run is a child
process; the table reads its `metrics.json`: tokens/s, MFU (CUDA), peak GPU and host memory, the
final loss, and the ratio of tokens/s and of peak GPU memory against the comparison's baseline.

The comparisons (`--only` picks some, by run name):

    plain      LoRA, bf16, one process                       the baseline of ddp_1, qlora, liger, chunked
    ddp_1      the same under `torchrun --nproc_per_node 1`  what the process group costs
    ddp_all    the same on every GPU (`torchrun --nproc_per_node <GPUs>`), per-process batch unchanged
    qlora      LoRA on the base loaded in 4 bits (NF4, double quantisation, bf16 compute), paged 8-bit AdamW
    liger      LoRA with trainer.kernels=liger
    chunked    LoRA with trainer.chunked_cross_entropy=true
    full       full fine-tuning, bf16 (MFU of a run whose every weight trains)

Runs a machine cannot do (no CUDA, no bitsandbytes, no liger-kernel, one GPU for ddp_all) are
skipped with the reason in the table, so the script always prints one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
SAMPLE = CHECKOUT / "ftcli" / "samples" / "instruction" / "train.jsonl"


@dataclass
class Run:
    name: str
    baseline: str | None  # the run whose tokens/s and GPU memory the ratios are against
    overrides: list[str] = field(default_factory=list)
    processes: int = 0  # 0: plain `python -m ftcli`; N: under `torchrun --nproc_per_node N`
    needs: tuple[str, ...] = ()  # "cuda", "bitsandbytes", "liger_kernel", "gpus>1"


def runs(gpus: int) -> list[Run]:
    lora = ["method=lora", "trainer.precision=bf16"]
    return [
        Run("plain", None, lora),
        Run("ddp_1", "plain", [*lora, "trainer=ddp", "trainer.precision=bf16"], processes=1),
        Run("ddp_all", "plain", [*lora, "trainer=ddp", "trainer.precision=bf16"], processes=max(gpus, 2),
            needs=("cuda", "gpus>1")),
        Run("qlora", "plain", [*lora, "model.load_in_4bit=true", "trainer.optimizer=paged_adamw_8bit"],
            needs=("cuda", "bitsandbytes")),
        Run("liger", "plain", [*lora, "trainer.kernels=liger"], needs=("cuda", "liger_kernel")),
        Run("chunked", "plain", [*lora, "trainer.chunked_cross_entropy=true"]),
        Run("full", None, ["method=full", "trainer.precision=bf16"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--only", default="", help="comma-separated run names; default: all")
    parser.add_argument("--work", type=Path, default=None, help="folder for the model, rows and runs (default: a temporary one)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()

    gpus = _gpus()
    chosen = [r for r in runs(gpus) if not args.only or r.name in args.only.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_scale-"))
    work.mkdir(parents=True, exist_ok=True)
    model, data = work / "model", work / "rows.jsonl"
    common = ["train", "task=instruction", "task.template=plain", "task.packing=true", f"task.max_length={args.max_length}",
              f"model.name_or_path={model}", f"data.train_file={data}", f"data.validation_file={data}",
              "data.max_eval_samples=64", f"trainer.max_steps={args.steps}", f"trainer.batch_size={args.batch_size}",
              "trainer.eval_strategy=no", "trainer.save_every=null", "trainer.logging_steps=5", "seed=42"]
    if args.dry_run:
        for run in chosen:
            print(run.name, " ".join(_command(run, [*common, *run.overrides, f"hydra.run.dir={work / run.name}"])))
        return 0
    parameters = _build(model, data, args)
    results = {}
    for run in chosen:
        missing = _missing(run, gpus)
        results[run.name] = {"skipped": missing} if missing else _train(run, common, work)
    _table(chosen, results, parameters, args)
    return 0


def _gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _missing(run: Run, gpus: int) -> str | None:
    import importlib.util

    for need in run.needs:
        if need == "cuda" and not gpus:
            return "needs a CUDA GPU"
        if need == "gpus>1" and gpus < 2:
            return "needs 2 GPUs or more"
        if need in ("bitsandbytes", "liger_kernel") and importlib.util.find_spec(need) is None:
            return f"needs {need} (pip install 'ftcli[{'qlora' if need == 'bitsandbytes' else 'liger'}]')"
    return None


def _build(model: Path, data: Path, args: argparse.Namespace) -> int:
    """The random Llama (saved once, with MiniLM's tokenizer) and the rows; its parameter count."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ftcli.models.sources import embedded_tokenizer_path

    if not (model / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(embedded_tokenizer_path())
        tokenizer.eos_token = "[SEP]"
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
                             num_hidden_layers=args.layers, num_attention_heads=max(1, args.hidden // 128),
                             max_position_embeddings=max(2048, args.max_length), pad_token_id=tokenizer.pad_token_id,
                             bos_token_id=None, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(model)
        tokenizer.save_pretrained(model)
    rows = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    data.write_text("".join(rows[i % len(rows)] + "\n" for i in range(args.rows)), encoding="utf-8")
    config = json.loads((model / "config.json").read_text())
    hidden, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    return layers * (4 * hidden * hidden + 3 * hidden * config["intermediate_size"]) + vocab * hidden


def _command(run: Run, words: list[str]) -> list[str]:
    if run.processes:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={run.processes}",
                "-m", "ftcli", *words]
    return [sys.executable, "-m", "ftcli", *words]


def _train(run: Run, common: list[str], work: Path) -> dict[str, Any]:
    folder = work / run.name
    shutil.rmtree(folder, ignore_errors=True)
    command = _command(run, [*common, *run.overrides, f"hydra.run.dir={folder}"])
    print(f"== {run.name}: {' '.join(command)}", flush=True)
    done = subprocess.run(command, env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True)
    if done.returncode != 0:
        return {"failed": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]}
    train = json.loads((folder / "metrics.json").read_text())["train"]
    losses = [json.loads(line).get("loss") for line in (folder / "train_log.jsonl").read_text().splitlines()]
    return {**train, "final_loss": next((x for x in reversed(losses) if x is not None), None)}


def _table(chosen: list[Run], results: dict[str, dict[str, Any]], parameters: int, args: argparse.Namespace) -> None:
    print(f"\nrandom Llama, {parameters / 1e6:.0f}M parameters ({args.layers} layers, hidden {args.hidden}), "
          f"{args.steps} steps of {args.batch_size} rows, length {args.max_length}, packed\n")
    print("| run | tokens/s | MFU | peak GPU MB | peak RSS MB | final loss | tokens/s ratio | GPU memory ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for run in chosen:
        got = results[run.name]
        if "skipped" in got or "failed" in got:
            print(f"| {run.name} | {'skipped: ' + got['skipped'] if 'skipped' in got else 'failed: ' + got['failed'][0]} "
                  "| | | | | | |")
            continue
        base = results.get(run.baseline or "", {})
        speed = _ratio(got.get("tokens_per_second"), base.get("tokens_per_second"))
        memory = _ratio(got.get("peak_gpu_mb"), base.get("peak_gpu_mb"))
        mfu = got.get("mfu")
        print(f"| {run.name} | {got.get('tokens_per_second', 0):,.0f} | {'' if mfu is None else f'{mfu:.1%}'} "
              f"| {got.get('peak_gpu_mb') or ''} | {got.get('peak_rss_mb') or ''} | {got.get('final_loss') or 0:.4f} "
              f"| {speed} | {memory} |")


def _ratio(value: Any, base: Any) -> str:
    return f"{value / base:.2f}x" if value and base else ""


if __name__ == "__main__":
    sys.exit(main())
