"""Latency / throughput benchmarks of the edge runtime (``python -m bench.benchmark``)."""
