"""Loopback ports for the real servers the tests start."""

from __future__ import annotations

import socket
from dataclasses import dataclass


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open while choosing, so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    """One free loopback port."""
    return free_ports(1)[0]


@dataclass
class LoopbackServer:
    """A server the tests started on 127.0.0.1: its API port and its metrics port."""

    port: int
    metrics_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"
