"""Sagas: definitions and templates (definitions), the built-in order saga (builtin), instances and
their state (instances), compensations planned and executed (compensation), the audit log (audit).
"""
