"""Benchmarks: scripts that measure and print, run by hand (``python -m benchmarks.<name>``).
They assert nothing; see BENCHMARKS.md for what each measures and the latest figures."""
