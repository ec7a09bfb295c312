"""Helpers shared by the tests, the benchmarks and the scripts (one place each): synthetic drawings,
the app in a subprocess, timing, and driving the app in a real browser. Not part of the app."""
