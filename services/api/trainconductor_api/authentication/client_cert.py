"""The identity in a client certificate the TLS layer verified (mTLS).

As Kubernetes reads client certificates: the subject's common name (CN) is
the user, its organizations (O) are the groups.
"""

from __future__ import annotations

from trainconductor_api.identity import Identity

METHOD = "mtls"


def identity_from_subject(subject: str, common_name: str | None) -> Identity:
    """`subject` is the RFC 2253 form gRPC reports, e.g. "O=ml,O=admins,CN=ada"."""
    attributes = parse_subject(subject)
    user = common_name or next((v for k, v in attributes if k == "CN"), "") or subject
    groups = frozenset(v for k, v in attributes if k == "O" and v)
    return Identity(user, groups, METHOD)


def parse_subject(subject: str) -> list[tuple[str, str]]:
    """The (type, value) pairs of an RFC 2253 name, escapes undone."""
    pairs: list[tuple[str, str]] = []
    for part in _split_unescaped(subject, ",+"):
        name, sep, value = part.partition("=")
        if sep:
            pairs.append((name.strip().upper(), _unescape(value.strip())))
    return pairs


def _split_unescaped(text: str, separators: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    raw = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "\\" and _is_hex(value[i + 1 : i + 3]):
            raw.append(int(value[i + 1 : i + 3], 16))  # \2C and UTF-8 bytes as hex pairs
            i += 3
            continue
        if raw:
            out.append(raw.decode("utf-8", errors="replace"))
            raw.clear()
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    if raw:
        out.append(raw.decode("utf-8", errors="replace"))
    return "".join(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)
