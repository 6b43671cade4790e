"""scripts/bench_scale.py plans every comparison, each a `ftcli train` command, without training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_scale.py"


def test_the_dry_run_prints_each_runs_command(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = {line.split(" ", 1)[0]: line for line in done.stdout.splitlines()}
    assert set(lines) == {"plain", "ddp_1", "ddp_all", "qlora", "liger", "chunked", "full"}
    assert "torch.distributed.run --standalone --nproc_per_node=1 -m ftcli train" in lines["ddp_1"]
    assert "model.load_in_4bit=true trainer.optimizer=paged_adamw_8bit" in lines["qlora"]
    assert all(f"hydra.run.dir={tmp_path / name}" in line for name, line in lines.items())
    assert not list(tmp_path.iterdir())  # nothing built
