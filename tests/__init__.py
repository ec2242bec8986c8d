"""The tests. The harness is imported first: it sets how gRPC forks."""

import devstack  # noqa: F401
