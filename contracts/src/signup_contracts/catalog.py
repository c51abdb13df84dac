"""The catalog files shipped inside the package: the AsyncAPI document and the frozen schemas.

They are package data (``importlib.resources``), so an installed wheel reads them without the
repository: ``asyncapi_document()``, ``frozen_schema("UserSignedUp", 1)``. In this repository
the files live in ``contracts/src/signup_contracts/data/`` (``docs/asyncapi/asyncapi.json`` and
``contracts/schemas`` point there).
"""

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from signup_contracts.schemas import JsonSchema, frozen_file_name

ASYNCAPI_FILE = "asyncapi.json"
SCHEMAS_FOLDER = "schemas"


def data() -> Traversable:
    """The package's data folder."""
    return resources.files("signup_contracts") / "data"


def asyncapi_text() -> str:
    """The AsyncAPI 3.0 document of the catalog, as shipped (JSON text)."""
    return (data() / ASYNCAPI_FILE).read_text(encoding="utf-8")


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the catalog, as shipped."""
    document: dict[str, Any] = json.loads(asyncapi_text())
    return document


def frozen_schemas_folder() -> Traversable:
    """The folder of frozen message schemas, one file per published (type, version)."""
    return data() / SCHEMAS_FOLDER


def frozen_schema(event_type: str, version: int) -> JsonSchema:
    """The frozen JSON Schema of one published (type, version); LookupError if none."""
    path = frozen_schemas_folder() / frozen_file_name(event_type, version)
    if not path.is_file():
        raise LookupError(f"{event_type} v{version} has no frozen schema in this package")
    schema: JsonSchema = json.loads(path.read_text(encoding="utf-8"))
    return schema
