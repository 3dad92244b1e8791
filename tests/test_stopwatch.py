"""StopWatch under DDP: processes with different clocks leave the training loop at the same step."""

from __future__ import annotations

import os
import socket

import torch.multiprocessing as mp

from genfields.training import Distributed, StopWatch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    dist = Distributed()
    # rank 1's budget is already spent, rank 0's is not: both must stop at the first check
    watch = StopWatch(0 if rank == 1 else 60, dist)
    steps = 0
    while not watch.should_stop():
        dist.average(1.0)  # a collective inside the step, like the gradient all-reduce
        steps += 1
    queue.put((rank, steps))
    dist.close()


def test_processes_stop_together_when_one_runs_out_of_time():
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_worker, args=(_free_port(), queue), nprocs=2, start_method="spawn", join=True)
    assert sorted(queue.get() for _ in range(2)) == [(0, 0), (1, 0)]


def test_single_process_stopwatch_is_local():
    assert StopWatch(0).should_stop() and not StopWatch(60).should_stop()
    assert not StopWatch(60, Distributed()).should_stop()  # not launched by torchrun: one process
