"""The one place that reads waitress' internals: whether any request is still in flight.

waitress has no public way to ask it. Drain needs to know about a request at every stage: being
received (a slow body), queued for a thread, handled, or its response still being sent. The
handled stage alone could be counted by wrapping the WSGI app, but the others live only in the
channels and the task dispatcher, so all four are read here and nowhere else.
tests/service/test_server_activity.py drives a real waitress server through each stage and fails
when an upgrade renames or changes what is read.
"""

from __future__ import annotations

from typing import Any

from waitress.channel import HTTPChannel


def in_flight(server: Any) -> bool:
    """True while ``server`` (from waitress.create_server) receives, queues, handles or sends a
    request; False when every connection is idle (an idle keep-alive connection is not busy)."""
    dispatcher = server.task_dispatcher
    if dispatcher.active_count or dispatcher.queue:
        return True
    for channel in list(server.active_channels.values()):
        if not isinstance(channel, HTTPChannel):
            continue
        if channel.request is not None or channel.requests or channel.total_outbufs_len:
            return True
    return False
