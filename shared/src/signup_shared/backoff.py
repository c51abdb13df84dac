"""Exponential backoff with jitter, for reconnect loops."""

import random


class Backoff:
    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        """The next delay: up to ``base * 2**attempt`` (capped), at least half of it."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
