"""The conformance suite: what every adapter must do. See harness.py to add an adapter."""
