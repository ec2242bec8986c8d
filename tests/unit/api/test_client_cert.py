"""The identity in a verified client certificate's subject."""

from __future__ import annotations

import pytest

from trainconductor_api.authentication.client_cert import identity_from_subject, parse_subject


@pytest.mark.parametrize(
    ("subject", "common_name", "user", "groups"),
    [
        pytest.param("O=admins,O=ml,CN=alice", "alice", "alice", {"admins", "ml"}, id="CN and Os"),
        pytest.param("CN=bob", None, "bob", set(), id="CN from the subject alone"),
        pytest.param(
            "O=Acme\\, Inc.,CN=carol", "carol", "carol", {"Acme, Inc."}, id="an escaped comma"
        ),
        pytest.param("O=r\\C3\\A9seau,CN=d", "d", "d", {"réseau"}, id="UTF-8 as hex pairs"),
        pytest.param("O=ml+OU=x,CN=e", "e", "e", {"ml"}, id="a multi-valued name"),
        pytest.param("O=ml", None, "O=ml", {"ml"}, id="no CN: the whole subject"),
    ],
)
def test_identity_from_subject(
    subject: str, common_name: str | None, user: str, groups: set[str]
) -> None:
    identity = identity_from_subject(subject, common_name)
    assert identity.user == user
    assert identity.groups == groups
    assert identity.method == "mtls"


def test_parse_subject_keeps_order_and_types() -> None:
    assert parse_subject("C=DE, O=x,CN=y") == [("C", "DE"), ("O", "x"), ("CN", "y")]
