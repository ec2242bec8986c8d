"""Who is calling: the identity the auth interceptor established for this call.

Every training records its caller's user name as its owner.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    user: str
    groups: frozenset[str] = frozenset()
    # How the caller was identified: "token-review", "mtls", "static-token" or
    # "none". Under "none" nobody was authenticated, so nothing is restricted.
    method: str = "none"

    @property
    def authenticated(self) -> bool:
        return self.method != "none"


ANONYMOUS = Identity("anonymous")

# Set by the auth interceptor before the method runs; read by the services
# and the rate limit. The default is what an unprotected method (health,
# reflection) and a direct call in a unit test see.
identity_var: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "identity", default=ANONYMOUS
)


def current_identity() -> Identity:
    return identity_var.get()
