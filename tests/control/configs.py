"""Small pipeline configs for control tests (no detector needed for most)."""

from __future__ import annotations

DSSC = """
version = 1

[source]
endpoint = "tcp://127.0.0.1:4545"
socket = "REQ"
detector = "SCS_DET_DSSC1M-1/DET/0CH0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]

[scan]
source = "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800"
key = "actualPosition"
stepsize = 0.01
units = "ps"

[[processors]]
type = "frame_selector"
name = "frames"
pattern = ["pumped", "pumped_dark", "unpumped", "unpumped_dark"]

[[processors.rules]]
source = "SCS_BLU_XGM/XGM/DOOCS:output"
key = "data.intensityTD"
min = 100.0

[[processors]]
type = "scan_binner"
name = "binned"

[run]
interval = 1.0
"""
