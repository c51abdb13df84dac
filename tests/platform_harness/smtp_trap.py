"""An SMTP server that misbehaves on purpose, in the test process, in front of the SMTP sink.

Modes (``SmtpTrap.mode``, applied to each new connection):

- ``drip``: accept, then send the greeting one byte every ``drip_every`` seconds, never ending
  the line (every read the client makes succeeds, so a per-read timeout never fires);
- ``silent``: accept and never send a byte;
- ``relay``: the server has recovered: pipe the session to the real SMTP sink (``target``).

Every connection is recorded with when it opened and when the client gave up (closed it), so a
test can assert that no session outlived the client's deadline.
"""

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field

DRIP = b"220 slow-smtp.example ESMTP " + b"." * 100_000


@dataclass
class Session:
    mode: str
    opened: float
    closed: float | None = None

    def seconds(self, now: float | None = None) -> float:
        end = self.closed if self.closed is not None else (now or time.monotonic())
        return end - self.opened


@dataclass
class SmtpTrap:
    target: int = 0  # the SMTP sink's port, for ``relay``
    mode: str = "drip"
    drip_every: float = 3.0
    sessions: list[Session] = field(default_factory=list)
    _server: socket.socket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _relayed: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.5)
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, name="smtp-trap", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()

    def set_mode(self, mode: str) -> None:
        """Serve new connections so; sessions relayed so far are cut (a pooled client must
        come back and meet the new behaviour)."""
        with self._lock:
            self.mode = mode
            relayed, self._relayed = self._relayed, []
        for client in relayed:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def sessions_of(self, mode: str) -> list[Session]:
        with self._lock:
            return [s for s in self.sessions if s.mode == mode]

    def longest(self, *modes: str) -> float:
        """The longest session of these modes so far (still open ones count until now)."""
        now = time.monotonic()
        with self._lock:
            return max((s.seconds(now) for s in self.sessions if s.mode in modes), default=0.0)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                session = Session(self.mode, time.monotonic())
                self.sessions.append(session)
                if session.mode == "relay":
                    self._relayed.append(client)
            threading.Thread(
                target=self._serve, args=(client, session), name="smtp-trap-session", daemon=True
            ).start()

    def _serve(self, client: socket.socket, session: Session) -> None:
        try:
            if session.mode == "relay":
                self._relay(client)
            else:
                self._hold(client, session.mode == "drip")
        except OSError:
            pass
        finally:
            session.closed = time.monotonic()
            with contextlib.suppress(OSError):
                client.close()

    def _hold(self, client: socket.socket, drip: bool) -> None:
        """Until the client closes: drip a byte per interval (or nothing), ignore what it says."""
        sent = 0
        while not self._stop.is_set():
            readable, _, _ = select.select([client], [], [], self.drip_every if drip else 0.5)
            if readable and not client.recv(4096):
                return  # the client gave up
            if drip and not readable:
                client.sendall(DRIP[sent : sent + 1])
                sent += 1

    def _relay(self, client: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", self.target), timeout=30) as upstream:
            peers = {client: upstream, upstream: client}
            while not self._stop.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
