"""Fine-tune the embedded MiniLM on SST-2 for one epoch per method; print dev accuracy and speed.

Runs `ftcli train` in this process for each method on the same data and settings, then prints a
table (dev accuracy, samples/s, train time, trainable parameters, artefact size) and each
method's speed as a ratio of the first method's. The data are the GLUE SST-2 jsonl files
(`text`, `label_text`); by default they are looked for in ../shared/data/sst2 beside the checkout.

    python scripts/bench_sst2.py                       # full and lora, one epoch each
    python scripts/bench_sst2.py --methods lora --max-train-samples 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ftcli.cli.main import main

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl and dev.jsonl")
    parser.add_argument("--methods", default="full,lora", help="comma-separated method names")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where run directories go (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides, e.g. trainer.lr=1e-4")
    return parser.parse_args()


def artefact_mb(run: Path) -> float:
    folder = run / "adapter" if (run / "adapter").is_dir() else run / "model"
    weights = [p for p in folder.iterdir() if p.suffix == ".safetensors"]
    return sum(p.stat().st_size for p in weights) / 1e6


def main_bench() -> int:
    args = parse_args()
    train_file, dev_file = args.data_dir / "train.jsonl", args.data_dir / "dev.jsonl"
    if not train_file.is_file() or not dev_file.is_file():
        print(f"SST-2 jsonl not found in {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="ftcli-bench-"))
    rows = []
    for method in args.methods.split(","):
        run = out / method
        overrides = [
            f"method={method}", f"data.train_file={train_file}", f"data.validation_file={dev_file}",
            "data.label_column=label_text", f"trainer.epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
            "trainer.logging_steps=50", f"hydra.run.dir={run}", *args.overrides,
        ]
        if args.max_train_samples:
            overrides.append(f"data.max_train_samples={args.max_train_samples}")
        if main(["train", *overrides]) != 0:
            print(f"{method}: training failed", file=sys.stderr)
            return 1
        metrics = json.loads((run / "metrics.json").read_text())
        train = metrics["train"]
        rows.append((method, metrics["validation"]["accuracy"], train["samples_per_second"], train["train_seconds"],
                     train["parameters"]["trainable_percent"], artefact_mb(run)))
    print("\n| method | dev accuracy | samples/s | train s | trainable % | artefact MB | speed vs first |")
    print("|---|---|---|---|---|---|---|")
    for name, acc, sps, secs, pct, mb in rows:
        print(f"| {name} | {acc:.4f} | {sps:.1f} | {secs:.0f} | {pct:.2f} | {mb:.1f} | {sps / rows[0][2]:.2f}x |")
    print(f"\nrun directories: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
