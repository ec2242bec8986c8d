"""Who is calling. Every training records its caller as its owner."""

from __future__ import annotations

import re
from typing import Any

import grpc

USER_METADATA = "x-tc-user"
ANONYMOUS = "anonymous"
_USER = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")


def caller(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's identity under auth mode 'none' (local development).

    The name in the `x-tc-user` metadata is trusted as given, so this mode
    must never face callers that are not trusted.
    """
    for key, value in context.invocation_metadata() or ():
        if key == USER_METADATA and isinstance(value, str) and _USER.match(value):
            return value
    return ANONYMOUS
