"""Log template mining: which lines are the same kind of line.

Masks obvious variables first (numbers, hex, addresses, identifiers with digits), then
groups the distinct masked messages in the spirit of Brain (Yu et al., 2023): within
messages of one token count, each token's weight is how many lines carry that token at
that position; the largest set of positions sharing one weight in a message is taken as
its constant core, messages with the same core form a group, and inside a group a
position with few distinct values splits the group while one with many is a variable.

Everything works on distinct masked messages with their line counts, so a million
lines of forty kinds cost forty-odd thousand distinct strings at most, not a million.
The result depends only on the multiset of messages, never on their order.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WILDCARD = "<*>"

# Each kind of value a mask replaces with the wildcard, tried in this order at every
# position of one left-to-right scan. Written for both Python's re and RE2 (DuckDB's
# regexp_replace, which learning uses): no look-around, no back-references.
# RE2's \s: Python's also matches \v, so the masks spell the class out.
_SPACE = r" \t\n\f\r"
_WORD = rf"[^{_SPACE}=:,;|()\[\]{{}}<>\"']"
_WS = rf"[{_SPACE}]"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
MASKS: tuple[tuple[str, str], ...] = (
    (
        "date",
        rf"\b(?:{_WEEKDAY},?{_WS}+)?{_MONTH}{_WS}+\d{{1,2}}(?:,?{_WS}+\d{{4}})?"
        rf"(?:{_WS}+\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?)?(?:{_WS}+\d{{4}})?\b",
    ),
    ("url", rf"[A-Za-z][A-Za-z0-9+.\-]*://[^{_SPACE}\"'<>]+"),
    ("uuid", r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b"),
    ("ipv6", r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"),
    ("ipv4", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"),
    ("hex", r"\b0[xX][0-9A-Fa-f]+\b"),
    # A host name with a port is an address like an IP with a port.
    ("hostport", r"\b[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+:\d{1,5}\b"),
    # A quantity with its unit is one value: ``93.0 B``, ``<1 sec``, ``12 ms``, ``40%``.
    (
        "quantity",
        rf"<?\b\d+(?:\.\d+)?{_WS}?(?:[KMGT]i?B|B|bytes|ms|us|ns|s|secs?|seconds?|mins?|"
        r"minutes?|h|hours?|days?)\b|\b\d+(?:\.\d+)?%",
    ),
    # A number, or a token holding two digits or more, is a value (blk_-123,
    # 2005-06-03-15.42.50, core.2275); one digit in a name is part of it (SOCKS5, eth0).
    ("number", r"(?:^|\b|[-+])\d+(?:\.\d+)?\b"),
    ("digits", rf"{_WORD}*\d{_WORD}*\d{_WORD}*"),
)

# Words, and the punctuation that separates a key from its value, each a token.
_TOKEN = re.compile(r"[^\s=,:;()\[\]{}|\"']+|[=,:;()\[\]{}|\"']")
MASK_PATTERN = "|".join(f"(?:{pattern})" for _, pattern in MASKS)
# Dot leaders (``illegal instruction......0``) separate a label from its value; they
# are spaced out first so that the value's mask does not swallow the label.
LEADER_PATTERN = r"\.\.+"
LEADER_REPLACEMENT = " .. "
_MASK = re.compile(MASK_PATTERN, re.ASCII)  # RE2 classes are ASCII
_LEADER = re.compile(LEADER_PATTERN, re.ASCII)


def mask(message: str) -> str:
    """The message with every obvious variable replaced by ``<*>``."""
    return _MASK.sub(WILDCARD, _LEADER.sub(LEADER_REPLACEMENT, message))


def mask_sql(column: str) -> str:
    """``mask`` as a DuckDB expression (RE2 and Python's re agree on these patterns;
    a test checks it): learning masks thousands of shapes at once this way."""
    leader = f"regexp_replace({column}, '{LEADER_PATTERN}', '{LEADER_REPLACEMENT}', 'g')"
    pattern = MASK_PATTERN.replace("'", "''")
    return f"regexp_replace({leader}, '{pattern}', '{WILDCARD}', 'g')"


_LEVEL_WORDS = (
    "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL|CRIT|CRITICAL|ALERT|EMERG"
)
# The header left in front of a message by formats nodus does not split further: up
# to a level word among the first tokens (``148 INFO dfs.DataNode:``,
# ``- WARN  [main:QuorumPeer@123] -``, ``[notice]``), or ``component|pid|`` fields.
_LEVEL = rf"(?:{_LEVEL_WORDS}|{_LEVEL_WORDS.title()}|{_LEVEL_WORDS.lower()})"
_BRACKETED = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # one level of nesting: [QuorumPeer[myid=1]/…]
_HEADER = re.compile(
    rf"""^(?:
        [^|\s]*\|[^|\s]*\|                          # component|pid|
      | \S+(?:\s+\S+)?\s+-\s+                      # program -
      | (?:\S+\s+){{0,8}}?[\w./()<>*-]+\[<\*>\]:\s   # ... prog[pid]:
      | (?:\S+\s+){{0,7}}?\[?{_LEVEL}\]?(?=\s)       # ... LEVEL
        (?:\s+{_BRACKETED})?                         #   [thread]
        (?:\s+[-:])?                                 #   -
        (?:\s+[\w.$@<>*/]+:(?=\s))?                  #   logger.Class:
    )""",
    re.VERBOSE,
)


def body(masked: str) -> str:
    """The message without the header a line format left in front of it."""
    return _HEADER.sub("", masked, count=1).strip()


def tokens(masked: str) -> tuple[str, ...]:
    """Tokens of a masked message; a token holding a wildcard is a wildcard."""
    return tuple(WILDCARD if WILDCARD in token else token for token in _TOKEN.findall(masked))


@dataclass(frozen=True)
class Settings:
    """The miner's constants (chosen by leave-one-system-out cross-validation)."""

    # A position inside a group with at least this many distinct values is a variable;
    # fewer, and each value starts its own group.
    variable_values: int = 4


@dataclass
class Template:
    text: str
    count: int
    messages: list[str]


def mine(
    messages: Mapping[str, int] | Iterable[str], settings: Settings | None = None
) -> list[Template]:
    """Group masked messages (with their line counts) into templates."""
    settings = settings or Settings()
    counts: Counter[str] = (
        Counter(messages) if not isinstance(messages, Mapping) else Counter(dict(messages))
    )
    by_length: dict[int, list[tuple[tuple[str, ...], str, int]]] = defaultdict(list)
    for message, count in counts.items():
        toks = tokens(body(message))
        by_length[len(toks)].append((toks, message, count))
    templates: dict[str, Template] = {}
    for length in sorted(by_length):
        for group in _length_groups(by_length[length], settings):
            text = _template_text(group)
            template = templates.setdefault(text, Template(text, 0, []))
            for _, message, count in group:
                template.count += count
                template.messages.append(message)
    return _generalise(list(templates.values()))


def _generalise(templates: list[Template]) -> list[Template]:
    """Merge templates that have the same words in the same order.

    Such templates differ only in where their variables are and how many tokens a
    variable spans: ``connection from <*> () at <*>`` and ``connection from <*> (<*>)
    at <*>`` are one kind of line whose variable was empty, ``<*> sent`` and ``<*>
    (<*>) sent`` one whose value came with its unit. A word that one template has and
    the other lacks (``user=<*>``, ``from <*>``, ``opened`` against ``closed``) keeps
    them apart.
    """
    by_words: dict[tuple[str, ...], list[Template]] = defaultdict(list)
    for template in templates:
        by_words[_words(tokens(template.text))].append(template)
    merged: list[Template] = []
    for members in by_words.values():
        members.sort(key=lambda t: (-t.count, t.text))
        if len(members) == 1:
            merged.append(members[0])
            continue
        shape = tokens(members[0].text)
        for other in members[1:]:
            shape = _align(shape, tokens(other.text))
        merged.append(
            Template(
                _render(shape),
                sum(t.count for t in members),
                [message for t in members for message in t.messages],
            )
        )
    return sorted(merged, key=lambda t: (-t.count, t.text))


_PUNCTUATION = frozenset("=,:;()[]{}|\"'-")


def _words(toks: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in toks if t != WILDCARD and t not in _PUNCTUATION)


def _align(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """The tokens two templates share, in order, with a wildcard wherever they differ."""
    rows, cols = len(a), len(b)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
            )
    out: list[str] = []
    i = j = 0
    while i < rows or j < cols:
        if i < rows and j < cols and a[i] == b[j]:
            token = a[i]
            i += 1
            j += 1
        elif j >= cols or (i < rows and table[i + 1][j] >= table[i][j + 1]):
            token = WILDCARD
            i += 1
        else:
            token = WILDCARD
            j += 1
        if not (token == WILDCARD and out and out[-1] == WILDCARD):
            out.append(token)
    return tuple(out)


_TIGHT_BEFORE = frozenset(",;:)]}|=")
_TIGHT_AFTER = frozenset("([{|=")


def _render(toks: tuple[str, ...]) -> str:
    """Template text for merged tokens: words spaced, punctuation held close."""
    out: list[str] = []
    for position, token in enumerate(toks):
        if position and token not in _TIGHT_BEFORE and toks[position - 1] not in _TIGHT_AFTER:
            out.append(" ")
        out.append(token)
    return "".join(out)


Entry = tuple[tuple[str, ...], str, int]


def _length_groups(entries: list[Entry], settings: Settings) -> list[list[Entry]]:
    weight: Counter[tuple[int, str]] = Counter()
    for toks, _, count in entries:
        for position, token in enumerate(toks):
            weight[position, token] += count
    cores: dict[tuple[tuple[int, str], ...], list[Entry]] = defaultdict(list)
    for entry in entries:
        cores[_core(entry[0], weight)].append(entry)
    groups: list[list[Entry]] = []
    for core in sorted(cores):
        fixed = {position for position, _ in core}
        groups.extend(_split(cores[core], fixed, settings))
    return groups


def _core(toks: tuple[str, ...], weight: Counter[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    """The largest set of positions whose tokens share one weight (ties: the heavier)."""
    by_weight: dict[int, list[int]] = defaultdict(list)
    for position, token in enumerate(toks):
        if token != WILDCARD:
            by_weight[weight[position, token]].append(position)
    if not by_weight:
        return ()
    best = max(by_weight, key=lambda w: (len(by_weight[w]), w))
    return tuple((position, toks[position]) for position in by_weight[best])


def _split(entries: list[Entry], fixed: set[int], settings: Settings) -> list[list[Entry]]:
    """Split a group on the first position with few distinct values; recurse."""
    length = len(entries[0][0])
    for position in range(length):
        if position in fixed:
            continue
        values = {toks[position] for toks, _, _ in entries}
        if len(values) == 1 or WILDCARD in values:
            continue
        # The first word names the event (Drain's observation): never a variable
        # unless a mask said so.
        if position > 0 and len(values) >= settings.variable_values:
            continue
        parts: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            parts[entry[0][position]].append(entry)
        out: list[list[Entry]] = []
        for value in sorted(parts):
            out.extend(_split(parts[value], fixed | {position}, settings))
        return out
    return [entries]


def _template_text(group: list[Entry]) -> str:
    """The first message's layout with every position that varies as a wildcard."""
    first, message, _ = group[0]
    message = body(message)
    pieces: list[str] = []
    end = 0
    for position, found in enumerate(_TOKEN.finditer(message)):
        token = first[position]
        same = token != WILDCARD and all(toks[position] == token for toks, _, _ in group)
        pieces.append(" " if found.start() > end else "")  # tokens end at whitespace
        pieces.append(found.group() if same else WILDCARD)
        end = found.end()
    return "".join(pieces).strip()
