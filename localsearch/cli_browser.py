"""The commands that connect the browser extension: install-host, uninstall-host, doctor, and
the native-messaging host itself."""

from __future__ import annotations

import json
import os
import sys

import click

from .cli import cli


@cli.command("install-host")
@click.option("--browser", "browsers", multiple=True, metavar="NAME",
              help="chrome, chromium, edge, brave, vivaldi or firefox (repeatable; default: every one found).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def install_host_command(browsers, as_json):
    """Let the browser extension reach localsearch: register the native-messaging host."""
    from .hostinstall import install_host

    written = install_host(list(browsers) or None)
    if as_json:
        click.echo(json.dumps(written, indent=2))
        return
    for entry in written:
        click.echo(f"{entry['browser']}: {entry['manifest']}")


@cli.command("uninstall-host")
def uninstall_host_command():
    """Remove what `localsearch install-host` wrote."""
    from .hostinstall import uninstall_host

    removed = uninstall_host()
    for path in removed:
        click.echo(f"removed {path}")
    if not removed:
        click.echo("nothing to remove: the host is not installed")


@cli.command()
@click.option("--offline", is_flag=True, help="Do not check the search engines (no network).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(offline, as_json):
    """Say what is wrong, and what to do: browsers and the host, models, server, data, engines."""
    from .config import Config
    from .doctor import as_json as checks_json
    from .doctor import diagnose

    checks = diagnose(Config.load(), offline=offline)
    if as_json:
        click.echo(json.dumps(checks_json(checks), indent=2))
    else:
        for check in checks:
            mark = {True: click.style("ok ", fg="green"), False: click.style("!! ", fg="red"), None: "-- "}[check.ok]
            click.echo(f"{mark}{check.name}: {check.detail}")
            if check.fix:
                click.echo(f"     fix: {check.fix}")
    sys.exit(1 if any(check.ok is False for check in checks) else 0)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("caller", nargs=-1, type=click.UNPROCESSED)
def host(caller):
    """The native-messaging host the browser extension starts (not for use by hand).

    CALLER is what the browser passes: Chromium the extension's origin, Firefox the host
    manifest's path and the add-on's id."""
    from .host import run_host

    # Frames are the only thing stdout may carry: keep it for them, and send whatever else
    # would be printed (a plugin's stray print, a library's warning) to stderr. Started by
    # the `localsearch` script or `python -m localsearch` (the launcher), that was done
    # before any import (localsearch/__main__.py); here only when the CLI is called otherwise.
    kept = os.environ.pop("_LOCALSEARCH_HOST_FRAMES_FD", None)
    if kept is None:
        kept = str(os.dup(sys.stdout.fileno()))
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(run_host(list(caller), sys.stdin.buffer, os.fdopen(int(kept), "wb")))
