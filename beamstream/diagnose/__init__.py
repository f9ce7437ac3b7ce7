"""Runs that explain themselves: why nothing was processed, suggestions for misspelt names."""

from beamstream.diagnose.suggest import did_you_mean

__all__ = ["did_you_mean"]
