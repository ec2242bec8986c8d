"""Benchmarks: each prints its figures beside a baseline measured in the same run."""

import devstack  # noqa: F401  (first: it sets how gRPC forks)
