"""Benchmarks behind `nox -s bench`; see bench/run.py."""
