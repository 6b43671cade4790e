"""Suite-wide settings: everything runs offline, on CPU, with tiny models.

Under pytest-xdist each worker gets an equal share of the cores for torch's threads (and for the
processes a test starts), so the workers do not oversubscribe the machine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
# ftcli's feature cache (data.cache_dir's default) in a folder of this process's own, removed at the end:
# the suite never writes into the user's ~/.cache, nor reads entries an earlier test run left there
os.environ["FTCLI_CACHE_DIR"] = tempfile.mkdtemp(prefix="ftcli-test-features-")
atexit.register(shutil.rmtree, os.environ["FTCLI_CACHE_DIR"], ignore_errors=True)
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# wide enough that an error panel keeps each temporary path in it on one line, as tests match them
os.environ.setdefault("COLUMNS", "400")

if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_share)

    import torch

    torch.set_num_threads(_share)


def _bind_absl_to_the_process_stderr() -> None:
    """absl's log handler (imported with rouge-score) keeps the `sys.stderr` of its import and, when
    logging shuts handlers down, closes that stream unless it is the current `sys.stderr`. Hydra's
    job logging shuts every handler down at each job, so an import inside one test followed by a
    command run under `capsys` in a later one closed pytest's own capture file ("I/O operation on
    closed file", then "lost sys.stderr"). Bound to the process's own stderr, which absl never
    closes, the handler is harmless whatever the order; it is not attached to any logger."""
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)


_bind_absl_to_the_process_stderr()


def pytest_terminal_summary(terminalreporter, config) -> None:
    """The seed of this run's random order (pytest-randomly), also under `-q`, which hides the header
    line that names it: a failure that depends on the order repeats with `--randomly-seed=N`."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and seed is not None and config.getoption("randomly_reorganize"):
        terminalreporter.write_line(f"tests ran in a random order: repeat it with --randomly-seed={seed}")
