"""The text in a page's images joins its document: the images of its main content worth reading
are fetched (under the URL policy, within the question's count, byte and time budget), read by
the ``image_text`` plugins (OCR) and appended to the document as blocks that name their image,
so they are chunked, retrieved and cited like the page's own text.

Which pages: those a search found when ``ocr_images`` is on (off by default: about 1-2 s an
image on 2 cores), the page the browser sends with "ask about this page" unless
``ocr_page_images`` is off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote_to_bytes, urlsplit

from .errors import ImageError
from .events import Run
from .outgoing import recording
from .plugins import pm
from .types import Block, Document, FetchStatus, ImageFile, PageImage
from .workers import Workers

__all__ = ["ImageRead", "wanted", "read_images", "fetch_image"]

_SKIPPED_SUFFIXES = (".svg", ".svgz", ".ico")  # drawings (their text is in the page) and icons


@dataclass
class ImageRead:
    """What became of one image of a page: its status (``ok``, a fetch status, ``unreadable``,
    ``no text``, ``skipped``), why, and how many lines of text it gave."""

    url: str
    status: str
    reason: str = ""
    lines: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        shown = self.url if not self.url.startswith("data:") else self.url[:40] + "…"
        return {"url": shown, "status": self.status, **({"reason": self.reason} if self.reason else {}),
                "lines": self.lines, "seconds": round(self.seconds, 3)}


def wanted(document: Document, given: bool, config) -> bool:
    """Whether the images of ``document`` are to be read (``given``: the browser sent the page)."""
    return bool(document.images) and bool(config.ocr_page_images if given else config.ocr_images)


def read_images(documents: list[Document], policy, workers: Workers, run: Run) -> dict[str, list[ImageRead]]:
    """Read the images of ``documents`` (those ``wanted`` already chosen), largest first, at most
    ``images_per_question`` and ``image_seconds``; each document gets the text found in its
    images. Returns what became of every image, by page URL."""
    config, started = run.config, time.perf_counter()
    reports: dict[str, list[ImageRead]] = {d.url: [] for d in documents}
    chosen: list[tuple[Document, PageImage]] = []
    for document in documents:
        for image in document.images:
            skipped = _skipped(image, config)
            if skipped:
                reports[document.url].append(ImageRead(image.url, "skipped", skipped))
            else:
                chosen.append((document, image))
    # The largest first: a chart or a scanned page holds text, a thumbnail seldom does. Images
    # whose size the page does not state come after those stated large.
    chosen.sort(key=lambda pair: -(pair[1].width * pair[1].height or config.image_min_side ** 2 * 4))
    for document, image in chosen[config.images_per_question:]:
        reports[document.url].append(ImageRead(image.url, "skipped",
                                                f"over the question's {config.images_per_question} images"))
    chosen = chosen[:config.images_per_question]
    files = _fetch([image.url for _, image in chosen], policy, workers, run)
    for (document, image), file in zip(chosen, files):
        run.check()
        if not file.ok:
            reports[document.url].append(ImageRead(image.url, file.status, file.reason, seconds=file.seconds))
            continue
        if time.perf_counter() - started > config.image_seconds:
            reports[document.url].append(ImageRead(image.url, "skipped",
                                                   f"over the question's {config.image_seconds:g} s for images"))
            continue
        reports[document.url].append(_read_into(document, image, file, config))
    for document in documents:  # each page's images in the page's order
        order = {image.url: n for n, image in enumerate(document.images)}
        reports[document.url].sort(key=lambda read: order.get(read.url, 0))
    return reports


def fetch_image(url: str, config) -> ImageFile:
    """One image from the web (``localsearch image ocr URL``), under the URL policy and
    ``image_max_bytes``, on workers of its own."""
    from .urlpolicy import UrlPolicy

    workers = Workers(fetch_threads=2, engine_threads=1, lookup_threads=1)
    try:
        return _fetch([url], UrlPolicy.from_config(config), workers, Run(config))[0]
    finally:
        workers.close()


def _skipped(image: PageImage, config) -> str:
    path = urlsplit(image.url).path.lower() if not image.url.startswith("data:") else ""
    if path.endswith(_SKIPPED_SUFFIXES) or image.url.startswith("data:image/svg"):
        return "a drawing or an icon"
    small = config.image_min_side
    if (image.width and image.width < small) or (image.height and image.height < small):
        return f"smaller than {small} px"
    return ""


def _read_into(document: Document, image: PageImage, file: ImageFile, config) -> ImageRead:
    """OCR one image and append its text to ``document`` as a block that names the image."""
    from .images import read_text

    began = time.perf_counter()
    try:
        texts, problems = read_text(file.data, config, url=image.url, alt=image.alt, page_url=document.url)
    except ImageError as error:
        return ImageRead(image.url, "unreadable", str(error), seconds=time.perf_counter() - began)
    seconds = file.seconds + time.perf_counter() - began
    # Lines a picture wraps are one text: a sentence that runs over two lines stays one sentence.
    text = " ".join(" ".join(t.text.split()) for t in texts).strip()
    if not text:
        return ImageRead(image.url, "no text", "; ".join(problems), seconds=seconds)
    _append(document, text, image)
    return ImageRead(image.url, FetchStatus.OK, "; ".join(problems), lines=len(texts), seconds=seconds)


def _append(document: Document, text: str, image: PageImage) -> None:
    if not document.blocks and document.text:
        # A document without structure is chunked by its lines; keep that for its own text.
        offset = 0
        for line in document.text.split("\n"):
            if line.strip():
                document.blocks.append(Block(offset, offset + len(line)))
            offset += len(line) + 1
    separator = "\n" if document.text else ""
    start = len(document.text) + len(separator)
    document.text = f"{document.text}{separator}{text}"
    name = image.alt
    if not name and not image.url.startswith("data:"):
        name = unquote_to_bytes(PurePosixPath(urlsplit(image.url).path).name).decode("utf-8", "replace")
    label = f"Image: {name}" if name else "Image"
    section = f"{image.section} › {label}" if image.section else label
    # An inline image is named by its type alone: its bytes are no address anyone can follow.
    named = image.url if not image.url.startswith("data:") else image.url.split(",")[0].split(";")[0]
    document.blocks.append(Block(start, len(document.text), "text", section, image=named))


def _fetch(urls: list[str], policy, workers: Workers, run: Run) -> list[ImageFile]:
    """The images at ``urls``, fetched concurrently (``data:`` ones decoded here), each checked
    against ``policy`` first; a failure is the image's status, never an exception."""
    if not urls:
        return []
    config = run.config

    async def one(url: str, limit: asyncio.Semaphore) -> ImageFile:
        if url.startswith("data:"):
            return _decoded(url, config.image_max_bytes)
        async with limit:
            began = time.perf_counter()
            try:
                file = await asyncio.wait_for(_checked(url, policy, workers, config), config.fetch_timeout + 1.0)
            except asyncio.TimeoutError:
                file = ImageFile(url, FetchStatus.TIMEOUT, reason=f"no image within {config.fetch_timeout:g} s")
            except Exception as error:  # a fetcher's bug costs this image only
                file = ImageFile(url, FetchStatus.ERROR, reason=f"fetcher failed: {error}")
            if file is None:
                file = ImageFile(url, FetchStatus.NO_FETCHER, reason="no plugin fetches this image")
            elif not isinstance(file, ImageFile):
                file = ImageFile(url, FetchStatus.ERROR, reason=f"the fetcher returned {type(file).__name__}")
            elif file.ok and len(file.data) > config.image_max_bytes:
                file = ImageFile(url, FetchStatus.TOO_LARGE, reason=f"over the {config.image_max_bytes:,}-byte cap")
            file.seconds = file.seconds or round(time.perf_counter() - began, 4)
            return file

    async def every() -> list[ImageFile]:
        limit = asyncio.Semaphore(config.fetch_concurrency)
        with recording(run.requests):
            return list(await asyncio.gather(*(one(url, limit) for url in urls)))

    return workers.run(every(), run.cancel)


async def _checked(url: str, policy, workers: Workers, config):
    from .documents import first_result

    refused = await asyncio.wrap_future(workers.lookup_pool.submit(policy.check, url))
    if refused:
        return ImageFile(url, FetchStatus.BLOCKED, reason=refused)
    return await first_result(pm.hook.fetch_image, {"url": url, "config": config, "limit": config.image_max_bytes},
                              workers)


def _decoded(url: str, limit: int) -> ImageFile:
    """A ``data:`` image (the browser's page may hold its images inline): its bytes, if within
    ``limit``."""
    header, _, payload = url.partition(",")
    if len(payload) > limit * 4 // 3 + 4:
        return ImageFile(url, FetchStatus.TOO_LARGE, reason=f"over the {limit:,}-byte cap")
    try:
        data = base64.b64decode(payload, validate=False) if header.endswith(";base64") else unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as error:
        return ImageFile(url, FetchStatus.ERROR, reason=f"a data: URL that does not decode ({error})")
    if len(data) > limit:  # percent-encoded text decodes to less, but check what it became
        return ImageFile(url, FetchStatus.TOO_LARGE, reason=f"over the {limit:,}-byte cap")
    return ImageFile(url, FetchStatus.OK, data=data, content_type=header[5:].split(";")[0])
