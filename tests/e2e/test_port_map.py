"""The stack's loopback port map: each (Service, port) gets its own local port."""

from __future__ import annotations

import pytest
import stack


def test_a_port_offered_again_is_not_given_to_a_second_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offers = iter([[40001], [40001], [40001], [40002]])  # the kernel offering one port twice
    monkeypatch.setattr(stack, "free_ports", lambda _n: next(offers))
    ports = stack.PortMap()
    assert ports.listen("jaeger-query", 16686) == 40001
    assert ports.listen("jaeger-collector", 4318) == 40002
    assert ports.listen("jaeger-query", 16686) == 40001  # asked again: the same one
    assert ports.dial("http://jaeger-collector.ns.svc:4318/v1/traces") == (
        "http://127.0.0.1:40002/v1/traces"
    )
