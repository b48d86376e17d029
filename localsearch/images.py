"""Text from images: every ``image_text`` plugin asked about one image, each on its own (one that
fails costs only its own text). What the CLI's ``localsearch image ocr`` and, later, extraction use.
"""

from __future__ import annotations

from .errors import ImageError
from .plugins import load_plugins, pm
from .types import ImageText

__all__ = ["read_text"]


def read_text(image: bytes, config, url: str = "", alt: str = "", page_url: str = "") -> tuple[list[ImageText], list[str]]:
    """(texts, problems): what the plugins read in ``image``, and why some could not.
    ``ImageError`` when no plugin could read it and one said why."""
    load_plugins()
    arguments = {"image": image, "url": url, "alt": alt, "page_url": page_url, "config": config}
    texts: list[ImageText] = []
    problems: list[str] = []
    refusals: list[ImageError] = []
    for implementation in reversed(pm.hook.image_text.get_hookimpls()):
        try:
            found = implementation.function(*[arguments[name] for name in implementation.argnames])
        except ImageError as error:
            refusals.append(error)
            continue
        except Exception as error:  # a plugin's bug costs its own text
            problems.append(f"plugin {implementation.plugin_name!r}: image_text failed ({type(error).__name__}: {error})")
            continue
        texts.extend(t for t in found or [] if isinstance(t, ImageText) and t.text.strip())
    if refusals and not texts:
        raise refusals[0]
    problems.extend(str(r) for r in refusals)
    return texts, problems
