"""Benchmarks and counters, each ``python -m tools.bench.<name>``: they print numbers and change nothing."""
