"""Who sees whose trainings, as a table."""

from __future__ import annotations

import pytest

from trainconductor_api.authorization import Access
from trainconductor_api.identity import Identity

ACCESS = Access.of(["tc-admins"])
ALICE = Identity("alice", frozenset({"ml"}), "static-token")
ADMIN = Identity("ops", frozenset({"tc-admins"}), "token-review")
DEVELOPER = Identity("ada")  # auth mode "none": nobody was authenticated


@pytest.mark.parametrize(
    ("identity", "owner", "sees"),
    [
        pytest.param(ALICE, "alice", True, id="an owner sees her own"),
        pytest.param(ALICE, "bob", False, id="an owner does not see another's"),
        pytest.param(ALICE, "Alice", False, id="names are compared exactly"),
        pytest.param(ADMIN, "bob", True, id="an admin sees anyone's"),
        pytest.param(DEVELOPER, "bob", True, id="without authentication nothing is hidden"),
    ],
)
def test_may_see(identity: Identity, owner: str, sees: bool) -> None:
    assert ACCESS.may_see(identity, owner) is sees


@pytest.mark.parametrize(
    ("identity", "requested", "limited_to"),
    [
        pytest.param(ALICE, "", "alice", id="an owner's list is her own"),
        pytest.param(ALICE, "alice", "alice", id="asking for her own by name"),
        pytest.param(ALICE, "bob", None, id="asking for another's shows nothing"),
        pytest.param(ADMIN, "", "", id="an admin lists everyone's"),
        pytest.param(ADMIN, "bob", "bob", id="an admin may filter by owner"),
    ],
)
def test_owner_filter(identity: Identity, requested: str, limited_to: str | None) -> None:
    assert ACCESS.owner_filter(identity, requested) == limited_to


def test_no_admin_groups_means_no_admins() -> None:
    assert not Access().sees_all(ADMIN)
