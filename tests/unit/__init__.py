"""Unit tests: no emulator, no model, no subprocess (seconds)."""
