"""Server interceptors, one concern each, and the helper they share."""
