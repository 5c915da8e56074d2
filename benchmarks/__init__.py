"""Benchmarks: each measures the project beside a baseline in the same run and reports a ratio.

Run them all with `make bench` (results go to docs/performance.md by hand); never part of `make test`.
"""
