"""Benchmarks: scripts that measure and print, run by hand (``python -m benchmarks.<name>``).
They assert nothing; docs/performance.md tells what each measures, and its figures."""
