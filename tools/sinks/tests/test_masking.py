import pytest

from devsinks.masking import mask_email, mask_emails, mask_phone


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+15551234567", "***67"),
        ("+4915112345678", "***78"),
        ("+12", "***"),
        ("", "***"),
    ],
)
def test_mask_phone_shows_only_last_two_digits(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("<bob.smith@mail.example.org>", "b***@mail.example.org"),
        ("@example.com", "***@example.com"),
        ("not-an-address", "***"),
        ("trailing@", "***"),
        ("", "***"),
    ],
)
def test_mask_email_shows_first_letter_and_domain(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_mask_emails_joins_and_handles_empty() -> None:
    assert mask_emails(["ann@a.test", "bo@b.test"]) == "a***@a.test, b***@b.test"
    assert mask_emails([]) == "-"
