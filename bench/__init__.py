"""Benchmarks that print each figure next to a baseline measured in the same run."""
