"""Why a caller could not be identified. Messages go to the client, so they
never repeat what the caller sent."""

from __future__ import annotations


class Unauthenticated(Exception):
    """The call's credentials are missing, malformed or not accepted."""


class AuthenticatorUnavailable(Exception):
    """Credentials could not be checked now (the apiserver did not answer);
    retryable, and not the caller's fault."""
