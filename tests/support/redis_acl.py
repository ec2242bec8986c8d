"""The Redis ACL users of docs/security.md, which the services' calls are run
as and the chart's bundled Redis must create: read from the page, so that the
page is what the tests check."""

from __future__ import annotations

import re

from devstack.cluster import ROOT

SECURITY_DOC = ROOT / "docs" / "security.md"


def acl_users(text: str) -> dict[str, str]:
    """The `user NAME RULES` lines of an ACL file, by user (rules as written)."""
    lines = re.findall(r"^user (\S+) (.+)$", text, re.MULTILINE)
    return {user: " ".join(rules.split()) for user, rules in lines}


def documented_acl() -> dict[str, str]:
    """The users the security page gives the services (its `ACL SETUSER`
    lines) and redis_exporter (a line of the ACL file), by user: their rules
    without the password placeholder (`>...`)."""
    text = SECURITY_DOC.read_text()
    lines = re.findall(r"^ACL SETUSER (\S+) (.+)$", text, re.MULTILINE)
    lines += [(u, r) for u, r in acl_users(text).items() if u == "tc-exporter"]
    users = {user: " ".join(re.sub(r">\S+", "", rules).split()) for user, rules in lines}
    assert set(users) == {"tc-api", "tc-controller", "tc-exporter"}, users
    return users


def setuser_arguments(user: str, password: str) -> list[str]:
    """`ACL SETUSER` of a documented user, with `password`."""
    return ["ACL", "SETUSER", user, *documented_acl()[user].split(), f">{password}"]
