"""``localsearch image``: the image plugins from the command line (``image ocr``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli import cli


@cli.group()
def image():
    """Read the text in images."""


@image.command("ocr")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each line's text, box and confidence.")
def ocr_command(file, as_json):
    """Print the text in the image FILE, a line at a time, with its confidence."""
    from .config import Config
    from .errors import ImageError
    from .images import read_text

    try:
        texts, problems = read_text(file.read_bytes(), Config.load(), url=file.resolve().as_uri())
    except ImageError as error:
        raise click.ClickException(f"{file}: {error}") from None
    if as_json:
        click.echo(json.dumps({"file": str(file), "lines": [t.to_dict() for t in texts], "problems": problems},
                              indent=2, ensure_ascii=False))
        return
    for problem in problems:
        click.secho(f"! {problem}", fg="yellow", err=True)
    if not texts:
        click.echo("(no text found)")
    for text in texts:
        click.echo(f"{text.text}  " + click.style(f"({text.confidence:.2f})", fg="bright_black"))
