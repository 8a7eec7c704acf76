"""Benchmarks (see bench/README.md). Run each as a module from the repository root: `python -m bench.speed`."""
