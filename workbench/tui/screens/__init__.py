"""Screens and dialogs of the workbench."""
