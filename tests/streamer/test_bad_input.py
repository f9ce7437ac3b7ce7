"""Hostile and broken input: each bad message is counted by reason, logged rate-limited, and the
good trains that follow are still delivered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import msgpack
import numpy as np
import pytest
import zmq

from beamstream.streamer import (
    MalformedMessage,
    Receiver,
    Sender,
    Train,
    decode_train,
    encode_train,
)
from beamstream.streamer import ratelog as ratelog_module
from beamstream.streamer.protocol import DecodeLimits
from beamstream.streamer.ratelog import RateLimitedLog

RECEIVER_LOG = "beamstream.streamer.receiver"


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _meta_header(source: str = "S", tid: int = 1) -> bytes:
    return _pack(
        {
            "source": source,
            "content": "msgpack",
            "metadata": {"source": source, "timestamp.tid": tid},
        }
    )


def _array_header(dtype: object = "uint16", shape: object = (2, 3), path: str = "a") -> bytes:
    return _pack(
        {
            "source": "S",
            "content": "array",
            "path": path,
            "dtype": dtype,
            "shape": list(shape) if isinstance(shape, tuple) else shape,
        }
    )


def _good(tid: int) -> list:
    return encode_train(Train(tid, None, {"S": {"x": np.full(4, tid, np.int64), "n": tid}}))


#: (reason, frames) of malformed messages
BAD_MESSAGES: dict[str, tuple[str, list[bytes]]] = {
    "garbage-2-frames": ("not msgpack", [b"\xc1\xc1 not msgpack", b"\xc1"]),
    "garbage-1-frame": ("not msgpack", [b"\x93\x01"]),  # truncated array of 3
    "empty-1-frame": ("not msgpack", [b""]),
    "truncated-header": ("not msgpack", [b"\x85\xa6source", _pack({})]),
    "odd-frames": ("odd frame count", [_meta_header(), _pack({}), _array_header()]),
    "header-not-a-map": ("bad header", [_pack([1, 2]), _pack({})]),
    "values-not-a-map": ("bad header", [_meta_header(), _pack([1])]),
    "no-source": (
        "missing source",
        [_pack({"content": "msgpack", "metadata": {"timestamp.tid": 1}}), _pack({})],
    ),
    "source-not-str": ("missing source", [_pack({"source": 5, "content": "msgpack"}), _pack({})]),
    "unknown-content": (
        "unknown content",
        [_pack({"source": "S", "content": "pickle.HIGHEST_PROTOCOL"}), b"\x80\x04N."],
    ),
    "content-ImageData": (
        "unknown content",
        [_meta_header(), _pack({}), _pack({"source": "S", "content": "ImageData"}), b""],
    ),
    "array-first": ("array before msgpack", [_array_header(), np.zeros(6, np.uint16).tobytes()]),
    "size-short": ("size mismatch", [_meta_header(), _pack({}), _array_header(), b"\x00" * 10]),
    "size-long": (
        "size mismatch",
        [_meta_header(), _pack({}), _array_header("float64", (4,)), b"\x00" * 33],
    ),
    "size-zero-shape": (
        "size mismatch",
        [_meta_header(), _pack({}), _array_header("uint8", (0, 5)), b"\x00"],
    ),
    "dtype-object": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("object", (1,)), b"\x00" * 8],
    ),
    "dtype-O": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("|O", (1,)), b"\x00" * 8],
    ),
    "dtype-U10": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("<U10", (1,)), b"\x00" * 40],
    ),
    "dtype-structured": (
        "unsupported dtype",
        [
            _meta_header(),
            _pack({}),
            _array_header("[('a', '<i4'), ('b', '<f8')]", (1,)),
            b"\x00" * 12,
        ],
    ),
    "dtype-subarray": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("(2,)i4", (1,)), b"\x00" * 8],
    ),
    "dtype-datetime": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("<M8[ns]", (1,)), b"\x00" * 8],
    ),
    "dtype-void": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("V8", (1,)), b"\x00" * 8],
    ),
    "dtype-nonsense": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header("uint17", (1,)), b"\x00" * 8],
    ),
    "dtype-number": (
        "unsupported dtype",
        [_meta_header(), _pack({}), _array_header(3, (1,)), b"\x00" * 8],
    ),
    "shape-negative": (
        "bad shape",
        [_meta_header(), _pack({}), _array_header("uint8", (-1, 2)), b""],
    ),
    "shape-float": (
        "bad shape",
        [_meta_header(), _pack({}), _array_header("uint8", [2.0]), b"\x00\x00"],
    ),
    "shape-not-list": (
        "bad shape",
        [_meta_header(), _pack({}), _array_header("uint8", "22"), b"\x00" * 22],
    ),
    "shape-too-many-dims": (
        "bad shape",
        [_meta_header(), _pack({}), _array_header("uint8", (1,) * 40), b"\x00"],
    ),
    "array32-4G-header": ("not msgpack", [b"\xdd\xff\xff\xff\xff", _pack({})]),
    "map32-4G-values": ("not msgpack", [_meta_header(), b"\xdf\xff\xff\xff\xff\xa1a\x01"]),
    "bin32-4G-values": ("not msgpack", [_meta_header(), b"\x81\xa1a\xc6\xff\xff\xff\xff\x00\x00"]),
    "str32-4G-header": ("not msgpack", [b"\x81\xa6source\xdb\xff\xff\xff\xffabc", _pack({})]),
    "array32-4G-legacy": ("not msgpack", [b"\xdd\xff\xff\xff\xff\x01"]),
    "bin32-4G-legacy": ("not msgpack", [b"\x81\xa1S\x81\xa1a\xc6\xff\xff\xff\xff\x00"]),
    "ext-type": ("not msgpack", [b"\xd4\x05\x00", _pack({})]),  # fixext1: extension types refused
    "legacy-not-a-map": ("bad header", [_pack([1, 2, 3])]),
    "legacy-bad-nd": (
        "unsupported dtype",
        [_pack({"S": {"a": {"nd": True, "type": "|O", "shape": [1], "data": b"x"}}})],
    ),
    "legacy-size": (
        "size mismatch",
        [
            _pack(
                {
                    "S": {
                        "a": {"nd": True, "type": "<u2", "kind": "", "shape": [3], "data": b"xx"},
                        "metadata": {"timestamp.tid": 1},
                    }
                }
            )
        ],
    ),
    "no-train-id": (
        "no train id",
        [_pack({"source": "S", "content": "msgpack", "metadata": {"source": "S"}}), _pack({})],
    ),
    "negative-train-id": ("no train id", [_meta_header(tid=-5), _pack({})]),
    "str-train-id": (
        "no train id",
        [
            _pack({"source": "S", "content": "msgpack", "metadata": {"timestamp.tid": "12"}}),
            _pack({}),
        ],
    ),
    "bool-train-id": (
        "no train id",
        [
            _pack({"source": "S", "content": "msgpack", "metadata": {"timestamp.tid": True}}),
            _pack({}),
        ],
    ),
    "legacy-no-sources": ("empty message", [_pack({})]),
}


@pytest.fixture
def push_pull(endpoint: str) -> Iterator[tuple[zmq.Socket, Receiver]]:
    """A raw PUSH socket bound at ``endpoint`` and a beamstream PULL `Receiver` connected to it."""
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(endpoint)
    receiver = Receiver(endpoint, socket="PULL", queue=64, timeout=5)
    try:
        yield push, receiver
    finally:
        receiver.close()
        push.close(linger=0)


def _send(push: zmq.Socket, frames: list) -> None:
    """Send one multipart message; fail (not hang) when no peer takes it within 5 s."""
    assert push.poll(5000, zmq.POLLOUT), "no receiver connected"
    push.send_multipart(frames)


@pytest.mark.timeout(15)
@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_malformed_message_is_counted_logged_and_skipped(
    case: str, push_pull: tuple[zmq.Socket, Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    reason, frames = BAD_MESSAGES[case]
    push, receiver = push_pull
    caplog.set_level(logging.WARNING, logger=RECEIVER_LOG)
    _send(push, _good(1))
    for _ in range(3):
        _send(push, frames)
    _send(push, _good(2))
    got = [receiver.get(timeout=5), receiver.get(timeout=5)]
    assert [t.train_id if t else None for t in got] == [1, 2]
    assert got[1].data["S"]["n"] == 2
    np.testing.assert_array_equal(got[1].data["S"]["x"], [2, 2, 2, 2])
    stats = receiver.stats()
    assert stats["dropped"] == {f"malformed:{reason}": 3}
    assert stats["dropped_total"] == 3
    assert stats["received"] == 5
    assert stats["delivered"] == 2
    # logged once (the other two are counted and reported with the next allowed message)
    records = [r for r in caplog.records if r.name == RECEIVER_LOG and reason in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    assert "malformed message" in records[0].getMessage()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_decode_train_reason(case: str) -> None:
    reason, frames = BAD_MESSAGES[case]
    with pytest.raises(MalformedMessage) as info:
        decode_train(frames)
    assert info.value.reason == reason
    assert str(info.value).startswith(reason)


@pytest.mark.timeout(10)
def test_zero_frame_message() -> None:
    """ZeroMQ has no zero-part messages (pyzmq refuses to send one); the decoder rejects it."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH)
    try:
        with pytest.raises((IndexError, ValueError, zmq.ZMQError)):
            sock.send_multipart([])
    finally:
        sock.close(linger=0)
    with pytest.raises(MalformedMessage) as info:
        decode_train([])
    assert info.value.reason == "empty message"


@pytest.mark.timeout(10)
def test_size_limits_are_applied() -> None:
    limits = DecodeLimits(
        max_header_bytes=64, max_plain_bytes=100, max_container_len=10, max_legacy_bytes=200
    )
    big_header = [
        _pack(
            {
                "source": "S",
                "content": "msgpack",
                "metadata": {"timestamp.tid": 1, "pad": "x" * 100},
            }
        ),
        _pack({}),
    ]
    big_values = [_meta_header(), _pack({"v": "y" * 200})]
    long_list = [_meta_header(), _pack({"v": list(range(11))})]
    big_legacy = [_pack({"S": {"v": "z" * 300, "metadata": {"timestamp.tid": 1}}})]
    for frames, reason in [
        (big_header, "oversized"),
        (big_values, "oversized"),
        (long_list, "not msgpack"),
        (big_legacy, "oversized"),
    ]:
        with pytest.raises(MalformedMessage) as info:
            decode_train(frames, limits)
        assert info.value.reason == reason
        assert decode_train(frames).train_id == 1  # fine under the default limits


@pytest.mark.timeout(15)
def test_many_bad_messages_are_rate_limited_in_the_log(
    push_pull: tuple[zmq.Socket, Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    push, receiver = push_pull
    caplog.set_level(logging.WARNING, logger=RECEIVER_LOG)
    kinds = {"not msgpack": [b"\xc1", b"\xc1"], "odd frame count": [b"a", b"b", b"c"]}
    for _ in range(50):
        for frames in kinds.values():
            _send(push, frames)
    _send(push, _good(3))
    train = receiver.get(timeout=5)
    assert train is not None and train.train_id == 3
    assert receiver.stats()["dropped"] == {
        "malformed:not msgpack": 50,
        "malformed:odd frame count": 50,
    }
    messages = [r.getMessage() for r in caplog.records if r.name == RECEIVER_LOG]
    assert len(messages) == 2, messages
    assert sorted(m.split(" from ")[0] for m in messages) == [
        "malformed message",
        "malformed message",
    ]


@pytest.mark.timeout(10)
def test_rate_limited_log_reports_suppressed_counts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ratelog_module.time, "monotonic", lambda: clock[0])
    logger = logging.getLogger("test.ratelog")
    caplog.set_level(logging.WARNING, logger="test.ratelog")
    rl = RateLimitedLog(logger, interval=5.0)
    assert rl.warning("bad", "problem %d", 1) is True
    assert [rl.warning("bad", "problem %d", i) for i in range(2, 6)] == [False] * 4
    assert rl.warning("other", "another") is True  # kinds are independent
    clock[0] += 5.0
    assert rl.warning("bad", "problem %d", 6) is True
    assert [r.getMessage() for r in caplog.records] == [
        "problem 1",
        "another",
        "problem 6 (4 more since last report)",
    ]


# ---------------------------------------------------------------------------------------------
# bad requests to a beamstream Sender
# ---------------------------------------------------------------------------------------------
def _serve(sender: Sender, trains: list[Train], results: list[bool]) -> Callable[[], None]:
    def run() -> None:
        for t in trains:
            results.append(sender.send(t, timeout=5))

    return run


@pytest.mark.timeout(15)
def test_rep_sender_answers_bad_requests_and_keeps_serving(endpoint: str) -> None:
    ctx = zmq.Context.instance()
    sender = Sender(endpoint, socket="REP")
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(endpoint)
    results: list[bool] = []
    thread = threading.Thread(
        target=_serve(
            sender, [Train(1, None, {"S": {"v": 1}}), Train(2, None, {"S": {"v": 2}})], results
        )
    )
    thread.start()
    try:
        replies = []
        for request in [b"hello", b"next", b"", b"NEXT", b"next please", b"next"]:
            req.send(request)
            assert req.poll(5000), f"no reply to {request!r}"
            replies.append(req.recv_multipart())
        assert replies[0] == [b"Error: bad request hello"]
        assert decode_train(replies[1]).train_id == 1
        assert replies[2] == [b"Error: bad request "]
        assert replies[3] == [b"Error: bad request NEXT"]
        assert replies[4] == [b"Error: bad request next please"]
        second = decode_train(replies[5])
        assert second.train_id == 2 and second.data["S"]["v"] == 2
    finally:
        thread.join(timeout=10)
        req.close(linger=0)
        sender.close()
    assert results == [True, True]
    assert sender.bad_requests == 4 and sender.sent == 2


@pytest.mark.timeout(10)
def test_rep_sender_times_out_without_requests(endpoint: str) -> None:
    with Sender(endpoint, socket="REP") as sender:
        assert sender.send(Train(1, None, {"S": {}}), timeout=0.2) is False
        assert sender.sent == 0
