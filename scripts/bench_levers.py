"""One speed lever at a time: training steps of the embedded MiniLM on real SST-2 batches.

Each variant runs in a fresh process on the same length-grouped batches (batch 32), twice over:
the first pass pays for everything done once per shape or once per process (kernel plans, compiling),
the second shows the steady state. Samples/s of each pass are reported as a ratio of the plain loop
(`base`): the model as loaded (SDPA attention with PyTorch's own kernel choice), fused AdamW,
gradient clipping, fp32 on a CPU and bf16 autocast on a GPU that has it.

    python scripts/bench_levers.py                          # every variant, 40 batches
    python scripts/bench_levers.py --variants base,no_cudnn_attention,pad8 --batches 400

Variants: `eager` (eager attention instead of SDPA), `denormal` (flush denormals to zero), `bf16`
(bf16 autocast), `compile` (`torch.compile(dynamic=True)` of the forward pass), `no_cudnn_attention`
(ftcli's attention choice: cuDNN attention left out, which only matters on a GPU), `pad8` (batches
padded to a multiple of 8 tokens: fewer distinct shapes, more padding).
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
VARIANTS = ("base", "eager", "denormal", "bf16", "compile", "no_cudnn_attention", "pad8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl (`text`, `label`)")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded MiniLM)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batches", type=int, default=40, help="batches per pass; each variant runs two passes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Both passes of one variant, in this process."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from ftcli.config.schema import EMBEDDED_MODEL
    from ftcli.engine.attention import variable_length_attention
    from ftcli.engine.batching import TrainBatches
    from ftcli.models.sources import resolve

    variant, path = args.child, args.model or resolve(EMBEDDED_MODEL)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    count = 10 * args.batches * args.batch_size  # grouping draws each batch from a pool of ten
    with (args.data_dir / "train.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(count))]
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=128)
    features = [{"input_ids": i, "attention_mask": a, "labels": int(r["label"])}
                for i, a, r in zip(encoded["input_ids"], encoded["attention_mask"], rows)]
    order = list(TrainBatches([len(f["input_ids"]) for f in features], args.batch_size, 0, True))[: args.batches]
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if variant == "pad8" else None)
    batches = [{k: v.to(device) for k, v in collate([features[i] for i in b]).items()} for b in order]
    torch.manual_seed(0)
    extra = {"attn_implementation": "eager"} if variant == "eager" else {}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **extra).to(device)
    if variant == "denormal":
        torch.set_flush_denormal(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    forward = torch.compile(model, dynamic=True) if variant == "compile" else model
    bf16 = variant == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    attention = variable_length_attention if variant == "no_cudnn_attention" else contextlib.nullcontext
    model.train()

    def step(batch: dict) -> None:
        with autocast():
            loss = forward(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    samples = sum(len(b["labels"]) for b in batches)
    rates = []
    with attention():
        for _ in range(2):
            started = time.perf_counter()
            for batch in batches:
                step(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(samples / (time.perf_counter() - started))
    return {"first": rates[0], "second": rates[1], "shapes": len({tuple(b["input_ids"].shape) for b in batches})}


def main() -> int:
    args = parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return 0
    if not (args.data_dir / "train.jsonl").is_file():
        print(f"train.jsonl not found in {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    import torch

    where = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
             f"CPU, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, "
             f"native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print(f"torch {torch.__version__}, {where}\n")
    results = {}
    for variant in args.variants.split(","):
        command = [sys.executable, __file__, "--child", variant, "--data-dir", str(args.data_dir),
                   "--batches", str(args.batches), "--batch-size", str(args.batch_size)]
        if args.model:
            command += ["--model", args.model]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(output.strip().splitlines()[-1])
    base = results.get("base", next(iter(results.values())))
    print("| variant | shapes | first pass samples/s | vs base | second pass samples/s | vs base |\n|---|---|---|---|---|---|")
    for variant, r in results.items():
        print(f"| {variant} | {r['shapes']} | {r['first']:.1f} | {r['first'] / base['first']:.2f}x "
              f"| {r['second']:.1f} | {r['second'] / base['second']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
