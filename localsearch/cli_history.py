"""``localsearch history``: list, show and delete the conversations the history keeps."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from .cli import _print_answer, _print_sources, cli

SHORT_ID = 8  # letters of an id shown in the list; any unique start of an id names its conversation


def _history():
    from .config import Config
    from .history import History

    config = Config.load()
    return History(config.data_dir), config


@cli.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Most conversations to list.")
@click.option("--search", "query", metavar="TEXT", help="Only conversations whose questions or answers contain TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def history(ctx, limit, query, as_json):
    """Past conversations, newest first: `history show ID`, `history delete ID`."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_conversations, limit=limit, query=query, as_json=as_json)


@history.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Most conversations to list.")
@click.option("--search", "query", metavar="TEXT", help="Only conversations whose questions or answers contain TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_conversations(limit, query, as_json):
    """List past conversations, newest first."""
    store, config = _history()
    conversations, total = store.conversations(limit=limit, query=query or "")
    if as_json:
        click.echo(json.dumps({"conversations": conversations, "total": total, "enabled": config.history}, indent=2))
        return
    if not config.history:
        click.secho("The history is off (setting history = false): new questions are not kept.", fg="yellow")
    if not conversations:
        click.echo("No conversations match." if query else "No conversations yet.")
        return
    for c in conversations:
        turns = f"{c['turns']} turn{'s' if c['turns'] != 1 else ''}"
        click.echo(f"{click.style(c['id'][:SHORT_ID], fg='yellow')}  {_when(c['updated'])}  {c['client']:<7}  "
                   f"{turns:>8}  {c['title']}")
    if total > len(conversations):
        click.secho(f"({total - len(conversations)} older not shown: --limit {min(500, total)})", fg="bright_black")


@history.command()
@click.argument("conversation", required=False, metavar="[ID]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(conversation, as_json):
    """Show a conversation (default: the last one) with its answers, citations and sources."""
    store, _ = _history()
    id = store.resolve(conversation) if conversation else store.last()
    if id is None:  # as `history` says it: nothing is wrong
        click.echo("No conversations yet.")
        return
    kept = store.conversation(id)
    if as_json:
        click.echo(json.dumps(kept, indent=2, ensure_ascii=False))
        return
    click.secho(f"Conversation {kept['id']} ({kept['client']}, begun {_when(kept['created'])})", bold=True)
    for turn in kept["turns"]:
        answer = turn["answer"]
        click.secho(f"\n{turn['position']}. {turn['question']}", bold=True)
        click.secho(f"   {_when(turn['created'])}, {'extractive' if answer.get('extractive') else answer.get('model')}",
                    fg="bright_black")
        click.echo(answer.get("answer") or "(nothing in the sources answered this)")
        _print_answer(answer)
        _print_sources(answer.get("sources") or [])
    click.secho(f"\nContinue it: localsearch ask --conversation {kept['id'][:SHORT_ID]} \"...\"", fg="bright_black")


@history.command()
@click.argument("conversations", nargs=-1, metavar="[ID]...")
@click.option("--all", "everything", is_flag=True, help="Delete every conversation.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting everything.")
def delete(conversations, everything, yes):
    """Delete conversations (or --all); their text is overwritten on disk."""
    if bool(conversations) == everything:
        raise click.UsageError("name the conversations to delete, or give --all")
    store, _ = _history()
    if everything:
        _, total = store.conversations(limit=1)
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("--all deletes every conversation: add --yes to confirm")
            click.confirm(f"Delete all {total} conversations?", abort=True)
        deleted = store.delete(None)
    else:
        deleted = store.delete([store.resolve(given) for given in conversations])
    click.echo(f"deleted {deleted} conversation{'s' if deleted != 1 else ''}")


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
