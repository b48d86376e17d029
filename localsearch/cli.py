"""The ``localsearch`` command line: a renderer of the pipeline's event stream."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path

import click

from .errors import LocalsearchError
from .plugins import load_plugins

__all__ = ["cli"]


class _Group(click.Group):
    """Turns a LocalsearchError into a one-line reason and exit code 1 (traceback with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LocalsearchError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="localsearch")
@click.option("--debug", is_flag=True, help="Show tracebacks and plugin errors in full.")
@click.pass_context
def cli(ctx, debug):
    """localsearch: a private, local AI answer engine for the web.

    Ask a question; pages are searched, read and indexed on this machine, and a local model
    writes an answer that cites its sources.
    """
    from .private import private_umask

    private_umask()  # the index, the page cache and the history are the user's alone
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or bool(os.environ.get("LOCALSEARCH_DEBUG"))


def run_request(kind: str, settings: dict | None = None, **fields):
    """(config, events) of one request of this user's, answered by a running
    ``localsearch serve`` or in this process (see ``localsearch.session.stream``)."""
    from .config import Config
    from .session import events_of, stream

    config = Config.load()
    for warning in config.warnings:
        if warning not in _warned:  # a command that asks many questions (eval) says it once
            _warned.add(warning)
            click.secho(f"Warning: {warning}", fg="yellow", err=True)
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    request = {"id": f"cli-{os.getpid()}-{next(_ids)}", "type": kind, **fields}
    if settings:
        request["settings"] = settings
    return config.replace(**settings) if settings else config, events_of(stream(request, config, client="cli"))


_ids = itertools.count(1)
_warned: set[str] = set()


def retrieval_options(function):
    """The options of every command that searches: --engine, --searxng-url, --max-pages,
    --top-k, --offline (a plugin's command may take them too)."""
    options = [
        click.option("--engine", "engines", multiple=True, help="Search engine to use (repeatable)."),
        click.option("--searxng-url", help="SearXNG instance to search (implies --engine searxng)."),
        click.option("--max-pages", type=click.IntRange(1, 50), help="Search results to fetch and read."),
        click.option("--top-k", type=click.IntRange(1, 100), help="Passages the answer is built from."),
        click.option("--offline", is_flag=True, default=None, help="Answer from the local index only."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def retrieval_settings(engines, searxng_url, max_pages, top_k, offline, **extra) -> dict:
    """The settings the retrieval options ask for (None: leave the configured value)."""
    if searxng_url and not engines:
        engines = ("searxng", "local")
    return {"engines": list(engines) or None, "searxng_url": searxng_url, "max_pages": max_pages,
            "top_k": top_k, "offline": offline, **extra}


def _progress(event, show):
    """A line per finished stage and per page that could not be read; on a terminal, the
    running stage is shown until it ends."""
    if not show:
        return
    live = sys.stderr.isatty()
    data, line, colour = event.data, None, "yellow"
    if event.type == "stage_start":
        if live and data["stage"] != "answer":  # the answer itself streams on stdout
            click.secho(f"\r  {data['stage']:<9}   ...", nl=False, err=True, fg="bright_black")
        return
    if event.type == "stage_end":
        detail = ", ".join(f"{k} {v}" for k, v in data.items() if k not in ("stage", "seconds")
                           and isinstance(v, (int, float, str)))
        line, colour = f"  {data['stage']:<9} {data['seconds']:6.2f}s  {detail}", "bright_black"
    elif event.type == "page" and data["status"] not in ("ok", "cached"):
        line = f"  ! {data['url']}: {data['status']} {data.get('reason', '')}".rstrip()
    elif event.type == "page" and any(i["status"] not in ("ok", "skipped", "no text") for i in data.get("images", [])):
        line = "\n".join(f"  ! image {i['url']}: {i['status']} {i.get('reason', '')}".rstrip()
                         for i in data["images"] if i["status"] not in ("ok", "skipped", "no text"))
    elif event.type == "warning":
        line = f"  ! {data['message']}"
    if line:
        click.secho(("\r\033[K" if live else "") + line, fg=colour, err=True)


NOTHING_ANSWERS = "Nothing in the pages read answers this question."


def _print_answer_text(answer):
    """The short answer first, in bold, then the sentences that support it."""
    short = answer.get("short_answer")
    if short:
        click.secho(f"{short['text']} [{short['n']}]", bold=True)
    click.echo(answer["answer"] or NOTHING_ANSWERS)


def _print_answer(answer):
    for citation in answer["citations"]:
        quote = citation["quote"] if len(citation["quote"]) < 160 else citation["quote"][:157] + "..."
        where = f" ({citation['section']})" if citation.get("section") else ""
        if citation.get("image"):
            where += f"\n      read in the image {citation['image']}"
        if citation["supported"]:
            click.echo(f"  [{citation['n']}] {click.style('✓', fg='green')} “{quote}”{where}")
        else:
            click.echo(f"  [{citation['n']}] {click.style('✗ unsupported', fg='red')}: {citation['sentence']}"
                       f"\n      ({citation['reason']})")
    shown = {c["sentence"] for c in answer["citations"] if not c["supported"]}
    for sentence in answer["unsupported"]:
        if sentence not in shown:
            click.echo(click.style("  ✗ no source supports: ", fg="red") + sentence)


def _print_sources(sources):
    click.echo("\nSources:")
    for source in sources:
        status = "" if source["status"] in ("ok", "cached") else click.style(f"  ({source['status']}: {source.get('reason', '')})", fg="yellow")
        click.echo(f"  [{source['n']}] {source['title'] or source['url']}\n      {source['url']}{status}")


def _print_requests(requests):
    click.echo(f"\nRequests sent ({len(requests)}):" if requests else "\nRequests sent: none")
    for entry in requests:
        what = f"{entry['engine']}: {entry['query']!r}" if entry["kind"] == "search" else ""
        where = " ".join(filter(None, [what, entry["url"]]))
        refused = click.style(f"  (refused: {entry['refused']})", fg="yellow") if entry.get("refused") else ""
        click.echo(f"  {entry['at']:6.2f}s  {entry['kind']:<11} {where}{refused}")


@cli.command()
@click.argument("question", nargs=-1, required=True)
@retrieval_options
@click.option("--model", "model_path", help="GGUF model file that writes the answer.")
@click.option("--no-llm", is_flag=True, help="Extractive answer only: the best source sentences, cited.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--continue", "-c", "--follow-up", "-f", "continue_last", is_flag=True,
              help="Continue the last conversation asked here (the model sees its last turns).")
@click.option("--conversation", "conversation", metavar="ID",
              help="Continue this conversation of `localsearch history` (an id, or its first letters).")
@click.option("--no-history", is_flag=True, help="Do not keep this question and its answer in the history.")
@click.option("--show-requests", is_flag=True,
              help="List every request the question sent out: search queries, pages and what they loaded, model calls.")
def ask(question, engines, searxng_url, max_pages, top_k, offline, model_path, no_llm, as_json, quiet,
        continue_last, conversation, no_history, show_requests):
    """Answer QUESTION from the web, with numbered citations."""
    from .events import fold_events

    question = " ".join(question).strip()
    if model_path and not Path(model_path).expanduser().is_file():
        raise click.BadParameter(f"no such file: {model_path}", param_hint="--model")
    settings = retrieval_settings(engines, searxng_url, max_pages, top_k, offline,
                                  model=str(Path(model_path).expanduser().absolute()) if model_path else None,
                                  llm=False if no_llm else None, history=False if no_history else None)
    conversation_id = _conversation_to_continue(continue_last, conversation)
    config, stream = run_request("ask", settings, question=question,
                                 **({"conversation_id": conversation_id} if conversation_id else {}))
    show = not quiet and not as_json
    draft = _Draft() if sys.stdout.isatty() and not as_json else None
    events, held, shown_extract = [], [], False
    for event in stream:
        events.append(event)
        if draft is not None and draft.rows and event.type != "answer":
            if event.type != "answer_delta":
                held.append(event)  # progress waits until the draft is replaced
                continue
        else:
            _progress(event, show)
        if as_json:
            continue
        if event.type == "extractive_answer" and event.data.get("model"):  # a model writes next
            click.secho("\nFrom the sources:", bold=True)
            _print_answer_text(event.data)
            shown_extract = True
        elif event.type == "answer_delta" and draft is not None:
            draft.write(event.data["text"])
        elif event.type == "answer":
            if draft is not None:
                draft.erase()
                for pending in held:
                    _progress(pending, show)
            answer = event.data
            if not (answer["extractive"] and shown_extract):
                click.secho("\nAnswer:", bold=True)
                _print_answer_text(answer)
            _print_answer(answer)
            _print_sources(answer["sources"])
    if draft is not None and draft.rows:  # ended without an answer (an error): drop the draft too
        draft.erase()
        for pending in held:
            _progress(pending, show)
    _warm_the_next_question(config)
    result = fold_events(events)
    result["question"] = question
    if show_requests and not as_json:
        _print_requests(result.get("requests", []))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    if "fatal" in result:
        if not as_json:
            click.echo(f"Error: {result['fatal']}", err=True)
        if click.get_current_context().obj.get("debug") and result.get("traceback"):
            click.echo(result["traceback"], err=True)
        sys.exit(1)


def _warm_the_next_question(config) -> None:
    """Start ``localsearch serve`` in the background if none runs (``start_server``): this
    question was answered in this process, the next one is answered warm. It starts only
    now, so that its loading does not compete with the answer for the CPU, and only for a
    person at a terminal: a script or a cron job that asks once is left no process behind."""
    from .server import connect, socket_path, start_in_background

    if not (config.use_server and config.start_server and sys.stdin.isatty() and sys.stderr.isatty()):
        return
    running = connect(socket_path(config))
    if running is not None:
        running.close()
        return
    try:
        start_in_background(config)
    except OSError as error:  # the answer is given; the next one is only slower
        click.secho(f"Warning: could not start localsearch serve in the background: {error}", fg="yellow", err=True)


def _conversation_to_continue(continue_last: bool, given: str | None) -> str | None:
    """The id of the conversation `ask --continue` or `ask --conversation ID` continues."""
    from .config import Config
    from .history import History

    if continue_last and given:
        raise click.UsageError("--continue and --conversation both name a conversation: give one")
    if not (continue_last or given):
        return None
    config = Config.load()
    if not config.history:
        raise click.UsageError("the history is off (setting history = false): there is no conversation to continue")
    history = History(config.data_dir)
    if given:
        return history.resolve(given)
    last = history.last(client="cli")
    if last is None:
        raise click.UsageError("--continue: no earlier conversation to continue (ask a question first)")
    return last


class _Draft:
    """The model's answer as it is written, on a terminal only; erased when the checked answer
    (markers verified, no invented URL) takes its place."""

    def __init__(self):
        self.width = max(20, shutil.get_terminal_size().columns)
        self.rows = 0
        self.column = 0

    def write(self, text: str) -> None:
        if not self.rows:
            click.secho("\nWriting (unchecked):", dim=True)
            self.rows = 2
        click.secho(text, nl=False, dim=True)
        for char in text:
            if char == "\n" or self.column + 1 >= self.width:
                self.rows, self.column = self.rows + 1, 0
            else:
                self.column += 1

    def erase(self) -> None:
        if self.rows:
            click.echo(f"\r\033[{self.rows}A\033[J", nl=False)
            self.rows = self.column = 0


@cli.command()
@click.argument("query", nargs=-1, required=True)
@retrieval_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def search(query, engines, searxng_url, max_pages, top_k, offline, as_json):
    """Find passages for QUERY (retrieval only, no language model)."""
    query = " ".join(query).strip()
    _, stream = run_request("search", retrieval_settings(engines, searxng_url, max_pages, top_k, offline), query=query)
    sources, passages, fatal = [], [], None
    for event in stream:
        _progress(event, not as_json)
        if event.type == "sources":
            sources, passages = event.data["sources"], event.data["passages"]
        elif event.type == "error":
            fatal = event.data["message"]
    if fatal:
        raise LocalsearchError(fatal)
    number = {s["url"]: s["n"] for s in sources}
    if as_json:
        click.echo(json.dumps({"query": query, "passages": [{**p, "n": number[p["url"]]} for p in passages],
                               "sources": sources}, indent=2, ensure_ascii=False))
        return
    for passage in passages:
        section = f" › {passage['section']}" if passage.get("section") else ""
        click.secho(f"\n[{number[passage['url']]}] {passage['score']:.3f}  {passage['title']}{section}", bold=True)
        click.echo(passage["text"])
    _print_sources(sources)


def _as_url(target: str) -> list[str]:
    """URLs as they are; local files and folders of .html files as file:// URLs."""
    if "://" in target:
        return [target]
    path = Path(target).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".html", ".htm"))
        if not files:
            raise LocalsearchError(f"no .html files in {target}")
        return [p.resolve().as_uri() for p in files]
    if path.is_file():
        return [path.resolve().as_uri()]
    raise LocalsearchError(f"{target} is neither a URL (with http:// or https://) nor an existing file")


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--refresh", is_flag=True, help="Fetch again even if the cached copy is fresh.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def index(targets, refresh, as_json):
    """Fetch and index URLs, HTML files or folders of them, for later questions."""
    urls = [url for target in targets for url in _as_url(target)]
    _, stream = run_request("index", urls=urls, refresh=refresh)
    pages, failed, passages = {}, 0, 0
    for event in stream:
        if event.type == "error":
            raise LocalsearchError(event.data["message"])
        if event.type == "done":
            pages, passages = event.data["pages"], event.data["passages"]
    for url in urls:
        status = pages.get(url, {"status": "error", "reason": "not processed"})
        failed += status["status"] not in ("ok", "cached")
        if not as_json:
            reason = f" ({status['reason']})" if status.get("reason") else ""
            click.echo(f"{status['status']:<10} {url}{reason}")
    if as_json:
        click.echo(json.dumps({"pages": pages, "passages": passages}, indent=2))
    else:
        click.echo(f"{len(urls) - failed} of {len(urls)} pages indexed; {passages} passages in the index")
    if failed == len(urls):
        sys.exit(1)


@cli.command()
@click.option("--idle-minutes", type=click.FloatRange(min=0), default=0,
              help="Stop after this many minutes without a client (0, the default: never).")
def serve(idle_minutes):
    """Keep the models loaded and answer every `localsearch ask` from this one warm process."""
    from .config import Config
    from .server import serve as run_server

    run_server(Config.load(), idle_minutes=idle_minutes)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json):
    """List installed plugins: version, hooks, settings, and what failed to load."""
    from .plugins import describe_plugins

    described = describe_plugins()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for plugin in described:
        package = f" ({plugin['package']} {plugin['version']})" if plugin.get("package") else ""
        click.echo(f"{plugin['name']}{package}")
        if plugin.get("error"):
            click.secho(f"    failed to load: {plugin['error']}", fg="red")
        for hook in plugin["hooks"]:
            click.echo(f"    {hook}")
        if plugin.get("settings"):
            click.secho(f"    settings: {', '.join(plugin['settings'])}", fg="bright_black")
        for problem in plugin.get("problems", []):
            click.secho(f"    problem: {problem}", fg="yellow")
        for note in plugin.get("notes", []):
            click.secho(f"    note: {note}", fg="bright_black")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config(as_json):
    """Show where the config file is and every effective setting."""
    from .config import Config, config_path

    loaded = Config.load()
    described = loaded.describe(reveal=False)  # a key on screen ends up in screenshots and bug reports
    if as_json:
        click.echo(json.dumps({"path": str(config_path()), "settings": described, "warnings": loaded.warnings},
                              indent=2))
        return
    for warning in loaded.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    path = config_path()
    click.echo(f"config file: {path}{'' if path.exists() else ' (not created yet)'}")
    click.echo("override any setting with LOCALSEARCH_<NAME> or in that file as `name = value`\n")
    for setting in described:
        origin = "" if setting["origin"] == "default" else f"   [{setting['origin']}]"
        click.echo(f"{setting['name']} = {json.dumps(setting['value'])}{origin}")
        click.secho(f"    {setting['help']}", fg="bright_black")


def _register_plugin_commands() -> None:
    from .plugins import register_commands

    for problem in register_commands(cli):  # a broken plugin costs its commands, not the CLI
        click.secho(f"Warning: {problem}", fg="yellow", err=True)


from . import cli_browser, cli_history, cli_image  # noqa: E402,F401  (their commands join the group)

load_plugins()
_register_plugin_commands()
