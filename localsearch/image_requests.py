"""The protocol's image requests (the browser's "Extract text" and image tools): the image a
request sends (base64) or names (a URL, fetched under the URL policy), read by the ``image_text``
plugins or run through an image tool; what goes back.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Iterator

from .errors import Cancelled, LocalsearchError
from .types import Event

__all__ = ["image_events", "tools_listed"]


def image_events(kind: str, fields: dict, config, cancel: threading.Event) -> Iterator[Event]:
    """The events answering an ``image_text`` or ``image_run`` request, ending with ``done``."""
    started = time.perf_counter()
    image = _image(fields, "image", config)
    if cancel.is_set():
        raise Cancelled()
    if kind == "image_text":
        from .images import read_text

        texts, problems = read_text(image, config, url=fields.get("url") or "", page_url=fields.get("page_url") or "")
        yield Event("image_text", {"lines": [t.to_dict() for t in texts], "text": "\n".join(t.text for t in texts),
                                   "problems": problems})
    else:
        from .images import run_tool

        mask = _image(fields, "mask", config) if fields.get("mask") else None
        result = run_tool(fields["tool"], image, config, mask=mask, options=fields.get("options") or {})
        yield Event("image_result", {"tool": fields["tool"], "image": base64.b64encode(result).decode("ascii"),
                                     "type": "image/png", **_size(result)})
    if cancel.is_set():
        raise Cancelled()
    yield Event("done", {"timings": {kind: round(time.perf_counter() - started, 4)}})


def tools_listed(config) -> list[dict]:
    """What the ``image_tools`` message lists: each tool's name, family, description, options
    and whether it takes a mask."""
    from .images import image_tools, takes_mask

    return [{"name": tool.name, "family": getattr(tool, "family", ""), "description": getattr(tool, "description", ""),
             "options": dict(getattr(tool, "options", {}) or {}), "mask": takes_mask(tool)}
            for tool in image_tools(config).values()]


def _image(fields: dict, name: str, config) -> bytes:
    """The bytes of the request's ``name`` field (base64, or a ``data:`` URL), or for the image,
    its ``url`` fetched under the URL policy."""
    sent = fields.get(name)
    if sent:
        payload = sent.split(",", 1)[1] if sent.startswith("data:") else sent
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise LocalsearchError(f"the {name} is not base64 data") from None
    url = fields.get("url") or ""  # the session checked that the image is sent or named
    if not url.lower().startswith(("http://", "https://")):
        raise LocalsearchError(f"only http and https images are fetched, not {url[:60]!r}")
    from .page_images import fetch_image

    fetched = fetch_image(url, config)
    if not fetched.ok:
        raise LocalsearchError(f"the image at {url} could not be fetched: {fetched.status} {fetched.reason}".strip())
    return fetched.data


def _size(png: bytes) -> dict:
    if png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) >= 24:
        return {"width": int.from_bytes(png[16:20], "big"), "height": int.from_bytes(png[20:24], "big")}
    return {}
