"""The short answer: the shortest text of a source that answers the question, read first.

It is taken verbatim from the sentence the extractive answer quotes (or, for "which module
...", from a heading that sentence sits under, or its page's title): a number with its unit, a date, a name, a
default value, a command, a module, or for "what is / why / how" one clause. Nothing is
written that a source does not say.
"""

from __future__ import annotations

import re

from .question import Question, terms_of
from .text import STOPWORDS, code_terms, keywords, without_anchor_marks

__all__ = ["short_answer"]

MAX_CLAUSE_WORDS = 30  # a longer sentence is cut at its first ";" or dash for the short answer
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?")
_DATE = re.compile(rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}(?:,?\s+\d{{3,4}})?|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?"
                   rf"(?:,\s*\d{{3,4}})?|{_MONTH}\s+\d{{3,4}})\b")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,:]\d+)*(?:\s?%|[A-Za-z]{1,3}\b)?")
# "between 250 and 1600", "172.16.x.x — 172.31.x.x", "1 to 5": a range is one answer.
_RANGE = re.compile(r"\b(?:between\s+)?\d[\w.,:]*\s*(?:and|to|through|[-–—])\s*\d[\w.,:]*\b", re.I)
_NUMBER_WORD = re.compile(r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
                          r"thirty|forty|fifty|sixty|hundred|thousand|million|billion|dozen|half|twice)"
                          r"(?:[- ](?:one|two|three|four|five|six|seven|eight|nine|hundred|thousand|million))*\b",
                          re.I)
# Words that follow a number as its unit ("128 megabytes", "30 seconds", "8 kB", "5432/tcp").
_UNIT = re.compile(r"(?:\s?(?:/\w+|[A-Za-z]{1,12}(?:/[A-Za-z]+)?))")
# "The default is X", "defaults to X", "(default: X)", "Default: X", "X by default".
_DEFAULT = re.compile(
    r"\bdefaults?(?:\s+value)?(?:\s+(?:setting|is|was|are|of\s+[^\s,;.]+(?:\s+[^\s,;.]+)?\s+is))?"
    r"(?:\s+(?:is|to|at|=))?\s*[:=]?\s+(?P<value>`[^`]+`|\"[^\"]+\"|'[^']+'|[^\s,;()|]+(?:\s+[^\s,;()|]+){0,3})",
    re.I)
_BY_DEFAULT = re.compile(r"(?P<value>`[^`]+`|[^\s,;()]+(?:\s?%|\s+[A-Za-z]{1,12})?)\s+(?:is used\s+)?by default\b",
                         re.I)
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:(?:de|da|del|der|van|von|la|le|of|the|and|&)\s+)*[A-Z][\w'’.-]*)*")
# "Which values ...", "which port ...": a number or a range is the answer.
_NUMBER_NOUNS = {"value", "values", "port", "ports", "level", "levels", "range", "ranges", "size", "sizes"}
_CLAUSE_END = re.compile(r"\s*(?:;|\s[—–]\s|\s--\s)")
_TRAILING = " .,;:)(\"'`”’"


def short_answer(question: Question, text: str, section: str = "", title: str = "") -> str:
    """The shortest part of ``text`` (a source sentence, verbatim) that answers ``question``;
    for "which ..." questions possibly a technical name in ``section`` (its heading path) or
    ``title``; "" if no part of it does."""
    text = text.strip()
    if not text:
        return ""
    if question.default:
        value = _default_value(question, text)
        if value and (question.kind != "number" or re.search(r"\d", value)):
            return value
    if question.kind == "number" or question.noun in _NUMBER_NOUNS:
        found = _number(question, text)
        if found or question.kind == "number":
            return found
    if question.kind == "name":
        return _name(question, text) or _clause(text)
    if question.kind == "which":
        return _which(question, text, section, title) or _clause(text)
    if question.kind == "how" and question.wants_code:
        code = [term for term in re.findall(r"`([^`\n]+)`", text) if not _in_question(question, term)]
        if len(code) == 1:  # the one command or option the sentence gives
            return code[0]
    return _clause(text)


def _in_question(question: Question, fragment: str) -> bool:
    """Whether ``fragment`` says nothing the question does not already say."""
    return terms_of(fragment) <= terms_of(question.text)


def _nearest(question: Question, text: str, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The span of ``spans`` closest to where the question's words stand in ``text``."""
    if not spans:
        return None
    places = [m.start() for m in re.finditer(r"\w+", text) if keywords(m.group()) & question.terms]
    if not places:
        return spans[0]
    return min(spans, key=lambda span: min(abs(span[0] - place) for place in places))


def _number(question: Question, text: str) -> str:
    """A date, or a number with its unit, that the question does not already hold."""
    spans = [m.span() for m in _DATE.finditer(text) if not _in_question(question, m.group())] or \
        [m.span() for m in _RANGE.finditer(text) if not _in_question(question, m.group())]
    if not spans:
        for match in list(_NUMBER.finditer(text)) + list(_NUMBER_WORD.finditer(text)):
            if _in_question(question, match.group()):
                continue
            end = match.end()
            unit = _UNIT.match(text, end)
            word = unit.group().strip() if unit else ""
            # "100 connections", "30 seconds", "8 MB"; not "1799 French" nor "5432 by"
            if word and word.lower() not in STOPWORDS and (word.islower() or len(word) <= 3):
                end = unit.end()
            spans.append((match.start(), end))
    span = _nearest(question, text, spans)
    return text[span[0]:span[1]].strip(_TRAILING) if span else ""


def _name(question: Question, text: str) -> str:
    """A name (capitalised words) that the question does not already hold, not the sentence's
    first word alone."""
    spans = []
    for match in _NAME.finditer(text):
        name = match.group().rstrip(".")
        words = [w for w in name.split() if w.lower() not in STOPWORDS]
        if not words or _in_question(question, name) or (match.start() == 0 and len(name.split()) == 1):
            continue
        spans.append((match.start(), match.start() + len(name)))
    span = _nearest(question, text, spans)
    return text[span[0]:span[1]] if span else ""


def _which(question: Question, text: str, section: str, title: str) -> str:
    """For "which module / directive / option ...": the one technical name of the sentence the
    question does not hold, else the one of the headings it sits under (innermost first: "Apache
    Module mod_remoteip › Summary" answers with mod_remoteip), else of the page's title."""
    names = [name for name in code_terms(text) if not _in_question(question, name)]
    if len(names) == 1:
        return names[0]
    headings = [without_anchor_marks(part) for part in reversed(section.split(" › "))] if section else []
    for heading in headings + [title]:
        named = [name for name in code_terms(heading) if not _in_question(question, name)]
        if named:
            return named[0]
    return names[0] if names else ""


def _default_value(question: Question, text: str) -> str:
    """The value a sentence or row gives as the default."""
    for pattern in (_DEFAULT, _BY_DEFAULT):
        for match in pattern.finditer(text):
            value = match.group("value").strip(_TRAILING + "-–")
            words = value.split()
            for i, word in enumerate(words):
                if word[-1:] in ".:" and i < len(words) - 1:  # "defaults to 30 days. The value ...": it ends there
                    words = words[:i + 1]
                    break
            if words:
                words[-1] = words[-1].rstrip(".:")
            while len(words) > 1 and _in_question(question, words[0]):
                words.pop(0)  # "Default: KeepAliveTimeout 5": the setting asked about is not its value
            value = " ".join(words)
            # "The default value is the value of max_connections" is a value too, but not
            # "defaults to" followed by a stop word alone.
            if value and value.lower() not in STOPWORDS and not _in_question(question, value):
                # A value: a number, code, a quoted string or a word or two; not "the behaviour
                # provided by", which is where a sentence goes on.
                if re.search(r"[\d`\"']", value) or len(value.split()) <= 2:
                    return value
    return ""


def _clause(text: str) -> str:
    """``text`` itself, or its first clause when it is long."""
    clean = without_anchor_marks(text).strip()
    if len(clean.split()) > MAX_CLAUSE_WORDS:
        cut = _CLAUSE_END.search(clean)
        if cut and len(clean[:cut.start()].split()) >= 5:
            return clean[:cut.start()].strip(_TRAILING)
    return clean.rstrip(".").strip()
