"""The embedded default broker: an event log in one SQLite file (``local:PATH``)."""

from .adapter import LocalAdapter, LocalConnection

__all__ = ["LocalAdapter", "LocalConnection"]
