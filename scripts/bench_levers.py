"""One speed lever at a time: training steps of the embedded MiniLM on real SST-2 batches.

Each variant runs in a fresh process on the same length-grouped batches (batch 32) and reports
samples/s over the steps after a warm-up, as a ratio of the plain loop (`base`): the model as
loaded (SDPA attention), fused AdamW, gradient clipping, fp32.

    python scripts/bench_levers.py                          # base, eager, denormal, bf16, compile
    python scripts/bench_levers.py --variants base,compile --steps 60

Variants: `eager` (eager attention instead of SDPA), `denormal` (flush denormals to zero),
`bf16` (bf16 autocast), `compile` (`torch.compile(dynamic=True)` of the forward pass; its
compile time shows in the warm-up column).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
VARIANTS = ("base", "eager", "denormal", "bf16", "compile")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl (`text`, `label`)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--warmup", type=int, default=10, help="steps before timing")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Warm-up and timed steps of one variant, in this process."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from ftcli.config.schema import EMBEDDED_MODEL
    from ftcli.engine.batching import TrainBatches
    from ftcli.modeling import resolve

    variant, path = args.child, resolve(EMBEDDED_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    count = 100 * args.batch_size
    with (args.data_dir / "train.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(count))]
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=128)
    features = [{"input_ids": i, "attention_mask": a, "labels": int(r["label"])}
                for i, a, r in zip(encoded["input_ids"], encoded["attention_mask"], rows)]
    order = list(TrainBatches([len(f["input_ids"]) for f in features], args.batch_size, 0, True))
    collate = DataCollatorWithPadding(tokenizer)
    batches = [collate([features[i] for i in b]) for b in order[: args.warmup + args.steps]]
    torch.manual_seed(0)
    extra = {"attn_implementation": "eager"} if variant == "eager" else {}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **extra)
    if variant == "denormal":
        torch.set_flush_denormal(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    forward = torch.compile(model, dynamic=True) if variant == "compile" else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16" else contextlib.nullcontext
    model.train()

    def step(batch: dict) -> None:
        with autocast():
            loss = forward(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for batch in batches[: args.warmup]:
        step(batch)
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for batch in batches[args.warmup:]:
        step(batch)
    timed = time.perf_counter() - started
    samples = sum(len(b["labels"]) for b in batches[args.warmup:])
    return {"warmup_s": warmup, "samples_per_second": samples / timed}


def main() -> int:
    args = parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return 0
    if not (args.data_dir / "train.jsonl").is_file():
        print(f"train.jsonl not found in {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}\n")
    results = {}
    for variant in args.variants.split(","):
        command = [sys.executable, __file__, "--child", variant, "--data-dir", str(args.data_dir),
                   "--warmup", str(args.warmup), "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(output.strip().splitlines()[-1])
    base = results.get("base", next(iter(results.values())))["samples_per_second"]
    print("| variant | warm-up s | samples/s | vs base |\n|---|---|---|---|")
    for variant, r in results.items():
        print(f"| {variant} | {r['warmup_s']:.1f} | {r['samples_per_second']:.1f} | {r['samples_per_second'] / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
