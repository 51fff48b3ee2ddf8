"""The CLI verbs other than `run`."""
