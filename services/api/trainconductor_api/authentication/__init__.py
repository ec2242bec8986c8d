"""Authentication: from what a call presents to the caller's `Identity`.

One module per way of proving who one is (static tokens, Kubernetes
TokenReview, client certificates); `authenticator.py` chooses among them by
the configured `auth_modes`.
"""
