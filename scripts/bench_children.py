"""What the benchmarks against TRL share: each measurement in a fresh child process, and the hook that
times ftcli's optimiser steps.

`scripts/bench_trl.py` and `scripts/bench_llm.py` run every side as `python <script> --child <side>
--spec <file>`: the parent writes the spec, the child writes its result beside it, so no run's
memory or threads reach another's.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CHILD_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "CUDA_VISIBLE_DEVICES": "",
             "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}


def measure(script: str, side: str, spec: dict[str, Any], workdir: Path, label: str,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script --child side` on `spec` in a fresh process and return the result it wrote."""
    spec_file = workdir / f"{label}.spec.json"
    spec_file.write_text(json.dumps(spec))
    log = workdir / f"{label}.log"
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, script, "--child", side, "--spec", str(spec_file)],
                              env={**os.environ, **CHILD_ENV, **(env or {})}, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{label} failed (exit {done.returncode}); its log, {log}, ends:\n{tail}")
    return json.loads(result_file(spec_file).read_text())


def result_file(spec_file: Path) -> Path:
    return spec_file.with_name(spec_file.name.replace(".spec.json", ".result.json"))


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of a side's repeats."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def meter_optimiser_steps(begin: Callable[[list[Any]], None], end: Callable[[float], None]) -> None:
    """Call `begin(window)` and `end(loss)` around each of ftcli's optimiser steps, in this process."""
    from ftcli.engine import loop

    step = getattr(loop, "_optimiser_step", None)
    if step is None:
        raise SystemExit("ftcli.engine.loop._optimiser_step is gone: update scripts/bench_children.py")

    def metered(run: Any, training_step: Any, window: list[Any], *args: Any, **kwargs: Any) -> Any:
        begin(window)
        loss, stopping = step(run, training_step, window, *args, **kwargs)
        end(float(loss))
        return loss, stopping

    loop._optimiser_step = metered  # type: ignore[attr-defined]


def versions(checkout: Path, names: Sequence[str]) -> str:
    """The installed versions of `names`, and the checkout's commit."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        found.append(f"ftcli {commit}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(found)
