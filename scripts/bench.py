"""ftcli against a plain Hugging Face Trainer and `pipeline` on the same work, in one invocation.

Training: the same model, data and hyperparameters through (a) `ftcli train` and (b) a Trainer
with its best settings (dynamic padding, `train_sampling_strategy="group_by_length"`, fused
AdamW, its default), for full fine-tuning and for LoRA. Inference: `ftcli predict` against
`transformers.pipeline("text-classification")` (batched alike) on the same sentences, with the
model ftcli trained. Each measurement runs in a fresh child process, so peak RSS is its own and
no run inherits another's threads, caches or compiled kernels. Prints one table per part with
the ratio ftcli / baseline.

    python scripts/bench.py                                  # SST-2 beside the checkout, 8,000 training rows
    python scripts/bench.py --max-train-samples 0            # the whole training set
    python scripts/bench.py --methods lora --skip-predict -- trainer.compile=true
    python scripts/bench.py --batch-size 128 --max-train-samples 0     # on a GPU: bf16 on both sides

Both sides run on the same device (`--device auto`: the GPU when there is one) in the same precision
(`--precision auto`: bf16 autocast on a GPU that has it, fp32 elsewhere); the pipeline gets bf16
weights, its fastest setting.

Arguments after `--` are extra overrides for the ftcli side only (to measure one lever).
The data are jsonl files with `text` and an integer `label` (GLUE SST-2 as exported by
`datasets`, with `label_text` beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "targets": ["query", "value"]}  # ftcli's method=lora defaults
DEFAULT_LR = {"full": 5e-5, "lora": 1e-3}  # ftcli's per-method defaults, given to both sides


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl and dev.jsonl")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded MiniLM)")
    parser.add_argument("--methods", default="full,lora", help="comma-separated: full, lora")
    parser.add_argument("--max-train-samples", type=int, default=8000, help="0: all")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--predict-samples", type=int, default=5000, help="sentences for the inference comparison")
    parser.add_argument("--predict-batch-size", type=int, default=64)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="where run directories go (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides (after --)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- children: one measurement each


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_gpu_mb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def real_tokens(model: str, texts: list[str], max_length: int) -> int:
    """Tokens the model sees without padding: the same count for both sides, for tokens/s."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def child_ftcli_train(spec: dict[str, Any]) -> dict[str, Any]:
    from ftcli.cli.main import main

    run = Path(spec["run"])
    overrides = [
        f"method={spec['method']}", f"model.name_or_path={spec['model']}",
        f"data.train_file={spec['train']}", f"data.validation_file={spec['dev']}", "data.label_column=label_text",
        f"trainer.epochs={spec['epochs']}", f"trainer.batch_size={spec['batch_size']}", f"trainer.lr={spec['lr']}",
        f"task.max_length={spec['max_length']}", "trainer.logging_steps=50", "trainer.save_every=null",
        f"trainer.precision={spec['precision']}", f"seed={spec['seed']}", f"hydra.run.dir={run}", *spec["overrides"],
    ]
    if spec["max_train_samples"]:
        overrides.append(f"data.max_train_samples={spec['max_train_samples']}")
    if main(["train", *overrides]) != 0:
        raise SystemExit(f"ftcli train failed: {' '.join(overrides)}")
    metrics = json.loads((run / "metrics.json").read_text())
    train = metrics["train"]
    return {"accuracy": metrics["validation"]["accuracy"], "samples": round(train["samples_per_second"] * train["train_seconds"]),
            "seconds": train["train_seconds"], "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": train.get("peak_gpu_mb")}


def child_hf_train(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    train_rows = read_jsonl(Path(spec["train"]))
    if spec["max_train_samples"]:  # as ftcli's data.max_train_samples: the first N
        train_rows = train_rows[: spec["max_train_samples"]]
    dev_rows = read_jsonl(Path(spec["dev"]))

    def dataset(rows: list[dict[str, Any]]) -> Dataset:
        encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=spec["max_length"])
        return Dataset.from_dict({**encoded, "labels": [int(r["label"]) for r in rows]})

    train_set, dev_set = dataset(train_rows), dataset(dev_rows)
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=2)
    if spec["method"] == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.SEQ_CLS, r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
            target_modules=LORA["targets"],
        ))
    steps = int(np.ceil(len(train_set) / spec["batch_size"]) * spec["epochs"])
    args = TrainingArguments(
        output_dir=spec["run"], per_device_train_batch_size=spec["batch_size"], per_device_eval_batch_size=64,
        learning_rate=spec["lr"], num_train_epochs=spec["epochs"], weight_decay=0.01, max_grad_norm=1.0,
        lr_scheduler_type="linear", warmup_steps=round(0.06 * steps), train_sampling_strategy="group_by_length",
        logging_steps=50, save_strategy="no", eval_strategy="no", report_to=[], seed=spec["seed"],
        use_cpu=spec["device"] == "cpu", bf16=spec["precision"] == "bf16", disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=DataCollatorWithPadding(tokenizer))
    output = trainer.train()
    predictions = trainer.predict(dev_set)
    accuracy = float((predictions.predictions.argmax(-1) == predictions.label_ids).mean())
    return {"accuracy": accuracy, "samples": round(output.metrics["train_samples_per_second"] * output.metrics["train_runtime"]),
            "seconds": output.metrics["train_runtime"], "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu_mb()}


def child_ftcli_predict(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()  # both predictors are timed from before their imports
    from ftcli.cli.main import main

    output = Path(spec["output"])
    code = main(["predict", f"run_dir={spec['run']}", f"input={spec['input']}", f"output={output}",
                 f"batch_size={spec['batch_size']}", f"hydra.run.dir={output.parent / 'predict-run'}"])
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit("ftcli predict failed")
    labels = [json.loads(line)["label"] for line in output.read_text().splitlines()]
    return {"labels": labels, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def child_pipeline_predict(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import torch
    from transformers import pipeline

    texts = Path(spec["input"]).read_text(encoding="utf-8").splitlines()
    dtype = torch.bfloat16 if spec["precision"] == "bf16" else torch.float32
    classify = pipeline("text-classification", model=str(Path(spec["run"]) / "model"),
                        device=0 if spec["device"] == "cuda" else -1, dtype=dtype)
    results = classify(texts, batch_size=spec["batch_size"], truncation=True, max_length=spec["max_length"])
    seconds = time.perf_counter() - started
    return {"labels": [r["label"] for r in results], "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


CHILDREN = {"ftcli-train": child_ftcli_train, "hf-train": child_hf_train,
            "ftcli-predict": child_ftcli_predict, "pipeline-predict": child_pipeline_predict}


# ---------------------------------------------------------------- the parent: runs children, prints tables


def measure(kind: str, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    spec_file = workdir / f"{kind}-{spec.get('method', 'predict')}.spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    if spec["device"] == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    subprocess.run([sys.executable, __file__, "--child", kind, "--spec", str(spec_file)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return json.loads(result_file(spec_file).read_text())


def result_file(spec_file: Path) -> Path:
    return spec_file.with_name(spec_file.name.replace(".spec.json", ".result.json"))


def train_table(args: argparse.Namespace, model: str, workdir: Path) -> list[str]:
    train_file, dev_file = args.data_dir / "train.jsonl", args.data_dir / "dev.jsonl"
    rows = read_jsonl(train_file, args.max_train_samples or None)
    tokens_per_epoch = real_tokens(model, [r["text"] for r in rows], args.max_length)
    lines = ["| method | trainer | dev accuracy | samples/s | tokens/s | train s | peak RSS MB | peak GPU MB | speed ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in args.methods.split(","):
        spec = {"method": method, "model": model, "train": str(train_file), "dev": str(dev_file),
                "epochs": args.epochs, "batch_size": args.batch_size, "lr": DEFAULT_LR[method],
                "max_length": args.max_length, "seed": args.seed, "max_train_samples": args.max_train_samples,
                "overrides": args.overrides, **args.placement}
        results = {}
        for kind in ("hf-train", "ftcli-train"):
            results[kind] = measure(kind, {**spec, "run": str(workdir / f"{kind}-{method}")}, workdir)
        base = results["hf-train"]["samples"] / results["hf-train"]["seconds"]
        for kind, name in (("hf-train", "HF Trainer"), ("ftcli-train", "ftcli")):
            r = results[kind]
            sps = r["samples"] / r["seconds"]
            tps = tokens_per_epoch * args.epochs / r["seconds"]
            lines.append(f"| {method} | {name} | {r['accuracy'] * 100:.2f} | {sps:.1f} | {tps:,.0f} | {r['seconds']:.0f} "
                         f"| {r['peak_rss_mb']:,.0f} | {gpu_mb(r)} | {sps / base:.2f}x |")
        print("\n".join(lines[-2:]), flush=True)
    return lines


def gpu_mb(result: dict[str, Any]) -> str:
    return "–" if result.get("peak_gpu_mb") is None else f"{result['peak_gpu_mb']:,.0f}"


def placement(args: argparse.Namespace) -> dict[str, str]:
    """The device and precision both sides run in, with `auto` resolved."""
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible")
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return {"device": device, "precision": precision}


def predict_table(args: argparse.Namespace, model: str, workdir: Path) -> list[str]:
    run = workdir / "ftcli-train-full"
    if not (run / "metrics.json").exists():  # a full run to predict with, trained by ftcli
        measure("ftcli-train", {"method": "full", "model": model, "train": str(args.data_dir / "train.jsonl"),
                                "dev": str(args.data_dir / "dev.jsonl"), "epochs": args.epochs,
                                "batch_size": args.batch_size, "lr": DEFAULT_LR["full"], "max_length": args.max_length,
                                "seed": args.seed, "max_train_samples": args.max_train_samples,
                                "overrides": args.overrides, "run": str(run), **args.placement}, workdir)
    texts = [r["text"] for r in read_jsonl(args.data_dir / "train.jsonl", args.predict_samples)]
    sentences = workdir / "sentences.txt"
    sentences.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    spec = {"run": str(run), "input": str(sentences), "batch_size": args.predict_batch_size, "max_length": args.max_length,
            **args.placement}
    ours = measure("ftcli-predict", {**spec, "output": str(workdir / "predictions.jsonl")}, workdir)
    theirs = measure("pipeline-predict", spec, workdir)
    same = sum(a == b for a, b in zip(ours["labels"], theirs["labels"])) / len(texts)
    base = len(texts) / theirs["seconds"]
    lines = ["| predictor | sentences | sentences/s | wall s | peak RSS MB | speed ratio |", "|---|---|---|---|---|---|"]
    for name, r in (("transformers pipeline", theirs), ("ftcli predict", ours)):
        sps = len(texts) / r["seconds"]
        lines.append(f"| {name} | {len(texts):,} | {sps:.1f} | {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} | {sps / base:.2f}x |")
    lines.append(f"\nsame label for {same * 100:.2f}% of the sentences (wall times include imports and loading the model)")
    return lines


def main_bench(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        result_file(Path(args.spec)).write_text(json.dumps(CHILDREN[args.child](spec)))
        return 0
    if not (args.data_dir / "train.jsonl").is_file() or not (args.data_dir / "dev.jsonl").is_file():
        print(f"train.jsonl and dev.jsonl not found in {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    from ftcli.config.schema import EMBEDDED_MODEL
    from ftcli.models.sources import resolve

    model = args.model or resolve(EMBEDDED_MODEL)
    workdir = args.out or Path(tempfile.mkdtemp(prefix="ftcli-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import torch

    args.placement = placement(args)
    where = (torch.cuda.get_device_name(0) if args.placement["device"] == "cuda"
             else f"CPU, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    print(f"torch {torch.__version__}, {where}, {args.placement['precision']}; runs in {workdir}", flush=True)
    if not args.skip_train:
        print("\n## Training\n\n" + "\n".join(train_table(args, model, workdir)), flush=True)
    if not args.skip_predict:
        print("\n## Inference\n\n" + "\n".join(predict_table(args, model, workdir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
