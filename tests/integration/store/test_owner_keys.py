"""Owners in the store's keys: no two owners' request ids can meet."""

from __future__ import annotations

import pytest

from devstack.specs import lora_spec
from trainconductor_core.store import TrainingStore


async def test_owner_and_request_id_pairs_that_read_alike_are_kept_apart(
    store: TrainingStore,
) -> None:
    # "system:serviceaccount:ns" + "a:b" and "system:serviceaccount:ns:a" + "b"
    # would share the key "request:system:serviceaccount:ns:a:b" if joined by ":".
    first, _ = await store.create(lora_spec(), owner="system:serviceaccount:ns", request_id="a:b")
    second, created = await store.create(
        lora_spec(), owner="system:serviceaccount:ns:a", request_id="b"
    )
    assert created
    assert second.id != first.id
    assert second.owner == "system:serviceaccount:ns:a"


async def test_a_request_id_with_a_slash_is_refused(store: TrainingStore) -> None:
    with pytest.raises(ValueError, match="request id"):
        await store.create(lora_spec(), owner="ada", request_id="a/b")
