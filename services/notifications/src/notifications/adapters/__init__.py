"""One module per outside system: email (SMTP) and SMS (HTTP gateway)."""
