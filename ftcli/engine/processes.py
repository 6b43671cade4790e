"""The processes of one distributed run: who writes, how they agree, and how one failure ends them all.

`accelerate launch -m ftcli ...` and `torchrun --nproc_per_node N -m ftcli ...` start N copies of
the same command, told apart by the `RANK` / `WORLD_SIZE` variables the launcher sets. `start`
joins them into one process group before Hydra runs (NCCL on GPUs; gloo on a machine without one,
which `accelerate` would otherwise treat as N unrelated single-process runs). Rank 0 is the main
process: it alone writes the run directory, and the others wait for it where they read what it
wrote (`barrier`, `main_first`).

A rank that fails posts its exit code and message in the launch's key-value store (the one the
process group was set up through, reachable from every node) before it exits. Every other rank
watches that store from a background thread and, once a failure is posted, prints it and exits at
once with the same code: a rank blocked in a collective operation (waiting for a gradient the failed
rank will never send) would otherwise hang until the process-group timeout.

Outside a launch (one process) every function here is a no-op that answers as rank 0 of 1.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")
FAILURE_KEY = "ftcli/failure"
WATCH_SECONDS = 0.2
_watcher: threading.Thread | None = None
_alone = False  # inside `main_first`: no work is shared


def launched() -> bool:
    """Whether this process is one of several started by a launcher (`WORLD_SIZE` above 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def start(timeout: timedelta = timedelta(minutes=30)) -> None:
    """Join this launch's process group (once per process) and start watching for another rank's failure.

    `timeout` bounds how long a collective operation may wait for a rank that neither answers nor
    fails (a machine that went away); a failing rank ends the others at once, whatever it is.
    """
    import torch
    from accelerate import PartialState

    if not launched():
        return
    PartialState(cpu=not torch.cuda.is_available(), timeout=timeout)
    _watch()


def active() -> bool:
    """Whether a process group of more than one process is running (torch is not imported outside a launch)."""
    if not launched():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if active() else 0


def world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process writes the run directory (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    import torch.distributed as dist

    if active():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first (it builds and writes what the block caches); the
    others run it after, and read what it wrote. Inside the block each process works alone:
    `share` gives it every item."""
    global _alone
    if not is_main():
        barrier()
    _alone = True
    try:
        yield
    finally:
        _alone = False
    if is_main():
        barrier()


def sharding() -> bool:
    """Whether work is split across processes here: in a distributed run, outside `main_first`."""
    return active() and not _alone


def share(items: list[T]) -> list[T]:
    """This process's consecutive share of `items`; the shares of all processes, in rank order,
    are `items` once each, whatever the remainder (shares differ in length by one at most)."""
    if not sharding():
        return items
    count, size, at = len(items), world(), rank()
    return items[at * count // size:(at + 1) * count // size]


def broadcast(value: T) -> T:
    """The main process's `value`, on every process."""
    import torch.distributed as dist

    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: T) -> list[T]:
    """Every process's `value`, in rank order, on every process."""
    import torch.distributed as dist

    if not active():
        return [value]
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, value)
    return parts


def any_rank(flag: bool) -> bool:
    """Whether `flag` holds on any process: how the processes agree to stop at the same step."""
    return any(gather(flag)) if active() else flag


def post_failure(code: int, message: str) -> bool:
    """Post this rank's failure for the others; False when another rank's failure was posted first."""
    store = _store()
    if store is None:
        return True
    record = json.dumps({"rank": rank(), "code": code, "message": message})
    try:
        return store.compare_set(FAILURE_KEY, "", record).decode() == record
    except Exception:  # the store went with the process that hosted it: nobody is left to tell
        return True


def posted_failure() -> dict[str, Any] | None:
    """The failure a rank posted, if any."""
    store = _store()
    if store is None:
        return None
    try:
        if not store.check([FAILURE_KEY]):
            return None
        return dict(json.loads(store.get(FAILURE_KEY).decode()))
    except Exception:  # a store that is gone, or a key being written: nothing to act on yet
        return None


def finish() -> None:
    """Wait for every process at the end of a command, then leave the process group.

    The main process writes the artefact after the others are done with training: they wait
    here, so a failure while it writes still ends them with its exit code.
    """
    if not active():
        return
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def follow(failure: dict[str, Any] | None = None) -> None:
    """End this process with the exit code of the failure another rank posted, saying which it was."""
    failure = failure or posted_failure()
    if failure is None:
        return
    sys.stderr.write(f"rank {rank()} stopped: rank {failure['rank']} failed (exit {failure['code']}): "
                     f"{failure['message']}\n")
    leave(int(failure["code"]))


def leave(code: int) -> None:
    """End this process now with `code`, once its failure is posted: the process group's teardown
    would wait for ranks that are themselves being stopped. The main process first gives the others
    time to read the failure, since outside `torchrun` the store lives in it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if is_main():
        time.sleep(3 * WATCH_SECONDS)
    os._exit(code)


def _store() -> Any:
    import torch.distributed as dist

    if not active():
        return None
    return dist.distributed_c10d._get_default_store()


def _watch() -> None:
    """Start the thread that ends this process once another rank posts a failure."""
    global _watcher
    if _watcher is not None or not active():
        return
    mine = rank()

    def watch() -> None:
        while active():
            time.sleep(WATCH_SECONDS)
            failure = posted_failure()
            if failure is not None and failure["rank"] != mine:
                follow(failure)

    _watcher = threading.Thread(target=watch, name="ftcli-failure-watch", daemon=True)
    _watcher.start()
