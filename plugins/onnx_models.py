"""Loading an ONNX model for the image tools: one onnxruntime session per model file, kept while
the file is unchanged, with what its inputs and outputs declare; and the helpers a family's
contract check is written with, whose refusal (a PluginError) says what was expected and what the
file has."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from localsearch.errors import PluginError

__all__ = ["Model", "model", "checked", "refuse", "fits", "static", "is_float"]


@dataclass
class Model:
    """One loaded model file: its session and what its inputs and outputs declare."""

    path: Path
    session: object
    inputs: list = field(default_factory=list)   # (name, numpy dtype or None, shape)
    outputs: list = field(default_factory=list)
    contracts: dict = field(default_factory=dict)  # family -> what it was checked to be
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> str:
        def one(name, dtype, shape):
            dims = ",".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) if shape is not None else "?"
            return f"{name} {dtype.__name__ if dtype else 'non-tensor'} [{dims}]"
        return (f"inputs {'; '.join(one(*i) for i in self.inputs) or 'none'}; "
                f"outputs {'; '.join(one(*o) for o in self.outputs) or 'none'}")

    def run(self, feeds: dict):
        """The model's first output for ``feeds``."""
        try:
            return self.session.run([self.outputs[0][0]], feeds)[0]
        except Exception as error:  # onnxruntime's own errors: a shape or type the graph refused
            raise PluginError(f"model {self.path} failed to run ({type(error).__name__}: {error})") from None


_models: dict[str, tuple[tuple[int, int], Model]] = {}
_model_locks: dict[str, threading.Lock] = {}
_models_lock = threading.Lock()


def _numpy_type(ort_type: str):
    import numpy

    kinds = {"tensor(float)": numpy.float32, "tensor(float16)": numpy.float16, "tensor(uint8)": numpy.uint8,
             "tensor(int64)": numpy.int64, "tensor(int32)": numpy.int32, "tensor(double)": numpy.float64}
    return kinds.get(ort_type)


def model(path: Path) -> Model:
    """The model at ``path``, loaded once and again only when the file changes (its mtime or
    size); PluginError when it is not there or is no ONNX model."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise PluginError(f"model file {path} does not exist (check the image_tools setting)") from None
    except OSError as error:
        raise PluginError(f"model file {path} cannot be read ({error.strerror or error})") from None
    stamp, key = (stat.st_mtime_ns, stat.st_size), str(path.resolve())
    with _models_lock:
        lock = _model_locks.setdefault(key, threading.Lock())
    with lock:  # two threads asking for one new model load it once; other models do not wait
        cached = _models.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            import onnxruntime
        except ImportError:
            raise PluginError("onnxruntime is not installed: pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3  # its warnings about unused initializers are not the user's business
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise PluginError(f"model file {path} is not an ONNX model onnxruntime can load "
                              f"({type(error).__name__}: {str(error)[:300]})") from None
        loaded = Model(path, session,
                       [(i.name, _numpy_type(i.type), i.shape) for i in session.get_inputs()],
                       [(o.name, _numpy_type(o.type), o.shape) for o in session.get_outputs()])
        _models[key] = (stamp, loaded)
        return loaded


# -- contracts -----------------------------------------------------------------------------------

def checked(found: Model, family: str, check) -> dict:
    """What ``check(found)`` makes of the model for ``family``: run once per model and family."""
    with found.lock:
        if family not in found.contracts:
            found.contracts[family] = check(found)
        return found.contracts[family]


def static(dimension) -> int | None:
    return dimension if isinstance(dimension, int) and dimension > 0 else None


def fits(shape, rank: int, channels: int | None) -> bool:
    """Whether a declared shape is ``rank``-dimensional with ``channels`` at index 1 (or free)."""
    if shape is None or len(shape) != rank:
        return False
    return channels is None or static(shape[1]) in (None, channels)


FLOATS = ("float32", "float16")


def is_float(dtype) -> bool:
    return dtype is not None and dtype.__name__ in FLOATS


def refuse(found: Model, family: str, expected: str):
    raise PluginError(f"model {found.path} does not fit the {family} family: expected {expected}; "
                      f"the file has {found.describe()}")
