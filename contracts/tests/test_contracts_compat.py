"""The compatibility checker: each rule on synthetic schema pairs, then on the real contracts."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from signup_contracts import SpaceProvisioned, UserSignedUp, registered_events
from signup_contracts.compat import Break, Direction, check, check_frozen, main
from signup_contracts.schemas import frozen_file_name, message_schema

FROZEN = Path(__file__).resolve().parents[1] / "schemas"


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


def text(**constraints: Any) -> dict[str, Any]:
    return {"type": "string", **constraints}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


def rules(found: list[Break]) -> set[tuple[str, str, Direction]]:
    return {(b.path, b.rule, b.direction) for b in found}


BASE = obj(
    ["name", "plan"],
    name=text(maxLength=10),
    plan=text(enum=["free", "pro"]),
    phone=nullable(text(pattern="^\\+")),
    count={"type": "integer", "minimum": 0},
)


def changed(edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    edit(schema)
    return schema


def test_an_identical_schema_is_compatible() -> None:
    assert check(BASE, copy.deepcopy(BASE)) == []


def test_documentation_changes_are_compatible() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["title"] = "Renamed"
        s["properties"]["name"]["description"] = "the name"
        s["properties"]["phone"]["default"] = "+1"

    assert check(BASE, changed(edit)) == []


def test_a_new_optional_field_is_compatible() -> None:
    assert check(BASE, changed(lambda s: s["properties"].update(note=nullable(text())))) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda s: (s["properties"].pop("name"), s["required"].remove("name")),
            {("name", "removed-field", Direction.CONSUMERS)},
            id="required field removed",
        ),
        pytest.param(
            lambda s: s["properties"].pop("phone"),
            {("phone", "removed-field", Direction.CONSUMERS)},
            id="optional field removed",
        ),
        pytest.param(
            lambda s: (
                s["properties"].update(full_name=s["properties"].pop("name")),
                s["required"].__setitem__(0, "full_name"),
            ),
            {
                ("name", "removed-field", Direction.CONSUMERS),
                ("full_name", "new-required-field", Direction.REPLAY),
            },
            id="field renamed",
        ),
        pytest.param(
            lambda s: s["required"].remove("plan"),
            {("plan", "no-longer-required", Direction.CONSUMERS)},
            id="required field made optional",
        ),
        pytest.param(
            lambda s: (s["properties"].update(region=text()), s["required"].append("region")),
            {("region", "new-required-field", Direction.REPLAY)},
            id="new required field",
        ),
        pytest.param(
            lambda s: s["required"].append("count"),
            {("count", "new-required-field", Direction.REPLAY)},
            id="optional field made required",
        ),
        pytest.param(
            lambda s: s["properties"].__setitem__("count", {"type": "string"}),
            {
                ("count", "type-widened", Direction.CONSUMERS),
                ("count", "type-narrowed", Direction.REPLAY),
            },
            id="type changed",
        ),
        pytest.param(
            lambda s: s["properties"].__setitem__("name", nullable(text(maxLength=10))),
            {("name", "type-widened", Direction.CONSUMERS)},
            id="type widened to nullable",
        ),
        pytest.param(
            lambda s: s["properties"].__setitem__("phone", text(pattern="^\\+")),
            {("phone", "type-narrowed", Direction.REPLAY)},
            id="type narrowed from nullable",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].__setitem__("type", "number"),
            {("count", "type-widened", Direction.CONSUMERS)},
            id="integer widened to number",
        ),
        pytest.param(
            lambda s: s["properties"]["plan"]["enum"].append("team"),
            {("plan", "enum-widened", Direction.CONSUMERS)},
            id="enum value added",
        ),
        pytest.param(
            lambda s: s["properties"]["plan"]["enum"].remove("pro"),
            {("plan", "enum-narrowed", Direction.REPLAY)},
            id="enum value removed",
        ),
        pytest.param(
            lambda s: s["properties"]["plan"].pop("enum"),
            {("plan", "enum-widened", Direction.CONSUMERS)},
            id="enum restriction dropped",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].__setitem__("maxLength", 20),
            {("name", "constraint-loosened", Direction.CONSUMERS)},
            id="maxLength raised",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].__setitem__("maxLength", 5),
            {("name", "constraint-tightened", Direction.REPLAY)},
            id="maxLength lowered",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].pop("minimum"),
            {("count", "constraint-loosened", Direction.CONSUMERS)},
            id="minimum dropped",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].__setitem__("minLength", 1),
            {("name", "constraint-tightened", Direction.REPLAY)},
            id="minLength added",
        ),
        pytest.param(
            lambda s: s["properties"]["phone"]["anyOf"][0].__setitem__("pattern", "^0"),
            {
                ("phone", "constraint-changed", Direction.CONSUMERS),
                ("phone", "constraint-changed", Direction.REPLAY),
            },
            id="pattern changed",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].__setitem__("format", "email"),
            {("name", "constraint-changed", Direction.REPLAY)},
            id="format added",
        ),
    ],
)
def test_each_incompatible_change_is_reported(
    edit: Any, expected: set[tuple[str, str, Direction]]
) -> None:
    assert rules(check(BASE, changed(edit))) == expected


def test_nested_objects_and_array_items_are_compared() -> None:
    frozen = obj(["data"], data=obj(["tags"], tags={"type": "array", "items": text()}))
    current = copy.deepcopy(frozen)
    current["properties"]["data"]["properties"]["tags"]["items"] = {"type": "integer"}
    assert rules(check(frozen, current)) == {
        ("data.tags.[]", "type-widened", Direction.CONSUMERS),
        ("data.tags.[]", "type-narrowed", Direction.REPLAY),
    }


def test_closed_objects_refuse_new_properties() -> None:
    frozen = {**obj(["a"], a=text()), "additionalProperties": False}
    current = {**obj(["a"], a=text(), b=nullable(text())), "additionalProperties": False}
    assert rules(check(frozen, current)) == {("b", "extra-properties", Direction.CONSUMERS)}


def test_a_break_says_where_what_and_who_it_breaks() -> None:
    found = check(BASE, changed(lambda s: s["properties"]["plan"]["enum"].append("team")))
    assert str(found[0]) == (
        'plan: enum-widened: value ["team"] is now allowed '
        "(deployed consumers would reject messages the changed producer sends)"
    )


class QuotaAsText(SpaceProvisioned):
    """SpaceProvisioned v1 with a field type changed: what a careless edit would publish."""

    quota_bytes: str = Field(min_length=1)  # type: ignore[assignment]


class PlanWithEnterprise(UserSignedUp):
    plan: str = Field(pattern="^(free|pro|team|enterprise)$")  # type: ignore[assignment]


def frozen_schema(event: type[Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (FROZEN / frozen_file_name(event.event_type, event.version)).read_text()
    )
    return loaded


def test_the_published_contracts_match_their_frozen_schemas() -> None:
    assert check_frozen(FROZEN) == [], "\n".join(check_frozen(FROZEN))


def test_changing_a_field_type_of_a_published_contract_fails_with_what_broke() -> None:
    report = [str(b) for b in check(frozen_schema(SpaceProvisioned), message_schema(QuotaAsText))]
    assert report == [
        "data.quota_bytes: type-widened: string is now allowed (deployed consumers would reject "
        "messages the changed producer sends)",
        "data.quota_bytes: type-narrowed: integer is no longer allowed (the changed reader would "
        "reject messages published before the change)",
    ]


def test_loosening_an_enum_into_free_text_fails() -> None:
    found = rules(check(frozen_schema(UserSignedUp), message_schema(PlanWithEnterprise)))
    assert ("data.plan", "enum-widened", Direction.CONSUMERS) in found


def test_every_registered_version_needs_a_frozen_file(tmp_path: Path) -> None:
    (tmp_path / "space_provisioned.v1.json").write_text(
        (FROZEN / "space_provisioned.v1.json").read_text()
    )
    (tmp_path / "user_signed_down.v1.json").write_text("{}")
    problems = check_frozen(tmp_path)
    assert len(problems) == 6
    assert problems[0].startswith("UserErased v1 has no frozen schema")
    assert problems[1].startswith("UserErasureRequested v1 has no frozen schema")
    assert problems[2].startswith("UserSignedUp v1 has no frozen schema")
    assert problems[3].startswith("UserSignedUp v2 has no frozen schema")
    assert problems[4].startswith("UserSignedUp v3 has no frozen schema")
    assert "--freeze" in problems[0]
    assert (
        "user_signed_down.v1.json is frozen but no registered contract publishes it"
        in (problems[5])
    )


def test_the_command_freezes_missing_files_without_overwriting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = copy.deepcopy(frozen_schema(SpaceProvisioned))
    tampered["properties"]["data"]["properties"]["quota_bytes"]["minimum"] = 5
    (tmp_path / "space_provisioned.v1.json").write_text(json.dumps(tampered))
    assert main(["--freeze", str(tmp_path)]) == 1
    output = capsys.readouterr().out
    assert f"froze {tmp_path / 'user_signed_up.v1.json'}" in output
    assert "SpaceProvisioned v1: data.quota_bytes: constraint-loosened: minimum 5 -> 0" in output
    assert json.loads((tmp_path / "space_provisioned.v1.json").read_text()) == tampered
    assert main([str(FROZEN)]) == 0


def test_a_new_version_is_a_new_frozen_file() -> None:
    class UserSignedUpV4(UserSignedUp):
        version = 4
        locale: str

    assert frozen_file_name(UserSignedUpV4.event_type, UserSignedUpV4.version) == (
        "user_signed_up.v4.json"
    )
    assert message_schema(UserSignedUpV4)["properties"]["version"]["const"] == 4
    assert ("UserSignedUp", 4) not in registered_events()  # not registered: no leak
