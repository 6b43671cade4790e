"""Train every fine-tuning method on the same SST-2 budget and write a comparison table.

Each method runs as its own `ftcli train` process on the embedded MiniLM (so peak RSS is that
method's alone), with the same rows, epochs and batch size, and each method's default learning
rate. The table (dev accuracy, trainable %, artefact MB, samples/s, peak RSS, and samples/s as a
ratio of full fine-tuning's) is printed and written as markdown.

    python scripts/compare_methods.py --max-train-samples 4000        # a quick budget
    python scripts/compare_methods.py --out docs/methods.md           # the whole train split, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
# Entries beyond the method options: a label and the overrides that make it.
VARIANTS = {
    "lora_all_linear": ["method=lora", "method.target_modules=all-linear"],
    "dora": ["method=lora", "method.use_dora=true"],
    "rslora": ["method=lora", "method.use_rslora=true"],
    "loraplus": ["method=lora", "method.loraplus_lr_ratio=16"],
    "adapter_pfeiffer": ["method=adapter", "method.placement=pfeiffer"],
}
ALL_METHODS = ",".join([
    "full", "freeze", "bitfit", "lora", *VARIANTS, "adapter", "ia3", "ln_tuning",
    "prompt_tuning", "p_tuning", "prefix_tuning", "lora_adapter", "lora_prefix",
])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl and dev.jsonl")
    parser.add_argument("--methods", default=ALL_METHODS,
                        help=f"comma-separated method options or variants ({', '.join(VARIANTS)})")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-train-samples", type=int, default=None, help="rows of train to use (the budget)")
    parser.add_argument("--runs", type=Path, default=None, help="where run directories go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides for every method")
    return parser.parse_args()


def train(method: str, args: argparse.Namespace, run: Path) -> tuple[int, float]:
    """Run one training process; return its exit code and peak RSS in MB."""
    command = [
        sys.executable, "-m", "ftcli", "train", *VARIANTS.get(method, [f"method={method}"]),
        f"data.train_file={args.data_dir / 'train.jsonl'}", f"data.validation_file={args.data_dir / 'dev.jsonl'}",
        "data.label_column=label_text", f"trainer.epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
        "trainer.logging_steps=50", f"hydra.run.dir={run}", *args.overrides,
    ]
    if args.max_train_samples:
        command.append(f"data.max_train_samples={args.max_train_samples}")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main() -> int:
    args = parse_args()
    if not (args.data_dir / "train.jsonl").is_file():
        print(f"SST-2 jsonl not found in {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    runs = args.runs or Path(tempfile.mkdtemp(prefix="ftcli-compare-"))
    rows = []
    for method in args.methods.split(","):
        started = time.perf_counter()
        code, rss = train(method, args, runs / method)
        if code != 0:
            print(f"{method}: ftcli train exited {code}", file=sys.stderr)
            return 1
        metrics = json.loads((runs / method / "metrics.json").read_text())
        train_metrics = metrics["train"]
        rows.append({
            "method": method, "accuracy": metrics["validation"]["accuracy"],
            "trainable": train_metrics["parameters"]["trainable_percent"], "mb": train_metrics["artifact_mb"],
            "sps": train_metrics["samples_per_second"], "rss": rss, "lr": train_metrics["lr"],
            "wall": time.perf_counter() - started,
        })
        print(f"{method}: accuracy {rows[-1]['accuracy']:.4f}, {rows[-1]['sps']:.1f} samples/s", file=sys.stderr)
    table = markdown(rows, args)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    base = next((r["sps"] for r in rows if r["method"] == "full"), rows[0]["sps"])
    budget = f"first {args.max_train_samples} rows" if args.max_train_samples else "all 67,349 rows"
    lines = [
        "# Fine-tuning methods compared",
        "",
        f"Embedded MiniLM (all-MiniLM-L6-v2) on GLUE SST-2: {budget} of train, {args.epochs:g} epoch(s), "
        f"batch {args.batch_size}, each method's default learning rate; accuracy on the 872-sentence dev set. "
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, fp32.",
        "",
        "Command: `python scripts/compare_methods.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "| method | lr | dev accuracy | trainable % | artefact MB | samples/s | speed vs full | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['lr']:g} | {r['accuracy']:.4f} | {r['trainable']:.3f} | {r['mb']:.2f} | "
            f"{r['sps']:.1f} | {r['sps'] / base:.2f}x | {r['rss']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
