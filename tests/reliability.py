"""What the reliability tests tried, for docs/reliability.md (``scripts/reliability_report.py``).

A test marked ``@pytest.mark.reliability`` takes the ``reliability`` fixture and records each
thing it tried, with the bound it held and what it measured:

    reliability.record("Hostile content", "a gzip bomb: 20 KB that unpacks to 20 MB",
                       outcome="status 'too large'; the question answered from the other pages",
                       bound="≤ 5 s", measured=f"{seconds:.2f} s", lost="nothing")

Records are kept only when the test passes, and only when ``LOCALSEARCH_RELIABILITY_OUT`` names a
file to append them to (the report's run sets it); otherwise recording costs nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

__all__ = ["CATEGORIES", "Entry", "Recorder"]

# The report's sections, in order.
CATEGORIES = ("Prompt injection", "Hostile content", "Faults", "Load", "Host boundary")


@dataclass
class Entry:
    category: str
    tried: str
    outcome: str
    bound: str = ""
    measured: str = ""
    lost: str = "nothing"
    test: str = ""  # the pytest node id, filled in by the fixture


@dataclass
class Recorder:
    test: str
    entries: list[Entry] = field(default_factory=list)

    def record(self, category: str, tried: str, *, outcome: str, bound: str = "", measured: str = "",
               lost: str = "nothing") -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown reliability category {category!r}; one of {CATEGORIES}")
        self.entries.append(Entry(category, tried, outcome, bound, measured, lost, self.test))

    def flush(self) -> None:
        out = os.environ.get("LOCALSEARCH_RELIABILITY_OUT")
        if not out or not self.entries:
            return
        with open(out, "a", encoding="utf-8") as file:
            for entry in self.entries:
                file.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
