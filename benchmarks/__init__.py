"""Benchmark scripts (not tests): each prints absolute figures and ratios; see its docstring."""
