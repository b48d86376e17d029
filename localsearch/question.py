"""What a question asks, analysed once: its kind, its subject and the terms it asks for.

Retrieval, sentence selection, the extractive answer, the short answer and grounding all read
the same ``Question``; none of them parses the question's words again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .text import STOPWORDS, code_terms, keywords, stem

__all__ = ["Question", "analyse", "gives", "covers", "NUMBER", "NAME"]

NUMBER, NAME = "a number or date", "a name"  # what ``Question.asks`` holds; "" asks for anything

_TERM = re.compile(r"\d+(?:[.,]\d+)*|\w+")
# What a question asks for, by its opening words ("In what year", "For how many minutes", "Who").
# The question may open with a clause of its own: "By default, how many ...", "With X, how long ...".
_ASKS_NUMBER = re.compile(
    r"(?:^|[,;:?]\s+)(?:(?:in|on|at|for|by|from|since|until|after|before|to)\s+)?(?:when\b|(?:what|which)\s+"
    r"(?:year|date|day|month|decade|century|port|status\s+code|percentage|(?:\w+\s+){0,2}version)\b|"
    r"how\s+(?:many|much|long|often|far|old|big|high|tall|deep|heavy|fast|large|wide|short|early|late)\b)", re.I)
# "How long / tall / far / heavy / old ...": a number with a unit of measure, not any number.
_ASKS_MEASURE = re.compile(r"(?:^|[,;:?]\s+)(?:(?:for|in|at|by)\s+)?how\s+(?:long|tall|far|big|high|deep|wide|"
                           r"heavy|old|large|fast|short|often|soon)\b", re.I)
_UNIT = (r"(?:nm|mm|cm|dm|m|km|in|inch(?:es)?|ft|feet|foot|yards?|miles?|metres?|meters?|millimet(?:re|er)s?|"
         r"centimet(?:re|er)s?|kilomet(?:re|er)s?|mg|g|kg|grams?|kilograms?|tonnes?|tons?|lbs?|pounds?|ounces?|oz|"
         r"ms|µs|us|ns|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?|days?|weeks?|months?|years?|decades?|"
         r"centur(?:y|ies)|[kmgtp]i?b|bytes?|bits?|kilobytes?|megabytes?|gigabytes?|terabytes?|%|percent|"
         r"times|°[cf]?|degrees?|hz|khz|mhz|ghz|mph|km/h|knots?)")
_MEASURED = re.compile(r"(?:\d[\d.,]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                       r"fifteen|twenty|thirty|forty|fifty|sixty|hundred|a|an|half\s+an?)\b)\s?(?:-\s?)?" + _UNIT
                       + r"(?!\w)", re.I)
# "Who", "what is the name of", "what was it called": not "the maximum length of a column name".
_ASKS_NAME = re.compile(r"^(?:(?:by|to|for|with|from|of)\s+)?(?:who|whom|whose)\b|"
                        r"\b(?:what|which)\s+(?:is|was|are|were)\s+(?:the|its|their|his|her)\s+(?:\w+\s+)?"
                        r"(?:name|codename|title)\b|\b(?:named|called|codenamed|titled)\b", re.I)
# "Which module ...", "What function ...", "In which file ...": the answer is a thing of that sort,
# often the subject of a page or section rather than a word inside some sentence.
_WHICH = re.compile(
    r"^(?:(?:in|on|from|with|by|under|to|for)\s+)?(?:which|what)\s+"
    r"(?:(?!(?:does|do|did|is|are|was|were|can|could|should|would|will|has|have)\b)\w+\s+)?"
    r"(?P<noun>modules?|functions?|options?|settings?|directives?|commands?|files?|parameters?|variables?|"
    r"packages?|tools?|programs?|utilit(?:y|ies)|flags?|keys?|extensions?|methods?|classes|class|types?|"
    r"protocols?|formats?|fields?|headers?|handlers?|filters?|providers?|subcommands?|statements?|clauses?|"
    r"operators?|keywords?|libraries|library|directory|directories|servers?|services?|daemons?|hooks?|"
    r"configuration|config|environment variables?|signals?|ports?|levels?|modes?|algorithms?|encodings?|"
    r"values?|arguments?|switch(?:es)?)\b"
    # "What file permissions ...": the thing asked for is the permissions, not a file.
    r"(?!\s+(?:permissions?|names?|sizes?|paths?|types?|formats?|modes?|owners?|contents?|extensions?|"
    r"locations?)\b)", re.I)
# "What is X?", "What are Xs?", "What does X mean / do / stand for?", "Define X", "What is meant by X?"
_DEFINITION = re.compile(
    r"^(?:what\s+(?:is|are)\s+(?:meant\s+by\s+)?|define\s+|what\s+does\s+(?P<does>.+?)\s+"
    r"(?:mean|do|stand\s+for|refer\s+to|describe)\s*\??$|"
    r"what\s+is\s+the\s+(?:meaning|purpose|role)\s+of\s+)(?P<subject>.*?)\s*\??$", re.I)
# A "what is the <this> of ..." question asks for a value, not a definition.
_VALUE_NOUNS = set("""default defaults value port size limit maximum minimum max min number count version
path location file name extension command option setting syntax format type unit timeout length
interval amount level range address url prefix suffix character symbol key variable directory
folder mode flag argument encoding""".split())
_ASKS_CODE = re.compile(r"\b(?:how\s+(?:do|can|would|should)\s+(?:i|you|we|one)|how\s+to|commands?|code|syntax|"
                        r"examples?|snippets?|scripts?|invocation|usage)\b", re.I)
_HOW = re.compile(r"^how\s+(?:do|does|can|could|would|should|to|is|are)\b", re.I)
_WHY = re.compile(r"^(?:why|for\s+what\s+reason)\b", re.I)
_DEFAULT = re.compile(r"\bdefaults?\b|\bby\s+default\b|\bout\s+of\s+the\s+box\b", re.I)
_TWO_PART = re.compile(r"\b(when|where|who|what|why|how|which)\s+and\s+(when|where|who|what|why|how|which)\b|"
                       r"\?\s*\w.*\?", re.I)
_ARTICLE = re.compile(r"^(?:an?|the)\s+", re.I)
_CONTEXT = re.compile(r"\s+(?:in|of|for|on|within|under|with)\s+(?:an?\s+|the\s+)?[A-Z][\w.+-]*(?:\s+\d[\w.]*)?$")
_NUMBER_WORDS = set("""zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
thousand million billion dozen half twice january february march april june july august september
october november december monday tuesday wednesday thursday friday saturday sunday""".split())
_LIST_NUMBER = re.compile(r"^\s*\d+[.)]\s+")  # "1. The answer is ..." numbers a list, says nothing


@dataclass(frozen=True)
class Question:
    """One question, analysed.

    ``kind``: ``number`` (when, how many), ``name`` (who), ``which`` (which module, option ...:
    ``noun`` says of what sort), ``definition`` (what is X: ``subject`` is X), ``how``, ``why``
    or ``fact`` (anything else). ``asks`` is the kind of answer a sentence must hold (``NUMBER``,
    ``NAME`` or ""). ``default``: it asks for a default value. ``terms``: its stemmed content
    words; ``names``: the technical names it mentions, lower-cased; ``wants_code``: it may be
    answered with code.
    """

    text: str
    kind: str
    asks: str
    parts: tuple[str, ...]
    subject: str
    noun: str
    default: bool
    terms: frozenset[str]
    names: frozenset[str]
    wants_code: bool

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=256)
def analyse(question: str | Question) -> Question:
    """``question`` analysed (a ``Question`` is returned as it is)."""
    if isinstance(question, Question):
        return question
    text = " ".join(str(question).split())
    asks = NUMBER if _ASKS_NUMBER.search(text) else NAME if _ASKS_NAME.search(text) else ""
    which = _WHICH.match(text)
    definition = _DEFINITION.match(text)
    subject, noun = "", ""
    if asks:
        kind = "number" if asks == NUMBER else "name"
    elif which:
        kind, noun = "which", which.group("noun").lower()
    elif definition and _is_subject(definition.group("does") or definition.group("subject")):
        kind, subject = "definition", _subject(definition.group("does") or definition.group("subject"))
    elif _HOW.match(text):
        kind = "how"
    elif _WHY.match(text):
        kind = "why"
    else:
        kind = "fact"
    two = _TWO_PART.search(text)
    parts = tuple((word or "").lower() for word in two.groups()) if two else ()
    return Question(text=text, kind=kind, asks=asks, parts=parts, subject=subject, noun=noun,
                    default=_DEFAULT.search(text) is not None, terms=frozenset(keywords(text)),
                    names=frozenset(name.lower() for name in code_terms(text)),
                    wants_code=_ASKS_CODE.search(text) is not None)


def _is_subject(phrase: str) -> bool:
    """Whether ``phrase`` (what follows "what is") names a thing to define, rather than a value
    of something ("the default port PostgreSQL listens on", "the maximum size of ...")."""
    words = _ARTICLE.sub("", phrase).lower().split()
    return bool(words) and len(words) <= 6 and not (set(words[:2]) & _VALUE_NOUNS) and words[0] not in STOPWORDS \
        and words[-1] not in STOPWORDS | {"about", "like", "than", "equivalent", "similar"}


def _subject(phrase: str) -> str:
    """The thing a definition question asks about: "a tablespace in PostgreSQL" -> "tablespace"."""
    phrase = _ARTICLE.sub("", phrase.strip().rstrip("?").strip())
    return _CONTEXT.sub("", phrase).strip(" `\"'") or phrase


def terms_of(text: str) -> set[str]:
    """The numbers and words of ``text``, lower-cased ("1,024" -> "1024")."""
    return {t.replace(",", "").lower() for t in _TERM.findall(text)}


_PLACE = re.compile(r"\b(?:in|at|near|inside|outside|under|from)\s+(?:the\s+)?(?:(?:town|city|village|port|region|"
                    r"country|island|province|state|folder|directory|file)\s+(?:of\s+)?)?((?:[A-Z][\w'-]*|[/~`][^\s,;]+)"
                    r"(?:\s+[A-Z][\w'-]*)*)")


def covers(question: Question, part: str, sentence: str) -> bool:
    """Whether ``sentence`` answers the ``part`` ("when", "where", "who") of a two-part question:
    a date or number, a place or a name the question does not hold; any sentence for the others."""
    asked = terms_of(question.text)
    if part == "when":
        return any(w[0].isdigit() or w.lower() in _NUMBER_WORDS for w in _TERM.findall(sentence)
                   if w.lower() not in asked)
    if part == "where":  # "in the town of Rashid", "near Rosetta", "at /etc/hosts"
        return any(not terms_of(m.group(1)) <= asked for m in _PLACE.finditer(sentence))
    if part == "who":
        return any(w[0].isupper() and w.lower() not in STOPWORDS and w.lower() not in asked
                   for w in _TERM.findall(sentence)[1:])
    return True


def gives(question: Question, sentence: str) -> bool:
    """Whether ``sentence`` has an answer of the kind ``question`` asks for (``asks``) that the
    question itself does not already contain."""
    if not question.asks:
        return True
    asked = terms_of(question.text)
    words = [w for w in _TERM.findall(_LIST_NUMBER.sub("", sentence)) if w.replace(",", "").lower() not in asked]
    if question.asks == NUMBER:
        if _ASKS_MEASURE.search(question.text):  # a measure: "7.3 mm", "five minutes", not "3,000 adults"
            return any(not terms_of(m.group()) <= asked for m in _MEASURED.finditer(sentence))
        return any(w[0].isdigit() or w.lower() in _NUMBER_WORDS or w == "May" for w in words)
    # "The chief executive of the Norvane Ferry Company is Norvane Ferries" names nobody.
    asked_stems = {stem(term) for term in asked}
    return any(w[0].isupper() and len(w) > 1 and w.lower() not in STOPWORDS
               and stem(w.lower()) not in asked_stems for w in words)
