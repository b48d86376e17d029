"""The protocol's image requests (what the browser's image menu sends): an image's text, sent
as base64 or fetched by the host under the URL policy; the image tools listed and run; bad
requests refused with why."""

from __future__ import annotations

import base64

import pytest

from localsearch.config import Config
from localsearch.protocol import MAX_IMAGE
from localsearch.session import Session

from testweb.pictures import DRAWN, _drawn

TIMETABLE = _drawn(tuple(DRAWN["timetable.png"]))


@pytest.fixture
def session(home):
    made = Session(Config.load({"llm": False}))
    yield made
    made.close()


def replies(session, request, client="browser") -> list[dict]:
    return list(session.run({"id": "r1", **request}, client))


def test_image_text_reads_an_image_sent_as_base64_or_by_address(session, web):
    sent = replies(session, {"type": "image_text", "image": base64.b64encode(TIMETABLE).decode()})
    assert [m["type"] for m in sent] == ["image_text", "done"]
    assert "The last ferry to Port Ellery leaves at 23:40" in sent[0]["data"]["text"]
    assert len(sent[0]["data"]["lines"]) == 3 and all(len(line["box"]) == 4 for line in sent[0]["data"]["lines"])

    as_data_url = replies(session, {"type": "image_text",
                                    "image": "data:image/png;base64," + base64.b64encode(TIMETABLE).decode()})
    assert as_data_url[0]["data"]["text"] == sent[0]["data"]["text"]

    fetched = replies(session, {"type": "image_text", "url": web.url + "/pictures/img/timetable.png"})
    assert fetched[0]["data"]["text"] == sent[0]["data"]["text"]


@pytest.mark.parametrize("request_fields, said", [
    ({"type": "image_text"}, "send the image (`image`, base64) or its address (`url`)"),
    ({"type": "image_text", "image": "not base64!"}, "the image is not base64 data"),
    ({"type": "image_text", "image": "A" * (MAX_IMAGE + 1)}, f"too long: {MAX_IMAGE + 1:,} characters, at most"),
    ({"type": "image_text", "url": "file:///etc/passwd"}, "only http and https images are fetched"),
    ({"type": "image_text", "url": "http://10.0.0.1/x.png"}, "10.0.0.1 is a private address"),
    ({"type": "image_text", "image": base64.b64encode(b"<svg></svg>").decode()}, "the image is an SVG drawing"),
    ({"type": "image_run", "tool": "nothing", "image": base64.b64encode(TIMETABLE).decode()},
     "no image tool named 'nothing'"),
])
def test_bad_image_requests_get_an_error_that_says_why(session, request_fields, said):
    sent = replies(session, request_fields)
    assert sent[-1]["type"] == "error" and said in sent[-1]["data"]["message"], sent[-1]


def test_image_tools_are_listed_for_the_browser_menu(session):
    sent = replies(session, {"type": "image_tools"})
    assert [m["type"] for m in sent] == ["image_tools", "done"]
    assert sent[0]["data"] == {"tools": []}  # none configured here: see test_image_tools for configured ones
