"""End-to-end benchmarks of smslane: ``python -m bench --help`` (see bench/README.md)."""
