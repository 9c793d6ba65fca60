"""What an event means: decoding and CloudEvents (codecs), correlation ids (correlation), the JSONL
envelope (envelope), ``--filter`` expressions (filters) and terminal-safe text (text).

Pure: no broker library, no Textual. Used by every read path (CLI, TUI, trace, sagas, capture).
"""
