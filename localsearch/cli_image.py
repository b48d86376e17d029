"""``localsearch image``: the image plugins from the command line (``image ocr``; the image tools:
``image tools`` and ``image run``). Plugins add to the group in ``register_commands``, which the CLI
calls after this module has made it: the built-in ``onnx_tools`` adds ``image import-ncnn``, which
makes a model for one."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli import cli


@cli.group()
def image():
    """Read the text in images; upscale, erase, restore, cut out (the image tools)."""


@image.command("ocr")
@click.argument("source", metavar="FILE|URL")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each line's text, box and confidence.")
def ocr_command(source, as_json):
    """Print the text in an image (a FILE, or a URL fetched under the URL policy), a line at a
    time, with its confidence."""
    from .config import Config
    from .errors import ImageError
    from .images import read_text

    config = Config.load()
    if source.lower().startswith(("http://", "https://")):
        from .page_images import fetch_image

        fetched = fetch_image(source, config)
        if not fetched.ok:
            raise click.ClickException(f"{source}: {fetched.status}: {fetched.reason}".rstrip(": "))
        image_bytes, url = fetched.data, source
    else:
        file = Path(source)
        if not file.is_file():
            raise click.ClickException(f"{source}: no such file (give an image file, or an http(s) URL)")
        image_bytes, url = file.read_bytes(), file.resolve().as_uri()
    try:
        texts, problems = read_text(image_bytes, config, url=url)
    except ImageError as error:
        raise click.ClickException(f"{source}: {error}") from None
    if as_json:
        click.echo(json.dumps({"source": source, "lines": [t.to_dict() for t in texts], "problems": problems},
                              indent=2, ensure_ascii=False))
        return
    for problem in problems:
        click.secho(f"! {problem}", fg="yellow", err=True)
    if not texts:
        click.echo("(no text found)")
    for text in texts:
        click.echo(f"{text.text}  " + click.style(f"({text.confidence:.2f})", fg="bright_black"))


@image.command("tools")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each tool's name, family, model and options.")
def tools_command(as_json):
    """List the image tools: those the image_tools setting names, and any plugin's."""
    from .config import Config
    from .images import image_tools, takes_mask

    problems: list[str] = []
    tools = image_tools(Config.load(), problems)
    described = [{"name": name, "family": getattr(tool, "family", ""), "model": str(getattr(tool, "model", "") or ""),
                  "description": getattr(tool, "description", ""), "takes_mask": takes_mask(tool),
                  "options": dict(getattr(tool, "options", None) or {})} for name, tool in sorted(tools.items())]
    if as_json:
        click.echo(json.dumps({"tools": described, "problems": problems}, indent=2, ensure_ascii=False))
        return
    for problem in problems:
        click.secho(f"! {problem}", fg="yellow", err=True)
    if not described:
        click.echo("(no image tools: add 'name=family:/path/model.onnx' entries to the image_tools setting; "
                   "see docs/image-tools.md)")
    for tool in described:
        click.echo(f"{tool['name']}  " + click.style(tool["family"], fg="cyan") + f"  {tool['model']}")
        click.echo(f"    {tool['description']}")
        if tool["options"]:
            click.echo("    options: " + ", ".join(f"{key}={value}" for key, value in tool["options"].items()))


@image.command("run")
@click.argument("tool")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the result (a PNG).")
@click.option("--mask", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="For inpainting: an image of the same size, white where FILE is to be filled in.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A tool option, e.g. --option tile=128 (repeatable; `image tools` lists them).")
def run_command(tool, file, out, mask, options):
    """Run the image tool TOOL on the image FILE and write the result to OUTPUT as a PNG."""
    from .config import Config
    from .errors import ImageError, LocalsearchError
    from .images import run_tool

    if out.resolve() in {file.resolve(), mask.resolve() if mask else None}:
        raise click.ClickException(f"{out} is an input of this run; write the result somewhere else")
    chosen = {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or not key.strip():
            raise click.ClickException(f"--option {option!r} is not KEY=VALUE")
        chosen[key.strip()] = value.strip()
    try:
        result = run_tool(tool, file.read_bytes(), Config.load(), mask=mask.read_bytes() if mask else None,
                          options=chosen)
    except ImageError as error:
        raise click.ClickException(f"{file}: {error}") from None
    except LocalsearchError as error:
        raise click.ClickException(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(result)
    click.echo(f"wrote {out}")

