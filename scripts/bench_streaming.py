"""Memory and speed of a streamed training set (`data.streaming=true`) against the same rows in memory.

Both runs train the same model for the same steps on the same jsonl file, each in a fresh
`ftcli train` process; the in-memory run reads and encodes every row before its first step, the
streamed one only the rows its steps use (plus the shuffle buffer). The table shows peak RSS,
wall time and training samples/s from each run's metrics.json, and the streamed run's ratio to
the in-memory one (the baseline, run in the same invocation).

    python scripts/bench_streaming.py                              # 200,000 synthetic rows, tiny BERT
    python scripts/bench_streaming.py --rows 1000000 --steps 100
    python scripts/bench_streaming.py --train-file ../shared/data/sst2/train.jsonl --model minilm
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = "good bad great awful fine poor dull bright slow sharp warm cold film plot cast scene".split()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic rows written (without --train-file)")
    parser.add_argument("--train-file", type=Path, default=None, help="a jsonl file with `text` and `label`")
    parser.add_argument("--model", default="tiny_bert", help="a model config name")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    return parser.parse_args()


def synthetic(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` reviews of 8 to 40 words with a label, as jsonl."""
    draw = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            words = [draw.choice(WORDS) for _ in range(draw.randint(8, 40))]
            handle.write(json.dumps({"text": " ".join(words), "label": ["neg", "pos"][i % 2]}) + "\n")
    return path


def first_rows(source: Path, path: Path, rows: int) -> Path:
    with source.open(encoding="utf-8") as handle, path.open("w", encoding="utf-8") as out:
        for line, _ in zip(handle, range(rows)):
            out.write(line)
    return path


def train(args: argparse.Namespace, folder: Path, train_file: Path, dev: Path, streaming: bool) -> dict[str, float]:
    run = folder / ("streamed" if streaming else "in_memory")
    command = [
        sys.executable, "-m", "ftcli", "train", "task=sentiment", f"model={args.model}",
        f"data.train_file={train_file}", f"data.validation_file={dev}", f"data.streaming={str(streaming).lower()}",
        f"data.shuffle_buffer={args.shuffle_buffer}", f"trainer.max_steps={args.steps}",
        f"trainer.batch_size={args.batch_size}", "trainer.eval_strategy=no", "trainer.save_every=null",
        f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    metrics = json.loads((run / "metrics.json").read_text())["train"]
    return {"peak_rss_mb": metrics["peak_rss_mb"], "wall_seconds": metrics["wall_seconds"],
            "samples_per_second": metrics["samples_per_second"]}


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_file = args.train_file or synthetic(folder / "train.jsonl", args.rows)
        dev = first_rows(train_file, folder / "dev.jsonl", 64)
        rows, size_mb = sum(1 for _ in train_file.open(encoding="utf-8")), train_file.stat().st_size / 1e6
        base = train(args, folder, train_file, dev, streaming=False)
        streamed = train(args, folder, train_file, dev, streaming=True)
    print(f"{rows:,} rows ({size_mb:.1f} MB), model={args.model}, {args.steps} steps "
          f"of {args.batch_size}, shuffle buffer {args.shuffle_buffer}")
    print(f"{'':22}{'in memory':>12}{'streamed':>12}{'ratio':>8}")
    for key in base:
        ratio = streamed[key] / base[key] if base[key] else float("nan")
        print(f"{key:22}{base[key]:>12.1f}{streamed[key]:>12.1f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
