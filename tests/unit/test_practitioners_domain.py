from __future__ import annotations

import pytest

from service.practitioners.domain import NationalId, luhn_valid, national_id_warnings, profession_problem


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("10003456785", False),
        ("10003456786", True),
        ("10003456787", False),
        ("0", True),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_idnps_prefixes() -> None:
    assert NationalId("rpps", "10003456786").idnps == "810003456786"
    assert NationalId("adeli", "441234567").idnps == "0441234567"


def test_only_a_failing_rpps_key_warns() -> None:
    assert national_id_warnings(NationalId("rpps", "10003456786")) == []
    assert [w.code for w in national_id_warnings(NationalId("rpps", "10003456785"))] == ["rpps_check_digit"]
    assert national_id_warnings(NationalId("adeli", "441234567")) == []


def test_profession_and_specialty_rules() -> None:
    assert profession_problem("10", "SM54") is None
    assert profession_problem("10", None) is None
    assert profession_problem("60", None) is None
    assert profession_problem("99", None) is not None
    assert profession_problem("60", "SM54") is not None
    assert profession_problem("10", "SM01") is not None  # not an SNP specialty
