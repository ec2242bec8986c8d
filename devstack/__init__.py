"""The local stack, defined once for `make up`, the tests and the bench: the
Kubernetes control plane (kube-apiserver, etcd, the controller manager, the
scheduler, kwok nodes), Redis, the API and the controller as processes,
Prometheus and Jaeger, and the ports and helpers they share."""

import os

# The harness starts processes (servers, tcctl under a terminal) while it
# holds gRPC channels. gRPC's fork handlers then restart its poller in the
# child, which can die on epoll_wait (EBADF) before exec (grpc/grpc#43055):
# a test's tcctl and a redis-server ended so. The children exec at once and
# need none of gRPC's state. Read by gRPC when it is imported, so this
# package is imported first (tests/__init__.py, bench/__init__.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
