"""The OpenAPI ``full_name`` schema, compiled by JavaScript (node), judges names as the server does.

JSON Schema patterns are ECMA-262 regular expressions, which validators such as Ajv compile with
the ``u`` flag; a generated client validates with exactly that. Node is installed in CI.
"""

import json
import random
import shutil
import subprocess
from typing import Any

import pytest
from pydantic import ValidationError

from accounts import api
from accounts.api.schemas import SignupRequest

pytestmark = pytest.mark.integration
NODE = shutil.which("node")

# Reads {"schema": {minLength, maxLength, pattern}, "names": [...]} on stdin; prints, per name,
# whether the schema accepts it (lengths in code points, the pattern with the u flag).
JUDGE = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const { minLength, maxLength, pattern } = input.schema;
const regex = new RegExp(pattern, "u");
const accepts = (name) => {
  const length = [...name].length;
  return length >= minLength && length <= maxLength && regex.test(name);
};
process.stdout.write(JSON.stringify(input.names.map(accepts)));
"""

GOOD = [
    "Ada Lovelace",
    "Zoë Ñúñez",
    "李小龍",
    "Анна",
    "محمد",
    "O'Brien-Smith",
    "  Ada  ",
    "Ada\u00a0Lovelace",
    "\U0001d504da",  # a letter beyond the Basic Multilingual Plane
    "\U0001f600",
    "e\u0301",  # a combining accent
    "x" * 200,
    "\ue000",  # private use
]
BAD = [
    "",
    " ",
    "   ",
    "\u3000",
    "\u00a0\u2003",
    "Ada\n",
    "Ada\nLovelace",
    "Ada\tLovelace",
    "Ada\x00",
    "Ada\u200bLovelace",
    "Ada\u202eLovelace",
    "Ada\u2028",
    "\ufeffAda",
    "Ada\U000110bd",
    "Ada\U000e0041",
    "x" * 201,
]


def sample(count: int, seed: int = 20261125) -> list[str]:
    """Short names drawn from letters, spaces of every kind, refused characters and more."""
    letters = [*"Ada L'-.é", "\U0001d504", "\U00020000", "\U0003134a"]
    spaces = ["\u00a0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f", "\u3000"]
    refused = ["\x00", "\x1f", "\x7f", "\x85", "\u00ad", "\u061c", "\u180e", "\u2066"]
    refused += ["\ufff9", "\u2028", "\u2029", "\U000110bd", "\U0001bca0", "\U000e0001"]
    refused += ["\U000e007f"]
    unassigned_or_private = ["\u0378", "\U000e0080", "\U000f0000"]
    pool = letters + spaces + refused + unassigned_or_private
    draw = random.Random(seed)
    return ["".join(draw.choices(pool, k=draw.randint(0, 6))) for _ in range(count)]


def server_accepts(name: str) -> bool:
    try:
        SignupRequest.model_validate({"email": "ada@example.com", "plan": "pro", "full_name": name})
    except ValidationError:
        return False
    return True


def documented_full_name() -> dict[str, Any]:
    app = api.create_app(None, {})  # type: ignore[arg-type]
    schema = app.openapi()["components"]["schemas"]["SignupRequest"]["properties"]["full_name"]
    return {key: schema[key] for key in ("minLength", "maxLength", "pattern")}


@pytest.mark.skipif(NODE is None, reason="node is not installed (CI installs it)")
def test_javascript_accepts_and_refuses_the_names_the_server_does() -> None:
    names = GOOD + BAD + sample(600)
    assert NODE is not None
    judged = subprocess.run(
        [NODE, "-e", JUDGE],
        input=json.dumps({"schema": documented_full_name(), "names": names}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    javascript = dict(zip(names, json.loads(judged.stdout), strict=True))
    python = {name: server_accepts(name) for name in names}
    assert [name for name in GOOD if not python[name]] == []
    assert [name for name in BAD if python[name]] == []
    disagreements = {
        ascii(name): python[name] for name in names if javascript[name] != python[name]
    }
    assert disagreements == {}
    assert 0 < sum(python.values()) < len(names)  # the sample holds both verdicts
