"""MiWei collector: API, storage, alerts."""

__version__ = "0.1.0"
