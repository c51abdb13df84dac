"""A steady signup load that keeps going through faults: each signup is retried until accepted."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

PLANS = ("free", "pro", "team")


@dataclass
class Load:
    """Signs ``count`` users up at ``rate`` per second on background threads.

    A request that fails (connection refused, 5xx while a dependency is down) is retried with
    the same body; a 409 on a retry means an earlier attempt was committed. Every email that
    was accepted either way is in ``accepted``.
    """

    url: str
    tag: str
    count: int = 500
    rate: float = 60.0
    workers: int = 8
    offset: int = 0  # numbers the signups from here: several loads on one stack never share
    # a phone number (phones derive from the number; emails also carry the tag)
    phone_every: int = 3  # every signup but each ``phone_every``-th gives a phone; 1: all do
    # The load waits before signup ``pause_before`` until ``resume`` is set (then goes on at
    # ``rate``): a scenario whose steps take an unknown time still ends within the load.
    pause_before: int | None = None
    resume: threading.Event = field(default_factory=threading.Event)
    accepted: set[str] = field(default_factory=set)
    accepted_at: dict[str, float] = field(default_factory=dict)  # email -> time.time()
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def body(self, index: int) -> dict[str, str]:
        index += self.offset
        body = {
            "email": f"u{index}-{self.tag}@example.com",
            "full_name": f"User {index}",
            "plan": PLANS[index % 3],
        }
        if self.phone_every == 1 or index % self.phone_every:
            body["phone"] = f"+1{index % 1000:03d}55{index:06d}"
        return body

    def start(self) -> "Load":
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 600) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the load did not finish")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=10) as client, ThreadPoolExecutor(self.workers) as pool:
            futures = []
            for index in range(self.count):
                if index == self.pause_before:
                    self.resume.wait()
                    started = time.monotonic() - index / self.rate
                delay = started + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(self._sign_up, client, index))
            for future in futures:
                future.result()

    def _sign_up(self, client: httpx.Client, index: int) -> None:
        body = self.body(index)
        deadline = time.monotonic() + 300
        retried = False
        while True:
            try:
                status = client.post(self.url, json=body).status_code
            except httpx.HTTPError:
                status = 0
            if status == 201 or (status == 409 and retried):
                with self._lock:
                    self.accepted.add(body["email"])
                    self.accepted_at[body["email"]] = time.time()
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"signup {index} never accepted (last status {status})")
            retried = True
            with self._lock:
                self.retries += 1
            time.sleep(0.2)
