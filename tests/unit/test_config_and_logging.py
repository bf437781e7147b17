from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from service.config import Environment, Settings
from service.logging import REDACTED, configure_logging, drop_personal_data


def test_placeholder_secret_is_refused_outside_development() -> None:
    for secret in ("changeme", "short"):
        with pytest.raises(ValidationError, match="SNP_SECRET_KEY"):
            Settings(SNP_ENV=Environment.production, SNP_SECRET_KEY=secret)
    assert Settings(SNP_ENV=Environment.development, SNP_SECRET_KEY="changeme").env is Environment.development
    assert Settings(SNP_ENV=Environment.production, SNP_SECRET_KEY="r" * 40).database_url is None


def test_secret_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("SNP_SECRET_KEY", raising=False)
    monkeypatch.chdir(str(tmp_path))  # no .env here
    with pytest.raises(ValidationError, match="SNP_SECRET_KEY"):
        Settings()


def test_personal_data_is_dropped_at_any_depth() -> None:
    event = {
        "event": "request.created",
        "patient": {"family_name": "Dupont"},
        "payload": {"caller": {"phone": "0600000000"}, "items": [{"ins": "1234", "motif": "M08"}]},
        "phone": "0611111111",
        "request_id": "r1",
    }
    scrubbed = drop_personal_data(None, "info", dict(event))
    text = json.dumps(scrubbed)
    for secret in ("Dupont", "0600000000", "0611111111", "1234"):
        assert secret not in text
    assert scrubbed["patient"] == REDACTED
    assert scrubbed["payload"]["items"][0]["motif"] == "M08"
    assert scrubbed["request_id"] == "r1"


def test_log_lines_are_json_without_patient_data(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    configure_logging("INFO")
    structlog.get_logger("t").info("booking.confirmed", family_name="Dupont", slot_id="s1")
    logging.getLogger("plain").info("stdlib line")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    booking = next(line for line in lines if line["event"] == "booking.confirmed")
    assert booking["family_name"] == REDACTED
    assert booking["slot_id"] == "s1"
    assert any(line["event"] == "stdlib line" for line in lines)
