"""Runs a Python handler(input, context) whenever a Redis key changes."""

__version__ = "0.1.0"
