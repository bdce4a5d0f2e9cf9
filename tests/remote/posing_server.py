"""A local server posing as Modal's API endpoint (MODAL_SERVER_URL), for tests of
how the real `modal` client fails: nothing leaves this machine.

Modes:
- "404": an HTTP/2 server that answers every request with HTTP 404 (what a
  reverse proxy or a wrong URL answers; grpclib reads it as UNIMPLEMENTED);
- "hang": accepts connections and never answers;
- "reset": accepts, then resets the connection (RST) at once.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import h2.config
import h2.connection
import h2.events


class PosingServer:
    def __init__(self, mode: str):
        if mode not in ("404", "hang", "reset"):
            raise ValueError(f"mode must be 404, hang or reset; got {mode!r}")
        self.mode = mode
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name=f"posing-modal-{mode}", daemon=True)

    def __enter__(self) -> "PosingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif self.mode == "404":
                threading.Thread(target=self._answer_404, args=(conn,), daemon=True).start()
            # "hang": keep the socket open, read nothing, answer nothing

    def _answer_404(self, conn: socket.socket) -> None:
        h2conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        h2conn.initiate_connection()
        try:
            conn.sendall(h2conn.data_to_send())
            while not self._closed.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                events: list[Any] = h2conn.receive_data(data)
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        h2conn.send_headers(event.stream_id, [(":status", "404"), ("content-length", "0")], end_stream=True)
                conn.sendall(h2conn.data_to_send())
        except Exception:
            return
