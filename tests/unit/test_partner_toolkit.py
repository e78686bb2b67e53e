"""The partner toolkit without a broker: key files, filling in a partner's JSON files, signing, clear CLI errors."""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from dealreg_shared.partner import main, prepare_application, prepare_registration, signed_submission
from dealreg_shared.signing import SigningKey, verify
from tests.unit.test_contracts import APPLICATION, SUBMITTED


def bare(document: dict[str, Any], *fields: str) -> dict[str, Any]:
    data = copy.deepcopy(document)
    for name in fields:
        del data[name]
    return data


def test_keygen_writes_the_seed_to_a_file_only_its_owner_can_read(tmp_path: Path, capsys: Any) -> None:
    seed_file = tmp_path / "k1.seed"
    main(["keygen", "--key-id", "k1", "--seed-file", str(seed_file)])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"key_id", "public_key"}, "the seed is not printed when it goes to a file"
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    key = SigningKey.from_seed("k1", seed_file.read_text().strip())
    assert key.public_key_b64url == out["public_key"]


def test_keygen_never_overwrites_an_existing_key(tmp_path: Path, capsys: Any) -> None:
    seed_file = tmp_path / "k1.seed"
    seed_file.write_text("precious\n")
    with pytest.raises(SystemExit) as stopped:
        main(["keygen", "--key-id", "k1", "--seed-file", str(seed_file)])
    assert stopped.value.code == 2
    assert seed_file.read_text() == "precious\n"
    assert "k1.seed" in capsys.readouterr().err


def test_a_registration_file_gets_its_id_time_and_partner_filled_in() -> None:
    registration = prepare_registration(
        bare(SUBMITTED, "registration_id", "submitted_at", "partner_id"), partner_id="p-x"
    )
    assert registration.partner_id == "p-x"
    assert registration.registration_id.version == 4
    assert registration.submitted_at.tzinfo is not None


def test_a_registration_file_keeps_what_the_partner_wrote() -> None:
    registration = prepare_registration(copy.deepcopy(SUBMITTED), partner_id="p-northwind")
    assert str(registration.registration_id) == SUBMITTED["registration_id"]


def test_a_registration_file_naming_another_partner_is_refused() -> None:
    with pytest.raises(ValueError, match="p-northwind"):
        prepare_registration(copy.deepcopy(SUBMITTED), partner_id="p-someone-else")


def test_an_application_without_keys_registers_the_public_half_of_the_partners_key() -> None:
    key = SigningKey.generate("k1")
    application = prepare_application(bare(APPLICATION, "public_keys", "application_id", "submitted_at"), key=key)
    assert [(k.key_id, k.public_key) for k in application.public_keys] == [("k1", key.public_key_b64url)]
    assert key.seed_b64url not in application.model_dump_json()
    assert application.application_id.version == 4


def test_an_application_with_keys_keeps_them() -> None:
    application = prepare_application(copy.deepcopy(APPLICATION), key=SigningKey.generate("k9"))
    assert [k.key_id for k in application.public_keys] == ["k1"]


def test_a_signed_submission_is_signed_over_its_exact_value_bytes() -> None:
    key = SigningKey.generate("k1")
    record_key, value, headers = signed_submission(copy.deepcopy(SUBMITTED), key)
    found = dict(headers)
    assert record_key == b"p-northwind"
    assert found["ce_keyid"] == b"k1" and found["ce_type"] == b"registration.submitted"
    assert verify(key.public_key_b64url, value, found["ce_signature"].decode())
    assert json.loads(value) == json.loads(json.dumps(SUBMITTED))


@pytest.mark.parametrize("content", ["{not json", '{"partner_id": 5}', ""])
def test_submit_explains_a_bad_file_on_stderr_and_exits_2(tmp_path: Path, capsys: Any, content: str) -> None:
    seed = tmp_path / "k1.seed"
    seed.write_text(SigningKey.generate("k1").seed_b64url)
    registration = tmp_path / "registration.json"
    registration.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        main(["submit", "--key-id", "k1", "--seed-file", str(seed), "--bootstrap", "127.0.0.1:1", str(registration)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("dealreg-partner submit: ")


def test_apply_wants_key_id_and_seed_file_together(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["apply", "--key-id", "k1", str(tmp_path / "application.json")])
    assert stopped.value.code == 2


def test_a_registration_file_with_its_own_id_must_carry_its_time_so_that_a_retry_is_the_same_content() -> None:
    with pytest.raises(ValueError, match="submitted_at"):
        prepare_registration(bare(SUBMITTED, "submitted_at"))
    first, again = prepare_registration(copy.deepcopy(SUBMITTED)), prepare_registration(copy.deepcopy(SUBMITTED))
    assert first == again
