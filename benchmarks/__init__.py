"""Benchmark scripts; their results, with the commands that made them, go in BENCHMARKS.md."""
