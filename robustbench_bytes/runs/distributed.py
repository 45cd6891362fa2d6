"""One command over several processes (torchrun): the process group from the environment, each rank's device,
and an exchange of small JSON objects between ranks that names a rank that stopped answering (what the ranks
share out and check is runs/shares.py).

Without WORLD_SIZE > 1 in the environment nothing is initialised: `World()` is the single process, and every
exchange is the identity, so a one-process run goes through exactly the same code as a rank of a bigger one.

Objects travel through the rendezvous store (the TCPStore torchrun or rank 0 hosts at MASTER_ADDR:MASTER_PORT),
not through a collective: a rank waits for the others without a fixed deadline while they are alive, and each
rank beats a heartbeat from a background thread, so a rank that died or hangs is named once its heartbeat has
been still for `timeout` seconds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from robustbench_bytes.errors import BadInput, RobustbenchError, first_line
from robustbench_bytes.runs.shares import plan_disagreement, plan_fingerprint

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 300.0
_POLL_S = 2.0  # how often a waiting rank looks at the heartbeats of the ranks it waits for


class DistributedError(RobustbenchError):
    """A rank stopped answering (died, hangs, or lost the store): the run cannot go on."""


def rank_device(device: str, local_rank: int, world_size: int) -> str:
    """The device of one rank: `cuda` (or auto with CUDA) becomes cuda:LOCAL_RANK when several ranks run;
    cpu and an explicit cuda:N stay as given."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world_size > 1 and device == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise BadInput(f"LOCAL_RANK {local_rank}: this node has {count} CUDA device(s); start at most "
                           f"{count} processes per node (torchrun --nproc-per-node {count})")
        device = f"cuda:{local_rank}"
    return device


@dataclass
class World:
    """This process's place among the ranks of one run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout: float = DEFAULT_TIMEOUT_S
    backend: str | None = None
    _store: Any = field(default=None, repr=False)
    _prefix: str = ""
    _sequence: int = 0
    _cleared: int = 0  # exchanges up to this one have had their keys deleted
    _heartbeat: "_Heartbeat | None" = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> dict:
        return {"world_size": self.world_size, "backend": self.backend}

    def all_gather(self, obj: Any, what: str) -> list[Any]:
        """Every rank's `obj` (JSON-serialisable), in rank order; `what` names the step in a timeout error."""
        if not self.distributed:
            return [obj]
        tag = self._next_tag()
        self._set(f"{tag}/{self.rank}", obj)
        keys = [f"{tag}/{r}" for r in range(self.world_size)]
        self._wait(keys, what)
        try:
            values = [json.loads(self._store.get(key)) for key in keys]
        except RuntimeError as e:
            raise DistributedError(f"rank {self.rank}: lost the rendezvous store while {what} "
                                   f"({first_line(e)}); another rank or the launcher stopped") from None
        self._forget_before(tag)
        return values

    def check_same_plan(self, plan: dict, what: str = "run") -> None:
        """Every rank must run the same plan (a JSON object: grid, corpus, checkpoints, options, versions): the
        ranks exchange it (with its plan_fingerprint) before any scoring, and on any difference every rank raises
        the same BadInput naming the ranks that differ from rank 0 and the first field that differs."""
        if not self.distributed:
            return
        mine = {"fingerprint": plan_fingerprint(plan), "plan": plan}
        plans = self.all_gather(mine, f"comparing the ranks' {what} plans")
        problem = plan_disagreement(plans, what)
        if problem is None:
            return
        try:  # rank 0 may host the store: it leaves only once every rank has read the plans
            self.all_gather(True, "stopping on different plans")
        except DistributedError:
            pass
        raise BadInput(problem)

    def broadcast(self, make: Callable[[], Any], what: str) -> Any:
        """Rank 0 computes make() and every rank returns it. An exception in make() on rank 0 is raised on
        every rank (as DistributedError with its message) so that no rank waits for an answer that never comes."""
        if not self.distributed:
            return make()
        tag = self._next_tag()
        if self.is_main:
            try:
                value = {"ok": make()}
            except Exception as e:
                value = {"error": str(e) or type(e).__name__, "bad_input": isinstance(e, BadInput)}
                self._set(tag, value)
                raise
            self._set(tag, value)
        else:
            self._wait([tag], what)
            value = json.loads(self._store.get(tag))
            if "error" in value:
                raise (BadInput if value.get("bad_input") else DistributedError)(value["error"])
        return value["ok"]

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    # -- the store

    def _next_tag(self) -> str:
        self._sequence += 1
        return f"{self._prefix}x{self._sequence}"

    def _set(self, key: str, obj: Any) -> None:
        try:
            self._store.set(key, json.dumps(obj, allow_nan=False))
        except RuntimeError as e:
            raise DistributedError(f"rank {self.rank}: lost the rendezvous store ({first_line(e)})") from None

    def _wait(self, keys: list[str], what: str) -> None:
        """Until every key is set; DistributedError once a rank that owes a key has had a still heartbeat for
        `timeout` seconds. Polls with check() (store.wait's own timeout logs a warning each time it expires)."""
        still: dict[int, tuple[str | None, float]] = {}  # rank -> (last heartbeat seen, since when)
        pause, last_look = 0.001, time.monotonic()
        while True:
            try:
                if self._store.check(keys):
                    return
                time.sleep(pause)
                pause = min(_POLL_S / 4, pause * 2)
                now = time.monotonic()
                if now - last_look < _POLL_S:
                    continue
                last_look = now
                for key in keys:
                    if not self._store.check([key]):
                        self._look_at(key, still, now, what)
            except RuntimeError as e:
                raise DistributedError(f"rank {self.rank}: lost the rendezvous store while {what} "
                                       f"({first_line(e)}); another rank or the launcher stopped") from None

    def _look_at(self, key: str, still: dict, now: float, what: str) -> None:
        last = key.rsplit("/", 1)[-1]
        rank = int(last) if last.isdigit() else 0  # a broadcast's key is rank 0's
        beat_key = f"{self._prefix}alive/{rank}"
        beat = self._store.get(beat_key).decode() if self._store.check([beat_key]) else None
        seen, since = still.get(rank, (None, now))
        if beat != seen or rank not in still:
            still[rank] = (beat, now)
        elif now - since > self.timeout:
            raise DistributedError(f"rank {self.rank}: rank {rank} has not answered for {self.timeout:.0f} s "
                                   f"while {what} (it died or hangs: see its log); stopping")

    def _forget_before(self, tag: str) -> None:
        """After an all-gather, rank 0 drops the keys of every earlier exchange: each rank posted its part of
        this one, so each has read everything before it (a broadcast proves nothing of the kind)."""
        if not self.is_main:
            return
        for sequence in range(self._cleared + 1, self._sequence):
            old = f"{self._prefix}x{sequence}"
            for key in [old] + [f"{old}/{r}" for r in range(self.world_size)]:
                try:
                    self._store.delete_key(key)
                except RuntimeError:
                    pass
        self._cleared = self._sequence - 1


class _Heartbeat:
    """A daemon thread that bumps this rank's counter in the store every few seconds, on its own connection."""

    def __init__(self, store, key: str, interval: float):
        self.store, self.key, self.interval = store, key, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="robustbench-heartbeat", daemon=True)
        self._thread.start()

    def _run(self):
        beat = 0
        while not self._stop.is_set():
            beat += 1
            try:
                self.store.set(self.key, str(beat))
            except RuntimeError:  # the store is gone: the waiting side reports it
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()


def launched_world_size() -> int:
    """WORLD_SIZE as the launcher set it (1 when not launched by torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def launched_rank() -> int:
    """RANK as the launcher set it (0 when not launched by torchrun), read before any initialisation: an integer
    in [0, WORLD_SIZE), and LOCAL_RANK one >= 0 (BadInput otherwise)."""
    world_size = launched_world_size()
    if world_size <= 1:
        return 0
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise BadInput(f"environment variable RANK={rank}: expected an integer from 0 to {world_size - 1} "
                       f"(WORLD_SIZE={world_size})")
    if local_rank < 0:
        raise BadInput(f"environment variable LOCAL_RANK={local_rank}: expected an integer >= 0")
    return rank


def from_environment(device: str, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[World, str]:
    """(the World of this process, its device). Initialises torch.distributed (env://; nccl for CUDA, gloo
    for the CPU) when torchrun (or the user) set WORLD_SIZE > 1; otherwise returns World() and `device`."""
    world_size = launched_world_size()
    if world_size <= 1:
        return World(timeout=timeout), rank_device(device, 0, 1)
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise BadInput(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: start the ranks with "
                       f"torchrun (see docs/scale.md)")
    import torch
    import torch.distributed as dist

    rank, local_rank = launched_rank(), _env_int("LOCAL_RANK", 0)
    device = rank_device(device, local_rank, world_size)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(torch.device(device))
    host, port = os.environ["MASTER_ADDR"], _env_int("MASTER_PORT", 0)
    run = os.environ.get("TORCHELASTIC_RUN_ID", "run")
    prefix = f"robustbench/{run}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"

    def client(hosts: bool = False):
        return dist.TCPStore(host, port, world_size=world_size if hosts else None, is_master=hosts,
                             timeout=timedelta(seconds=timeout), wait_for_workers=False)

    # rank 0 hosts the store when no launcher agent does (plain environment variables, no torchrun)
    store = client(hosts=rank == 0 and "TORCHELASTIC_RUN_ID" not in os.environ)
    if not dist.is_initialized():
        # the group's keys carry the restart count: after `torchrun --max-restarts` the launcher's store still
        # holds the dead generation's addresses under the unprefixed names
        dist.init_process_group(backend=backend, store=dist.PrefixStore(prefix + "pg", store), rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout))

    world = World(rank=rank, world_size=world_size, local_rank=local_rank, timeout=timeout, backend=backend,
                  _store=store, _prefix=prefix)
    world._heartbeat = _Heartbeat(client(), f"{prefix}alive/{rank}", interval=max(0.5, min(10.0, timeout / 5)))
    return world, device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"environment variable {name}={value!r}: expected an integer") from None

