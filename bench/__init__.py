"""Benchmarks of the bot under load (python -m bench.run)."""
