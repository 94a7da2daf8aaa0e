"""proprofs-bridge: forms, alerts and a support widget in, ProProfs Help Desk tickets out."""

__version__ = "0.1.0"
