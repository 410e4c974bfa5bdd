"""Benchmarks, counters and one-off measurements, each ``python -m tools.bench.<name>``: they print numbers and
change nothing."""
