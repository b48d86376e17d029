"""Images: their text (every ``image_text`` plugin asked about one image, each on its own, one that
fails costing only its own text; what ``localsearch image ocr`` and, later, extraction use) and the
image tools (``register_image_tools``: image in, image out; ``localsearch image tools`` / ``run``).
"""

from __future__ import annotations

import logging

from .errors import ImageError, LocalsearchError, PluginError
from .plugins import implementations, load_plugins, pm
from .types import ImageText

__all__ = ["read_text", "opened", "image_tools", "run_tool", "takes_mask"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def opened(image: bytes, limit: int, what: str = "the image"):
    """``image`` as a Pillow picture, not yet converted: an animation's first frame, upright by its
    EXIF orientation. Its size is read from its header and refused past ``limit`` pixels before
    anything is decoded (a decompression bomb is never unpacked); ImageError says why an SVG, a
    corrupt file or something that is no image cannot be read. What every image plugin starts from."""
    import io
    import struct

    from PIL import Image, ImageOps, UnidentifiedImageError

    head = image[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise ImageError(f"{what} is an SVG drawing, not a picture")
    try:
        picture = Image.open(io.BytesIO(image))
        width, height = picture.size  # from the header: nothing decoded yet
        if width * height > limit:
            raise ImageError(f"{what} is {width:,} x {height:,} pixels, over the {limit:,}-pixel bound")
        picture.seek(0)
        return ImageOps.exif_transpose(picture)
    except ImageError:
        raise
    except UnidentifiedImageError:
        said = image[:24].decode("ascii", "replace").strip()
        shown = f"; it begins {said!r}" if said.isprintable() and said else ""
        raise ImageError(f"{what} is not an image that can be read: no picture format it knows{shown}") from None
    except Image.DecompressionBombError as error:  # Pillow's own bound, met before ours
        raise ImageError(f"{what} is over the {limit:,}-pixel bound ({error})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as error:
        raise ImageError(f"{what} is not an image that can be read ({type(error).__name__}: {error})") from None


def image_tools(config, problems: list[str] | None = None) -> dict[str, object]:
    """Every plugin's image tools by name. Each plugin's ``register_image_tools`` is called on its
    own: one that raises costs only its own tools, and why is appended to ``problems`` (and
    logged). Of two tools with one name, the first registered is used."""
    load_plugins()
    found = [] if problems is None else problems
    tools: dict[str, object] = {}
    owners: dict[str, str] = {}
    for plugin_name, call in implementations("register_image_tools"):
        offered: list[object] = []
        try:
            call(register=offered.append, config=config)
        except Exception as error:
            reason = str(error) if isinstance(error, LocalsearchError) else f"{type(error).__name__}: {error}"
            found.append(f"plugin {plugin_name!r}: register_image_tools failed ({reason}); its image tools are "
                         f"not available")
            continue
        for tool in offered:
            name = getattr(tool, "name", None)
            if not isinstance(name, str) or not name or not callable(getattr(tool, "run", None)):
                found.append(f"plugin {plugin_name!r} registered {tool!r}, which is not an image tool (it needs a "
                             f"name and a run method); it is ignored")
            elif name in tools:
                found.append(f"image tool {name!r} is registered by plugins {owners[name]!r} and {plugin_name!r}; "
                             f"the one of plugin {owners[name]!r} is used")
            else:
                tools[name], owners[name] = tool, plugin_name
    for problem in found:
        logger.warning("%s", problem)
    return tools


def takes_mask(tool) -> bool:
    """Whether ``tool`` works on the area a mask marks (its ``takes_mask``, else: it inpaints)."""
    declared = getattr(tool, "takes_mask", None)
    return bool(declared) if declared is not None else getattr(tool, "family", "") == "inpainting"


def run_tool(name: str, image: bytes, config, mask: bytes | None = None, options: dict | None = None) -> bytes:
    """The PNG the image tool ``name`` makes of ``image`` (and ``mask``, for a tool that takes
    one), with ``options`` (strings are parsed to the type of the option's default).
    LocalsearchError for an unknown tool, option or a missing mask; the tool's ImageError for an
    image it cannot take and PluginError for a model that does not fit."""
    problems: list[str] = []
    tools = image_tools(config, problems)
    tool = tools.get(name)
    if tool is None:
        there = ", ".join(sorted(tools)) or "none (set image_tools in the config file: see docs/image-tools.md)"
        raise LocalsearchError(f"no image tool named {name!r}; the tools there are: {there}"
                               + "".join(f"; {problem}" for problem in problems))
    family = getattr(tool, "family", "")
    if takes_mask(tool) and mask is None:
        raise LocalsearchError(f"image tool {name!r} ({family}) needs a mask: an image of the same size, white "
                               f"where the picture is to be filled in")
    if mask is not None and not takes_mask(tool):
        raise LocalsearchError(f"image tool {name!r} ({family}) takes no mask")
    values = _options(name, dict(getattr(tool, "options", None) or {}), options or {})
    try:
        result = tool.run(image, mask, values)
    except LocalsearchError:
        raise
    except Exception as error:  # a plugin's bug: reported as the plugin's, not as ours
        raise PluginError(f"image tool {name!r} failed ({type(error).__name__}: {error})") from error
    if not isinstance(result, (bytes, bytearray)) or not bytes(result[:8]) == PNG_SIGNATURE:
        raise PluginError(f"image tool {name!r} returned something that is not a PNG")
    return bytes(result)


def _options(tool: str, defaults: dict, given: dict) -> dict:
    """The tool's options: its defaults, with ``given`` parsed to each default's type."""
    values = dict(defaults)
    for key, raw in given.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise LocalsearchError(f"image tool {tool!r} has no option {key!r} (its options: {known})")
        default = defaults[key]
        try:
            if isinstance(raw, str) and isinstance(default, bool):
                if raw.strip().lower() not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                    raise ValueError("expected true or false")
                values[key] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(raw, str) and isinstance(default, (int, float)):
                values[key] = type(default)(raw)
            else:
                values[key] = raw
        except ValueError as error:
            raise LocalsearchError(f"image tool {tool!r}: option {key}={raw!r} is not valid ({error})") from None
    return values
