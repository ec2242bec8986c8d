"""Train Conductor's controller: Redis records to Kubernetes Jobs and back."""
