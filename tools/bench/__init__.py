"""Benchmarks and one-off measurements."""
