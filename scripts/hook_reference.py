"""Rewrite the hook sections of docs/plugin-hooks.md from localsearch/hookspecs.py.

    .venv/bin/python scripts/hook_reference.py          # update the file
    .venv/bin/python scripts/hook_reference.py --check  # exit 1 if it is out of date

The text before the first hook and from "## Data types" on is kept as written.
"""

import inspect
import sys
from pathlib import Path

from localsearch import hookspecs

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "plugin-hooks.md"
TAIL = "## Data types"


def hook_sections() -> str:
    specs = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "localsearch_spec")]
    sections = []
    for spec in sorted(specs, key=lambda f: f.__code__.co_firstlineno):
        kind = "firstresult" if spec.localsearch_spec.get("firstresult") else "all"
        arguments = ", ".join(inspect.signature(spec).parameters)
        sections.append(f"## {spec.__name__}({arguments})\n\nCall behaviour: **{kind}**.\n\n"
                        f"{inspect.cleandoc(spec.__doc__)}\n")
    return "\n".join(sections)


def render(current: str) -> str:
    head = current.split("\n## ", 1)[0].rstrip() + "\n\n"
    tail = TAIL + current.split(TAIL, 1)[1]
    return head + hook_sections() + "\n" + tail


if __name__ == "__main__":
    current = REFERENCE.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if current == wanted else 1)
    REFERENCE.write_text(wanted, encoding="utf-8")
