"""The local stack, defined once for `make up`, the tests and the bench: the
Kubernetes control plane (kube-apiserver, etcd, the controller manager, the
scheduler, kwok nodes), Redis, the API and the controller as processes,
Prometheus and Jaeger, and the ports and helpers they share."""
