"""The Textual workbench (`workbench` with no verb). Only the CLI's TUI command imports this package."""
