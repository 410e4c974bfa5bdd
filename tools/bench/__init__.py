"""Benchmarks and counts: memory, the GPU check."""
