"""Peak memory and time of one training step's loss, plain against `trainer.chunked_cross_entropy`.

A one-layer Llama-shaped causal LM with a big vocabulary runs forward and backward on one long
row, once with the model's own loss (the whole tokens x vocabulary logits, and their gradient)
and once with ftcli's chunked next-token cross-entropy. Each measurement runs in a fresh child
process, so the peak is its own: on CPU the peak RSS above the RSS once the model is built, on a
GPU `torch.cuda.max_memory_allocated` above the same point. Prints a table and the ratio
chunked / plain, and checks the two losses agree.

    OMP_NUM_THREADS=1 python scripts/bench_chunked_loss.py                       # 4,096 tokens, 64k vocabulary
    python scripts/bench_chunked_loss.py --tokens 8192 --vocab 128256 --chunk 1024 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(args: argparse.Namespace, chunked: bool) -> dict[str, float]:
    import resource

    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from ftcli.engine.chunked_loss import chunked_step
    from ftcli.engine.step import LossUnit, ModelLoss

    device = torch.device(args.device)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                         num_hidden_layers=1, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=args.tokens, use_cache=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(device)
    ids = torch.randint(0, args.vocab, (1, args.tokens), device=device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    step = ModelLoss(LossUnit.next_tokens)
    if chunked:
        step = chunked_step(step, model, args.chunk)
        step.prepare(None, model)  # type: ignore[arg-type]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_mb() * 2**20
    started = time.perf_counter()
    loss = step.loss(model, batch)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"seconds": time.perf_counter() - started, "peak_mb": peak / 2**20, "loss": float(loss)}


def _rss_mb() -> float:
    """The process's resident memory now (Linux), in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=65536)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=1024, help="trainer.cross_entropy_chunk_tokens")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=["plain", "chunked"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args, args.child == "chunked")))
        return
    results = {}
    for variant in ("plain", "chunked"):
        command = [sys.executable, __file__, *sys.argv[1:], "--child", variant]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    plain, chunked = results["plain"], results["chunked"]
    print(f"{args.tokens} tokens, vocabulary {args.vocab}, hidden {args.hidden}, chunks of {args.chunk}, {args.device}")
    print(f"logits alone: {args.tokens * args.vocab * 4 / 2**20:.0f} MiB in float32")
    print(f"{'':10} {'peak MiB':>10} {'seconds':>9} {'loss':>10}")
    for name, row in results.items():
        print(f"{name:10} {row['peak_mb']:10.0f} {row['seconds']:9.2f} {row['loss']:10.5f}")
    print(f"{'ratio':10} {chunked['peak_mb'] / plain['peak_mb']:10.2f} {chunked['seconds'] / plain['seconds']:9.2f}"
          "   (chunked / plain)")
    if abs(chunked["loss"] - plain["loss"]) > 1e-4 * abs(plain["loss"]):
        sys.exit(f"the losses differ: {plain['loss']} against {chunked['loss']}")


if __name__ == "__main__":
    main()
