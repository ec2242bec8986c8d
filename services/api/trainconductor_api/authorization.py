"""Who may see what: a caller sees, watches and cancels their own trainings;
members of an admin group see every one. Pure.

A training the caller may not see is answered like a missing one (NOT_FOUND),
so its existence is not revealed either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trainconductor_api.identity import Identity


@dataclass(frozen=True)
class Access:
    admin_groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, admin_groups: Iterable[str]) -> Access:
        return cls(frozenset(admin_groups))

    def sees_all(self, identity: Identity) -> bool:
        # Under auth mode "none" nobody was authenticated: anyone could claim
        # any owner's name anyway, so restricting would only get in the way.
        return not identity.authenticated or not identity.groups.isdisjoint(self.admin_groups)

    def may_see(self, identity: Identity, owner: str) -> bool:
        return owner == identity.user or self.sees_all(identity)

    def owner_filter(self, identity: Identity, requested: str) -> str | None:
        """The owner a listing or watch is limited to ("" for any), or None
        when the caller asked for someone else's and may see nothing of it."""
        if self.sees_all(identity):
            return requested
        if requested and requested != identity.user:
            return None
        return identity.user
