"""Fuzzing the receiver: 10,000 messages, most of them broken in every way we could think of,
through a real socket. The receiver never stops, counts every message, and delivers every valid
train intact and in order."""

from __future__ import annotations

import random
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from beamstream.streamer import Receiver, Train, encode_train

N = 10_000
MUTANT = 10**9  # mutated messages start from train ids from here (and are marked "mutant")

WEIRD = [
    None,
    True,
    -1,
    2**64 - 1,
    2**63,
    1.5,
    "7",
    [1, 2],
    {"a": 1},
    b"\x00",
    [],
    {},
    [[[]]],
    "x" * 300,
    float("nan"),
]
DTYPES = ["<u2", ">f8", "O", "V8", "S3", "<M8[s]", "int128", "", 5, None, "u1,u2", "(2,)i4"]
SHAPES = [[-1], [2**40, 2**40], "3", [1.5], [[2]], [2] * 40, None, [True], [0, 3]]


def _train(tid: int, rng: random.Random, kind: str = "valid") -> Train:
    n = rng.randrange(0, 40)
    return Train(
        tid,
        1.7e9 + tid,
        {
            "DET": {"image.data": np.arange(n, dtype=np.uint16) + tid % 1000, "kind": kind},
            "MOTOR": {"pos": rng.random()},
        },
    )


def _mutate(frames: list, rng: random.Random) -> list:
    frames = [bytes(f) for f in frames]
    kind = rng.randrange(12)
    if kind == 0:  # random bytes
        return [rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(1, 5))]
    if kind == 1:  # drop a frame
        del frames[rng.randrange(len(frames))]
    elif kind == 2:  # flip bits in a header
        i = 2 * rng.randrange(len(frames) // 2)
        b = bytearray(frames[i])
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        frames[i] = bytes(b)
    elif kind == 3:  # truncate an array buffer
        frames[-1] = frames[-1][: len(frames[-1]) // 2]
    elif kind == 4:  # a header replaced by a weird value
        frames[2 * rng.randrange(len(frames) // 2)] = msgpack.packb(rng.choice(WEIRD))
    elif kind in (5, 6, 7):  # weird metadata, dtype or shape
        header = msgpack.unpackb(frames[0 if kind == 5 else -2])
        if kind == 5:
            header["metadata"] = {
                "timestamp.tid": rng.choice(WEIRD),
                "timestamp": rng.choice(WEIRD),
            }
            frames[0] = msgpack.packb(header)
        else:
            header["dtype" if kind == 6 else "shape"] = rng.choice(DTYPES if kind == 6 else SHAPES)
            frames[-2] = msgpack.packb(header)
    elif kind == 8:  # plain values not a map / deeply nested
        frames[1] = msgpack.packb(rng.choice([[1, 2], 3, [[[[[[1]]]]]], {"k": [{}] * 100}]))
    elif kind == 9:  # frames in the wrong order
        rng.shuffle(frames)
    elif kind == 10:  # content and source fields
        header = msgpack.unpackb(frames[-2])
        header[rng.choice(["content", "source", "path"])] = rng.choice(WEIRD)
        frames[-2] = msgpack.packb(header)
    else:  # a protocol 1.0 single frame of junk msgpack
        return [
            msgpack.packb(
                {
                    "DET": {
                        "x": {
                            "nd": True,
                            "type": rng.choice(DTYPES),
                            "shape": rng.choice(SHAPES),
                            "data": b"12",
                        }
                    }
                }
            )
        ]
    return frames


@pytest.mark.timeout(120)
def test_receiver_fuzz(endpoint: str) -> None:
    rng = random.Random(2024)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(endpoint)
    rx = Receiver(endpoint, "PULL", queue=64, policy="block", hwm=64)
    valid: dict[int, Train] = {}
    got: list[Train] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            t = rx.get(0.1)
            if t is not None:
                got.append(t)

    consumer = threading.Thread(target=consume)
    consumer.start()
    tid = 0
    t0 = time.monotonic()
    try:
        for i in range(N):
            if rng.random() < 0.3:
                tid += 1
                train = _train(tid, rng)
                valid[tid] = train
                frames = encode_train(train)
            else:
                frames = _mutate(encode_train(_train(MUTANT + i, rng, "mutant")), rng)
            if not frames:
                frames = [b""]
            while not push.poll(100, zmq.POLLOUT):
                assert time.monotonic() - t0 < 60
            push.send_multipart(frames)
        deadline = time.monotonic() + 30
        while rx.stats()["received"] < N and time.monotonic() < deadline:
            time.sleep(0.05)
        while rx.stats()["queued"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        done.set()
        consumer.join(5)
        stats = rx.stats()
        rx.close()
        push.close(linger=0)
    assert not rx.closed or stats["received"] == N
    assert stats["received"] == N  # every message was received: the loop never stopped
    malformed = sum(v for k, v in stats["dropped"].items() if k.startswith("malformed:"))
    assert stats["delivered"] + malformed == N
    assert not any(k.startswith("error:") for k in stats["dropped"])
    good = [t for t in got if t.data.get("DET", {}).get("kind") == "valid"]
    assert [t.train_id for t in good] == sorted(valid)  # every valid train, in order
    for t in good:
        want = valid[t.train_id]
        np.testing.assert_array_equal(t.data["DET"]["image.data"], want.data["DET"]["image.data"])
        assert t.data["MOTOR"]["pos"] == want.data["MOTOR"]["pos"]
    assert malformed > N // 2
