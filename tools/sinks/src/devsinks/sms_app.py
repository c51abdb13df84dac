"""Transport-independent behaviour of the SMS gateway sink."""

import hmac
import logging
from dataclasses import dataclass, field
from http import HTTPStatus

from .masking import mask_phone
from .sms_faults import FaultInjector, parse_fault_spec
from .sms_store import SmsStore
from .sms_validation import ValidationError, parse_json_object, validate_sms_request

log = logging.getLogger("devsinks.sms")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    payload: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


def _invalid(error: ValidationError) -> Response:
    return Response(HTTPStatus.BAD_REQUEST, error.to_payload())


def _injected(status: int) -> Response:
    return Response(status, {"error": "injected_fault", "status": status})


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class SmsApp:
    def __init__(self, store: SmsStore, token: str | None = None) -> None:
        self.store = store
        self.faults = FaultInjector()
        self._token = token

    def _authorized(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        presented = bearer_token(authorization)
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8"), self._token.encode("utf-8")
        )

    def post_message(
        self, raw: bytes, idempotency_key: str | None, authorization: str | None
    ) -> Response:
        if not self._authorized(authorization):
            return Response(
                HTTPStatus.UNAUTHORIZED,
                {"error": "unauthorized", "message": "missing or invalid bearer token"},
                {"WWW-Authenticate": "Bearer"},
            )
        injected = self.faults.take_status()
        if injected is not None:
            log.info("injected status %d for a message request", injected)
            return _injected(injected)
        request = validate_sms_request(raw, idempotency_key)
        if isinstance(request, ValidationError):
            return _invalid(request)
        recipient_fault = self.faults.recipient_status(request.to)
        if recipient_fault is not None:
            log.info("injected status %d for sms to %s", recipient_fault, mask_phone(request.to))
            return _injected(recipient_fault)
        try:
            record, created = self.store.accept(request)
        except OSError:
            log.exception("could not store an sms in %s", self.store.path)
            return Response(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "storage_error", "message": "the sink could not store the message"},
            )
        if not created:
            return Response(HTTPStatus.OK, {"id": record.id, "status": "accepted"})
        log.info(
            "stored sms %s to %s (%d chars)", record.id, mask_phone(record.to), len(record.body)
        )
        return Response(HTTPStatus.CREATED, {"id": record.id, "status": "accepted"})

    def get_faults(self) -> Response:
        return Response(HTTPStatus.OK, self.faults.snapshot())

    def set_faults(self, raw: bytes) -> Response:
        payload = parse_json_object(raw)
        if isinstance(payload, ValidationError):
            return _invalid(payload)
        spec = parse_fault_spec(payload)
        if isinstance(spec, ValidationError):
            return _invalid(spec)
        self.faults.apply(spec)
        return self.get_faults()

    def clear_faults(self) -> Response:
        self.faults.clear()
        return self.get_faults()
