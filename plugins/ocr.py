"""Image text: OCR with the PP-OCRv4 models (Chinese and English) that ship inside
``rapidocr-onnxruntime`` (the ``image`` extra; 1.4.x, whose later releases download models at
run time). One engine per process, reused; each image decoded once, checked against a pixel
bound before it is decoded (a decompression bomb is refused, not unpacked), and scaled down to
what OCR needs."""

from __future__ import annotations

import io
import threading

from localsearch import hookimpl
from localsearch.errors import ImageError
from localsearch.types import ImageText

_engine = None
_engine_lock = threading.Lock()  # one model, one image at a time: the engine keeps state per call


@hookimpl(trylast=True)
def register_settings(register):
    register("ocr_images", False, "read the text in a page's images (OCR, about 1-2 s an image on 2 cores)")
    register("ocr_max_pixels", 40_000_000, "larger images are refused unread (a 20,000 x 20,000 image would "
                                           "take gigabytes to decode)")
    register("ocr_max_side", 2000, "images are scaled down to this many pixels on their longer side for OCR")
    register("ocr_min_confidence", 0.5, "text the OCR is less sure of than this is left out")


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
    from PIL import Image, UnidentifiedImageError

    head = image[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise ImageError("SVG images are drawings, not pictures: their text is read from the page itself")
    limit = int(config.get("ocr_max_pixels", 40_000_000))
    try:
        picture = Image.open(io.BytesIO(image))
        width, height = picture.size  # read from the header: nothing decoded yet
        if width * height > limit:
            raise ImageError(f"the image is {width:,} x {height:,} pixels, over the {limit:,}-pixel bound")
        picture.seek(0)  # an animation: its first frame
        picture = picture.convert("RGB")
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own bound, met before ours
        raise ImageError(f"the image is over the {limit:,}-pixel bound ({error})") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageError(f"not an image that can be read ({type(error).__name__}: {error})") from None
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
    return [ImageText(text=text, box=[[round(x * scale), round(y * scale)] for x, y in box],
                      confidence=round(float(score), 3), kind="ocr")
            for box, text, score in found or [] if float(score) >= minimum]
