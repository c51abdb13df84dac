"""Masking of personal data before it reaches log output."""

_HIDDEN = "***"


def mask_phone(number: str) -> str:
    digits = [char for char in number if char.isdigit()]
    if len(digits) <= 2:
        return _HIDDEN
    return _HIDDEN + "".join(digits[-2:])


def mask_email(address: str) -> str:
    local, separator, domain = address.strip().strip("<>").rpartition("@")
    if not separator or not domain:
        return _HIDDEN
    return f"{local[:1]}{_HIDDEN}@{domain}"


def mask_emails(addresses: list[str]) -> str:
    return ", ".join(mask_email(address) for address in addresses) or "-"
