"""A local Kubernetes control plane for `make up` and the end-to-end tests.

Real kube-apiserver, etcd, kube-controller-manager and kube-scheduler, built
by hack/tools/install.sh, started by `kwokctl --runtime binary`, with kwok
standing in for kubelets on a few fake nodes (see stages.yaml).
"""
