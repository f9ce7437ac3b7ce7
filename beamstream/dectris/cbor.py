"""CBOR decoding of DECTRIS Stream V2 messages with `cbor2` tag hooks (cbor2 >= 6).

Hooks run innermost first: tag 56500 becomes a `Compressed` block (not decompressed here), a
typed-array tag a `TypedArray`, tag 40 (row-major) or 1040 (column-major) a `LazyArray` whose
sizes are checked against the limits. Any other tag is refused (``unknown_tag``). cbor2 6 calls
``tag_hook(tag, immutable)`` and returns the contents of tags (tag 55799 included) immutable
(``frozendict``, tuples); `thaw` turns them into plain dicts and lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2
import numpy as np

from .arrays import TYPED_ARRAY_TAGS, TypedArray, make_lazy_array
from .codec import ALGORITHMS, Compressed
from .limits import DEFAULT_LIMITS, DectrisLimits, MalformedMessage

__all__ = ["decode_cbor", "thaw", "SELF_DESCRIBE"]

#: RFC 8949 self-described CBOR: every V2 message starts with tag 55799
SELF_DESCRIBE = b"\xd9\xd9\xf7"
_COMPRESSION_TAG = 56500
_ROW_MAJOR, _COLUMN_MAJOR = 40, 1040


class _Hooks:
    def __init__(self, limits: DectrisLimits):
        self.limits = limits
        self.error: MalformedMessage | None = None

    def __call__(self, tag: cbor2.CBORTag, immutable: bool = False) -> Any:
        try:
            return self._decode(tag.tag, tag.value)
        except MalformedMessage as e:
            self.error = self.error or e  # cbor2 wraps the exception; keep the reason
            raise

    def _decode(self, tag: int, value: Any) -> Any:
        if tag == _COMPRESSION_TAG:
            return _compressed(value)
        if tag in TYPED_ARRAY_TAGS:
            if not isinstance(value, bytes | Compressed):
                raise MalformedMessage("bad_array", f"typed array tag {tag} on {type(value)}")
            return TypedArray(np.dtype(TYPED_ARRAY_TAGS[tag]), value)
        if tag in (_ROW_MAJOR, _COLUMN_MAJOR):
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise MalformedMessage("bad_array", f"tag {tag} needs [dims, typed array]")
            order = "C" if tag == _ROW_MAJOR else "F"
            return make_lazy_array(value[0], value[1], order, self.limits)
        raise MalformedMessage("unknown_tag", f"CBOR tag {tag}")


def _compressed(value: Any) -> Compressed:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise MalformedMessage("bad_compression_tag", "expected [algorithm, modifier, bytes]")
    algorithm, modifier, data = value
    if algorithm not in ALGORITHMS:
        raise MalformedMessage("bad_algorithm", repr(algorithm))
    if isinstance(modifier, bool) or not isinstance(modifier, int) or not isinstance(data, bytes):
        raise MalformedMessage("bad_compression_tag", f"modifier {modifier!r}")
    return Compressed(algorithm, modifier, data)


def decode_cbor(buf: bytes | memoryview, limits: DectrisLimits = DEFAULT_LIMITS) -> dict:
    """Decode one V2 message into a plain dict (arrays as `LazyArray` / `TypedArray`).

    Raises
    ------
    MalformedMessage
        ``too_large`` (message beyond ``max_message_bytes``), ``no_signature`` (no tag 55799),
        ``cbor_invalid`` (not CBOR, truncated, too deep), ``not_a_map``, ``unknown_tag``, and the
        array reasons of `make_lazy_array`.
    """
    if len(buf) > limits.max_message_bytes:
        raise MalformedMessage("too_large", f"message of {len(buf)} bytes")
    data = buf if isinstance(buf, bytes) else memoryview(buf)  # no copy of the message
    if bytes(data[: len(SELF_DESCRIBE)]) != SELF_DESCRIBE:
        raise MalformedMessage("no_signature", "message does not start with CBOR tag 55799")
    hooks = _Hooks(limits)
    try:
        msg = cbor2.loads(data, tag_hook=hooks, max_depth=limits.max_depth)
    except MalformedMessage:
        raise
    except (cbor2.CBORError, ValueError, TypeError, RecursionError, OverflowError) as e:
        if hooks.error is not None:
            raise hooks.error from None
        raise MalformedMessage("cbor_invalid", str(e)[:200]) from None
    if not isinstance(msg, Mapping):
        raise MalformedMessage("not_a_map", type(msg).__name__)
    return thaw(msg)


def thaw(value: Any) -> Any:
    """Plain dicts and lists instead of cbor2's immutable ``frozendict`` and tuples."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
