"""Every hook a localsearch plugin can implement.

Each docstring states how the hook is called:
- *firstresult*: implementations are tried in turn (last registered first, ``tryfirst`` /
  ``trylast`` adjust that) until one returns something other than ``None``; ``None`` means
  "not mine". The built-in plugins are ``trylast``, so any other plugin wins.
- *all*: every implementation is called; results are collected in a list.

Hooks are always called with keyword arguments, so an implementation may accept only the
arguments it needs, and specs can grow without breaking plugins.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("localsearch")
hookimpl = HookimplMarker("localsearch")

__all__ = ["hookspec", "hookimpl"]


@hookspec
def register_commands(cli):
    """Add click commands to the ``localsearch`` command group.

    Called once when the CLI starts, all implementations. ``cli`` is the click group.
    """


@hookspec
def register_settings(register):
    """Declare settings this plugin reads from the config file, environment and flags.

    Called once when the configuration is built, all implementations. Call
    ``register(name, default, help)`` per setting; the default's type (str, int, float, bool,
    list of str) is the type values are parsed to. Names are global, so prefix them with the
    plugin's name when they are not obviously its own.
    """


@hookspec
def register_search_engines(register):
    """Offer search engines.

    Called once per pipeline, all implementations, one plugin at a time (one that raises is
    reported and costs only its own engines). Call ``register(engine)`` per engine: an object
    with a ``name`` (str, what ``--engine`` selects) and
    ``search(query, limit, context) -> list[SearchResult]``. ``context`` has ``config`` (the
    question's settings), ``embed(texts, kind)`` and ``query(vector, k)`` (the nearest stored
    passages); it goes dead (its calls raise ``Cancelled``) when the engine's time is up. The
    pipeline runs the selected engines concurrently on a bounded pool of threads, each under
    the ``search_timeout`` setting; an engine that raises or times out is reported in the
    search results and the others still answer. An engine named like a built-in one replaces
    it; of two other plugins' engines with one name, the first registered is used. An engine
    may say more about itself: ``endpoint(config) -> str``, the address its queries go to
    (listed in the question's ``requests``), and ``network = False`` for one that sends
    nothing out (the local index).
    """


@hookspec
def filter_results(results, question, config):
    """Choose among the search results before any page is read (block or allow domains,
    drop content farms, reorder).

    All implementations, one after another, in pluggy's order: each gets the ``SearchResult``
    list the previous one kept and returns the results to keep (a list of some of them, in
    the order wanted) or ``None`` to keep them as they are. A result it did not receive is
    ignored, so a filter can drop or reorder but never add a URL; one that raises is skipped
    with a warning and the results stay as they were.
    """


@hookspec(firstresult=True)
def plan_queries(question, conversation, config):
    """Turn a question (and earlier turns) into the search queries to run.

    firstresult. Return a list of query strings; ``None`` leaves it to the next
    implementation. With no implementation the question itself is the one query.
    ``conversation`` is a list of ``{"question", "answer"}`` dicts, oldest first; a turn
    the model answered also has ``"messages"`` (its prompt) and ``"reply"`` (its raw text).
    """


@hookspec(firstresult=True)
def fetch_page(url, config):
    """Fetch one URL.

    firstresult, with awaitables resolved: return a ``Page`` (status ``ok`` with decoded HTML,
    or a failure status with a reason), an awaitable resolving to one (an ``async def``
    implementation), or ``None`` if this plugin does not handle the URL; an awaitable that
    resolves to ``None`` declines too, and the next implementation is asked. Called
    concurrently for the pages of a question, ``fetch_concurrency`` at a time: an ``async def``
    implementation runs on the pipeline's event loop, any other on a worker thread, so a
    blocking implementation is fine. The URL has passed the URL policy (``allowed_hosts``);
    a fetcher that follows redirects or loads more must check each further URL with
    ``localsearch.urlpolicy``. Must not raise for anything a web page can do: report it in
    the Page's status. Wrappers (``wrapper=True``) are not applied to this hook.
    """


@hookspec(firstresult=True)
def extract_document(page, config):
    """Turn a fetched ``Page`` into a ``Document`` (main text, title, date, URL).

    firstresult. ``None`` means this plugin cannot extract this page; if no implementation
    can, the page is skipped and reported with status ``no content``. An extractor that knows
    the page's structure lists it in ``Document.blocks`` (``Block(start, end, kind,
    section)``: headings, paragraphs, list items, definition terms and descriptions, table
    rows, code), which the built-in chunker follows; without blocks, text is chunked by lines.
    """


@hookspec(firstresult=True)
def chunk_document(document, config):
    """Split a ``Document`` into ``Passage`` objects.

    firstresult. Every passage must satisfy ``document.text[p.start:p.end] == p.text`` so a
    citation can point at the exact span. A passage's ``section`` (its heading path) is used
    in retrieval and shown with citations; its ``kind`` (``text``, ``definition``, ``row``,
    ``code``) decides how it is split into answer units (code is never split into sentences).
    """


@hookspec(firstresult=True)
def embedder(config):
    """Return the text embedder to use.

    firstresult, called once per pipeline. The object has ``name`` (str; vectors of different
    embedders are stored apart) and ``embed(texts, kind) -> list[list[float]]`` where ``kind``
    is ``"passage"`` or ``"query"``; vectors should be L2-normalised.
    """


@hookspec(firstresult=True)
def vector_store(config, embedder_name):
    """Return the vector store and page cache to use.

    firstresult, called once per pipeline. See ``localsearch.store.Store`` for the methods
    the object must have.
    """


@hookspec(firstresult=True)
def chat_model(config):
    """Return the language model that writes answers, or ``None`` for none.

    firstresult, called once per pipeline, when the LLM is wanted. The object has ``name`` and
    ``stream(messages, max_tokens, temperature) -> iterator of str`` (text deltas of a chat
    completion; an empty string while it waits, e.g. for another question's generation, lets
    the pipeline notice a cancel), optionally ``close()`` (free it: the pipeline keeps at most
    ``loaded_models`` models and closes the least recently used), and optionally ``last_usage`` (``{"prompt_tokens", "completion_tokens"}`` of
    the last stream, reported in the answer stage's timings). If no implementation returns a
    model, or the model fails, the extractive answer is the answer.
    """


@hookspec(firstresult=True)
def build_prompt(question, sources, passages, conversation, config):
    """Build the chat messages for the language model.

    firstresult. ``sources`` are the numbered ``Source`` objects, ``passages`` the selected
    ``Passage`` objects (best first). Return a list of ``{"role", "content"}`` dicts, or
    ``None`` for the built-in prompt. For a follow-up, the built-in prompt starts with the
    last turn's ``messages`` and ``reply`` unchanged, so that a model that keeps its KV cache
    (llama.cpp) evaluates only the new part; a plugin that wants that must do the same.
    """


@hookspec
def process_answer(answer, passages, config):
    """Post-process a finished ``Answer`` in place (e.g. flag claims, add citations).

    Called once per answer, all implementations, after the built-in citation check. A
    citation whose URL is not one of the answer's sources is dropped afterwards whatever a
    plugin does, so no plugin can put an unfetched URL into an answer.
    """


@hookspec
def image_text(image, url, alt, page_url, config):
    """Read the text an image holds (OCR), or say what it shows (a caption).

    All implementations; each returns a list of ``ImageText`` (``text``, ``box`` as four
    ``[x, y]`` corners in the image's pixels, ``confidence`` from 0 to 1, ``kind`` such as
    ``"ocr"`` or ``"caption"``), or ``None`` when it has nothing to say. ``image`` is the
    image's bytes as fetched, ``url`` where it came from, ``alt`` its alt text and
    ``page_url`` the page it is on ("" for a file the user named). An implementation that
    cannot read the image raises ``localsearch.errors.ImageError`` with the reason (a corrupt
    file, an SVG, one too large); one that raises anything else is reported and the others'
    text still counts.
    """


@hookspec
def register_image_tools(register, config):
    """Offer image tools: image in, image out (upscaling, erasing, restoring, removing a background).

    Called each time the tools are listed or one is run, all implementations, one plugin at a
    time (one that raises is reported and costs only its own tools). Call ``register(tool)``
    per tool: an object with ``name`` (str, what ``localsearch image run`` selects), ``family``
    (``super-resolution``, ``inpainting``, ``restoration``, ``background-removal`` or a
    plugin's own), ``description``, ``options`` (``{name: default}``) and
    ``run(image, mask, options) -> bytes``: ``image`` and ``mask`` (``None`` unless the family
    takes one) are the files' bytes, the result is a PNG. ``run`` raises
    ``localsearch.errors.ImageError`` for an image it cannot take and ``PluginError`` for a
    model that does not fit its family. Of two tools with one name, the first registered is used.
    """


@hookspec(firstresult=True)
def fetch_image(url, config, limit):
    """Fetch one image a page shows, for ``image_text``.

    firstresult, with awaitables resolved, called like ``fetch_page`` (an ``async def``
    implementation on the pipeline's event loop, any other on a worker thread). Return an
    ``ImageFile`` (status ``ok`` with the bytes as sent, at most ``limit`` of them, or a failure
    status with a reason), or ``None`` if this plugin does not fetch this URL. The URL has
    passed the URL policy; every redirect must be checked with ``localsearch.urlpolicy`` too.
    Must not raise for anything a server can do.
    """
