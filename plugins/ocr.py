"""Image text: OCR with the PP-OCRv4 models (Chinese and English) that ship inside
``rapidocr-onnxruntime`` (the ``image`` extra; 1.4.x, whose later releases download models at
run time). One engine per process, reused; each image decoded once, checked against a pixel
bound before it is decoded (a decompression bomb is refused, not unpacked), and scaled down to
what OCR needs."""

from __future__ import annotations

import functools
import re
import threading

from localsearch import hookimpl
from localsearch.errors import ImageError
from localsearch.images import opened
from localsearch.types import ImageText

_engine = None
_engine_lock = threading.Lock()  # one model, one image at a time: the engine keeps state per call


@hookimpl(trylast=True)
def register_settings(register):
    register("ocr_max_pixels", 40_000_000, "larger images are refused unread (a 20,000 x 20,000 image would "
                                           "take gigabytes to decode)")
    register("ocr_max_side", 2000, "images are scaled down to this many pixels on their longer side for OCR")
    register("ocr_min_confidence", 0.5, "text the OCR is less sure of than this is left out")
    register("ocr_split_words", True, "split English words the OCR ran together (\"Thequickbrownfox\") with a "
                                      "word-frequency list, so that searching for them finds them")


def _reader():
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                raise ImageError("OCR is not installed: pip install 'localsearch[image]'") from None
            _engine = RapidOCR()
        return _engine


def decoded(image: bytes, config):
    """(picture, factor): the image as an RGB picture OCR can read, scaled down by ``factor``
    (original size ÷ size read); ImageError with why not."""
    try:
        picture = opened(image, int(config.get("ocr_max_pixels", 40_000_000)))
    except ImageError as error:
        if "SVG" in str(error):  # a drawing's text is markup the page's own text already holds
            raise ImageError(f"{error}: its text is read from the page itself") from None
        raise
    width = picture.size[0]
    picture = picture.convert("RGB")
    side = int(config.get("ocr_max_side", 2000))
    if max(picture.size) > side:
        picture.thumbnail((side, side))
    return picture, width / picture.size[0]


@hookimpl(trylast=True)
def image_text(image, config):
    import numpy

    picture, scale = decoded(image, config)
    reader = _reader()
    with _engine_lock:
        found, _ = reader(numpy.asarray(picture))
    minimum = float(config.get("ocr_min_confidence", 0.5))
    split = split_words if config.get("ocr_split_words", True) else str
    return [ImageText(text=split(text), box=[[round(x * scale), round(y * scale)] for x, y in box],
                      confidence=round(float(score), 3), kind="ocr")
            for box, text, score in found or [] if float(score) >= minimum]


# A run of letters the OCR may have read without its spaces: lower case, Capitalised or upper
# case only. A CamelCase name (JavaScript, PostgreSQL) is a name, not words run together, and a
# short Capitalised word not in the list is more likely a name ("Norvane") than two words
# ("Nor vane"): only one long enough to hold two words of some length is split.
# Addresses, paths and file names (user@example.org, contrib/vscode) are left whole.
_RUN = re.compile(r"(?<![\w@/.-])(?:[a-z]{6,}|[A-Z][a-z]{9,}|[A-Z]{8,})(?![\w@/-]|\.\w)")
# Two-letter words a run may hold; any other piece of one or two letters ("version ed",
# "in it rd") means the run is a word the list lacks, not words run together.
_SHORT_WORDS = set("a i am an as at be by do go he if in is it me my no of on or so to up us we".split())


def split_words(text: str) -> str:
    """``text`` with the English words run together in it split apart ("Thequickbrownfox" ->
    "The quick brown fox"); a known word, a CamelCase name and anything not made of known words
    stay."""
    model = _word_model()
    if model is None:
        return text
    costs = model._wordcost

    def split(match: re.Match) -> str:
        run = match.group()
        if run.lower() in costs:
            return run  # a word on its own
        pieces = model.split(run)
        # Every piece a word of three letters or more, or a common short one: otherwise the run
        # is a name or a word the list lacks, and a guess would only make it harder to find.
        if len(pieces) < 2 or any(len(p) < 3 and p.lower() not in _SHORT_WORDS for p in pieces):
            return run
        return " ".join(pieces)

    return _RUN.sub(split, text)


@functools.cache
def _word_model():
    try:
        import wordninja  # English word frequencies (Wikipedia unigrams), 0.5 MB, in the image extra
    except ImportError:
        return None
    return wordninja.DEFAULT_LANGUAGE_MODEL
