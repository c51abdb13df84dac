"""The pure helpers of the model layer (no database)."""

from sqlalchemy.exc import IntegrityError

from accounts import models


class Diag:
    constraint_name = models.EMAIL_UNIQUE_INDEX


class UniqueViolation(Exception):
    diag = Diag()


def test_the_value_too_long_for_its_column_is_named() -> None:
    values = {"email": "ada@example.com", "full_name": "A" * 201, "phone": None}
    assert models.unstorable(values) == ("full_name", "longer than 200 characters")


def test_a_nul_character_is_named() -> None:
    values = {"email": "ada@example.com", "full_name": "Ada", "phone": "+1\x00"}
    assert models.unstorable(values) == ("phone", "contains a NUL character")


def test_when_no_value_explains_the_refusal_the_body_is_named() -> None:
    values = {"email": "ada@example.com", "full_name": "Ada", "phone": None}
    assert models.unstorable(values) == ("body", "cannot be stored")


def test_the_violated_constraint_is_read_from_the_driver_error() -> None:
    assert models.violated_constraint(IntegrityError("INSERT", {}, UniqueViolation())) == (
        models.EMAIL_UNIQUE_INDEX
    )
    assert models.violated_constraint(IntegrityError("INSERT", {}, Exception("?"))) is None
