"""Sagas: definitions (definitions) and their templates (templates), where they come from (settings),
the built-in order saga (builtin), instances and their state (instances) observed on the broker
(observing), compensations planned (compensation_plan), checked against their destinations
(destinations) and executed (compensation), the audit log (audit).
"""
