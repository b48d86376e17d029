"""Responses built to hang, exhaust or confuse a reader, for tests/test_hostile_content.py.

``serve(handler, web, path, query)`` answers one request under ``/nasty/`` (``handler`` is the
test web's request handler: ``handler.send(status, body, content_type, headers)``,
``handler.send_html(status, message)``, ``handler.wfile`` for streaming).
"""

from __future__ import annotations


def serve(handler, web, path: str, query: dict) -> None:
    handler.send_html(404, "Not Found")
