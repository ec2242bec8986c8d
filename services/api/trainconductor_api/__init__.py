"""Train Conductor's gRPC API service."""
