"""Load tests and benchmarks (not part of `make test`, except an import smoke test)."""
