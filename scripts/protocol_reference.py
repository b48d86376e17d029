"""Rewrite the generated part of docs/protocol.md from localsearch/protocol.py.

    .venv/bin/python scripts/protocol_reference.py          # update the file
    .venv/bin/python scripts/protocol_reference.py --check  # exit 1 if it is out of date

Everything outside the markers is kept as written.
"""

import sys
from pathlib import Path

from localsearch import protocol

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BEGIN, END = "<!-- generated from localsearch/protocol.py -->", "<!-- end of generated part -->"
JSON = {str: "string", bool: "boolean", int: "integer", list: "list", dict: "object"}


def _table(fields: dict) -> str:
    if not fields:
        return "No fields.\n"
    rows = ["| field | type | required | at most | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in fields.items():
        limit = f"{field.limit:,}" if field.limit is not None else ""
        rows.append(f"| `{name}` | {JSON[field.kind]} | {'yes' if field.required else 'no'} | {limit} | {field.help} |")
    return "\n".join(rows) + "\n"


def generated() -> str:
    parts = [f"Protocol version: **{protocol.PROTOCOL_VERSION}**\n",
             "### Every request\n", _table(protocol.COMMON)]
    for kind, fields in protocol.REQUESTS.items():
        parts += [f"### `{kind}`\n", _table(fields)]
    parts += ["### The `page` of an `ask_page` request\n", _table(protocol.PAGE_FIELDS),
              "### Messages back\n",
              "\n".join(f"- `{kind}`: {text}" for kind, text in protocol.MESSAGES.items()) + "\n",
              "### Settings a request may change\n",
              "- from the browser: " + ", ".join(f"`{n}`" + (f" (at most {protocol.BROWSER_LIMITS[n]:g})"
                                                       if n in protocol.BROWSER_LIMITS else "")
                                                       for n in protocol.BROWSER_SETTINGS) + "\n"
              "- from the command line: any setting except " + ", ".join(f"`{n}`" for n in protocol.SERVER_SETTINGS)
              + "\n"]
    return "\n".join(parts)


def render(current: str) -> str:
    head, rest = current.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n\n{generated()}\n{END}{tail}"


if __name__ == "__main__":
    current = REFERENCE.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if current == wanted else 1)
    REFERENCE.write_text(wanted, encoding="utf-8")
