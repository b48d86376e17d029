"""Pages whose text lives in images, for the image tests: served by the test web under
``/pictures/`` with a SearXNG-style search of their own (``/pictures/search``), so the article
set's figures stay as they are.

- ``/pictures/ferry-timetable``: a short page (too few words to count as content alone) with
  one drawn timetable that holds the answer, and a decorative icon too small to read.
- ``/pictures/museum-notice``: prose of its own plus every kind of bad image: corrupt bytes, a
  PNG header claiming 20,000 x 20,000 pixels, an SVG sent as PNG, HTML sent as an image, an
  image URL that redirects to a private address, and an animated GIF (only its first frame,
  which holds a sentence, is read).
- ``/pictures/slides``: five drawn slides, for the benchmark of what reading images costs.

Images are drawn with Pillow on first request, in DejaVu Sans (Debian's fonts-dejavu-core).
"""

from __future__ import annotations

import html
import io
import struct
import zlib
from functools import cache

__all__ = ["PAGES", "ANSWERS", "page", "image", "search", "bomb_header", "rgb_png"]

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

# Text drawn into each image (one line each).
DRAWN = {
    "timetable.png": ["Norvane ferry winter timetable", "The last ferry to Port Ellery leaves at 23:40",
                      "from Pier 7 on weekdays."],
    "slide-1.png": ["Orrin Signal Tower", "Rebuilt in 1962 after the storm."],
    "slide-2.png": ["The tower is twenty-two metres tall", "and built of riveted steel."],
    "slide-3.png": ["Visitors may climb it on Sundays", "from April to October."],
    "slide-4.png": ["The lamp was replaced in 1988", "by a rotating electric beacon."],
    "slide-5.png": ["The keeper's cottage is now", "a small museum of the coast."],
}
GIF_FIRST = ["The museum opens at nine on Saturdays."]
GIF_SECOND = ["This second frame is never read."]

# What each question's answer is, found only in an image.
ANSWERS = {"When does the last ferry to Port Ellery leave?": "23:40"}


def _page(title: str, paragraphs: list[str], images: list[tuple[str, str, int, int]]) -> str:
    figures = "\n".join(f'<figure><img src="{src}" alt="{html.escape(alt)}"'
                        + (f' width="{w}" height="{h}"' if w else "") + "></figure>" for src, alt, w, h in images)
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f'<body><nav><a href="/">Home</a></nav><main><h1>{title}</h1>\n{body}\n'
            f'<h2>Timetable</h2>\n{figures}\n</main><footer>Test Web</footer></body></html>')


PAGES = {
    "ferry-timetable": ("Norvane ferry timetable", ["Winter sailings between Norvane and Port Ellery."], [
        ("/pictures/img/timetable.png", "Winter timetable", 0, 0),
        ("/pictures/img/icon.png", "", 16, 16),
    ]),
    "museum-notice": ("Harbour museum notice", [
        "The harbour museum in Port Ellery keeps the town's maritime records, the logbooks of the "
        "Norvane ferries and a collection of ship models donated by retired captains over the years.",
        "Its opening hours are shown in the notice below, together with pictures of the collection.",
    ], [
        ("/pictures/img/corrupt.png", "Corrupt", 0, 0),
        ("/pictures/img/bomb.png", "Huge", 0, 0),
        ("/pictures/img/drawing-as-png.png", "A drawing", 0, 0),
        ("/pictures/img/html-as-png.png", "Not an image", 0, 0),
        ("/redirect-to?url=http%3A%2F%2F10.0.0.1%2Fnotice.png", "Moved", 0, 0),
        ("/pictures/img/opening.gif", "Opening hours", 0, 0),
    ]),
    "slides": ("Orrin signal tower in five slides", ["The slides of a talk about the Orrin signal tower."],
               [(f"/pictures/img/slide-{n}.png", f"Slide {n}", 0, 0) for n in range(1, 6)]),
}


def page(slug: str) -> bytes | None:
    if slug not in PAGES:
        return None
    title, paragraphs, images = PAGES[slug]
    return _page(title, paragraphs, images).encode()


def search(query: str) -> list[tuple[str, str]]:
    """(path, title) of the pages sharing a word with ``query``: title, text and alt text."""
    words = {w for w in query.lower().split() if len(w) > 3}
    found = []
    for slug, (title, paragraphs, images) in PAGES.items():
        said = " ".join([title, *paragraphs, *(alt for _, alt, _, _ in images)]).lower()
        if any(w in said for w in words):
            found.append((f"/pictures/{slug}", title))
    return found


def image(name: str) -> tuple[bytes, str] | None:
    """(body, content type) of one image route, or None."""
    if name in DRAWN:
        return _drawn(tuple(DRAWN[name])), "image/png"
    if name == "icon.png":
        return _drawn(("i",), width=16, height=16), "image/png"
    if name == "corrupt.png":
        return b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 64, "image/png"
    if name == "bomb.png":
        return bomb_header(20_000, 20_000), "image/png"
    if name == "drawing-as-png.png":
        return b'<svg xmlns="http://www.w3.org/2000/svg"><text x="0" y="10">Hi</text></svg>', "image/png"
    if name == "html-as-png.png":
        return b"<!DOCTYPE html><html><body><p>Not found</p></body></html>", "image/png"
    if name == "opening.gif":
        return _animation(), "image/gif"
    return None


def bomb_header(width: int, height: int) -> bytes:
    """A valid PNG whose header claims ``width`` x ``height`` pixels, holding (almost) nothing:
    what a decompression bomb looks like before it is unpacked."""
    return rgb_png(width, height, zlib.compress(b"\x00" * 16))


def rgb_png(width: int, height: int, compressed: bytes) -> bytes:
    """A PNG of 8-bit RGB, ``width`` x ``height`` as its header says, with ``compressed`` as its
    image data (zlib of the filtered rows, or anything a test wants there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


@cache
def _drawn(lines: tuple[str, ...], width: int = 900, height: int = 0) -> bytes:
    picture = _picture(lines, width, height)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _picture(lines, width: int = 900, height: int = 0):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 28 if width > 100 else 8)
    picture = Image.new("RGB", (width, height or 60 + 55 * len(lines)), "white")
    pen = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        pen.text((30 if width > 100 else 2, 30 + 55 * number if width > 100 else 2), line, fill="black", font=font)
    return picture


@cache
def _animation() -> bytes:
    first, second = _picture(GIF_FIRST), _picture(GIF_SECOND)
    out = io.BytesIO()
    first.save(out, "GIF", save_all=True, append_images=[second], duration=500, loop=0)
    return out.getvalue()
