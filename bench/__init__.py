"""MiWei's benchmark suite: `make bench` (python -m bench) writes BENCHMARKS.md; see docs/benchmarks.md."""
