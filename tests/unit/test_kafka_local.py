"""The local broker's storage is formatted with a cluster id its option parser accepts."""

from __future__ import annotations

import base64
import uuid

from dealreg_devstack.kafka_local import new_cluster_id


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    # 0xF8 as the first byte encodes to '-' first: one random id in 64 did, and formatting failed with
    # "argument --cluster-id/-t: expected one argument".
    dashed = bytes([0xF8]) + bytes(15)
    assert base64.urlsafe_b64encode(dashed).decode().startswith("-")
    fine = uuid.UUID(int=42).bytes
    draws = iter([dashed, dashed, fine])

    cluster_id = new_cluster_id(lambda: next(draws))

    assert cluster_id == base64.urlsafe_b64encode(fine).rstrip(b"=").decode()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22


def test_cluster_ids_are_random_uuids() -> None:
    ids = {new_cluster_id() for _ in range(2000)}

    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
