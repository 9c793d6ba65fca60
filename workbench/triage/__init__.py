"""Incident triage: trace a correlation id across topics (trace), copy events to a capture file
(capture), re-publish events, e.g. from a dead-letter topic (replay: plan, then execute).
"""
