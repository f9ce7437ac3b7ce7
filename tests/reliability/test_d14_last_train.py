"""Defect 14: the simulator (and replay, through the same sender) sent its last train zero-copy
and exited while ZeroMQ still read it: ``Bad address``, exit 134, last train lost. The sender now
waits until ZeroMQ is done with the memory of the last message before it closes."""

from __future__ import annotations

import sys
import time

import pytest
import zmq

N = 6


@pytest.mark.timeout(120)
def test_simulator_delivers_the_last_train_and_exits_cleanly(
    tcp_endpoint: str, processes, subprocess_env
) -> None:
    argv = [sys.executable, "-m", "beamstream", "simulate", "-d", "dssc", "-e", tcp_endpoint]
    argv += ["-r", "0", "-n", str(N), "-q"]
    ctx = zmq.Context.instance()
    for _ in range(3):  # it failed in about half of the tries
        proc = processes.start(argv, env=subprocess_env)
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(tcp_endpoint)
        got = 0
        try:
            deadline = time.monotonic() + 60
            while got < N and time.monotonic() < deadline:
                req.send(b"next")
                assert req.poll(20_000), "no reply"
                req.recv_multipart()
                got += 1
            assert proc.wait(30) == 0, proc.stdout.read().decode()[-500:]
        finally:
            req.close(linger=0)
        assert got == N
