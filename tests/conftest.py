"""Fixtures shared by the whole suite (the emulator fixtures come from the package's pytest plugin)."""
