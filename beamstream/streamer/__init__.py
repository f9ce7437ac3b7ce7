"""Transport: the `Train` data model, the Karabo Bridge wire protocol, receiver and sender.

The transport knows no physics: it moves trains and counts what it could not move.
"""

from beamstream.streamer.protocol import (
    DecodeLimits,
    MalformedMessage,
    decode_train,
    encode_train,
)
from beamstream.streamer.receiver import Receiver
from beamstream.streamer.sender import Sender
from beamstream.streamer.train import MissingData, Train

__all__ = [
    "Train",
    "MissingData",
    "encode_train",
    "decode_train",
    "MalformedMessage",
    "DecodeLimits",
    "Receiver",
    "Sender",
]
