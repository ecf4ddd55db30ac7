"""Secrets out of SQL text before any of it leaves the API (active queries, top statements).

pg_stat_statements replaces the constants of plain DML with $n, but keeps utility
statements as they were sent (`CREATE ROLE x PASSWORD '...'`, `CREATE USER MAPPING ...
OPTIONS (password '...')`, `CREATE SUBSCRIPTION ... CONNECTION '... password=...'`), and
pg_stat_activity shows every running statement with its literals. So, per statement:

- for roles below admin (`every_literal`), every string literal goes, whatever the
  statement: a viewer sees the shape of the work, never the values in it;
- a utility statement (anything but SELECT, INSERT, UPDATE, DELETE, MERGE, WITH, VALUES,
  TABLE) loses every string literal;
- in the others, a literal goes when it holds a connection string or URL with a password,
  follows a word that names a secret (`password = '...'`), or is an argument of a
  function that takes secrets (dblink, pgcrypto, set_config).

The scan is a small SQL tokenizer (quotes, dollar quotes, comments), so a quote inside a
comment or an identifier cannot end a literal early. It takes a backslash before a quote
for an escape in every literal, as PostgreSQL does in E'' (and in '' with
standard_conforming_strings off): when unsure, a literal ends too late rather than too
early. Text cut off inside a literal (query texts are truncated) is redacted to its end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MASK = "'***'"
DML = frozenset({"select", "insert", "update", "delete", "merge", "with", "values", "table"})
SECRET_WORD = re.compile(r"pass|pwd|secret|token|credential|key", re.IGNORECASE)
SECRET_TEXT = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|key)\s*=|://[^\s/@]*:[^\s/@]*@", re.IGNORECASE
)
SECRET_FUNCTION = re.compile(r"^(dblink\w*|pgp_\w+|\w*crypt\w*|hmac|set_config)$", re.IGNORECASE)
ASSIGN = frozenset({"=", ":=", "=>", "to"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<string>(?:[eE](?=')|[uU]&(?=')|[bBxXnN](?='))?')
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<ident>"(?:[^"]|"")*"?)
  | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*)
  | (?P<op>:=|=>|.)
    """,
    re.VERBOSE | re.DOTALL,
)


def redact_sql(text: str | None, *, every_literal: bool = False) -> str | None:
    """`text` with the literals that may hold secrets (or, with `every_literal`, all string
    literals) replaced by '***'."""
    if not text:
        return text
    return "".join(_Redactor(text, every_literal).run())


@dataclass
class _Statement:
    """What the scan knows of the statement it is in."""

    kind: str | None = None  # its first word, lower case
    calls: list[str | None] = field(default_factory=list)  # open parentheses: function or None
    recent: list[str] = field(default_factory=list)  # last significant tokens, lower case

    def utility(self) -> bool:
        return self.kind is not None and self.kind not in DML

    def secret_context(self) -> bool:
        in_call = any(name and SECRET_FUNCTION.match(name) for name in self.calls)
        words = [t for t in self.recent[-3:] if t not in ASSIGN]
        after_secret_word = bool(words) and bool(SECRET_WORD.search(words[-1]))
        return in_call or after_secret_word


class _Redactor:
    def __init__(self, text: str, every_literal: bool) -> None:
        self.text = text
        self.every_literal = every_literal
        self.pos = 0
        self.stmt = _Statement()

    def run(self) -> Iterator[str]:
        while self.pos < len(self.text):
            match = _TOKEN.match(self.text, self.pos)
            assert match is not None  # the last alternative takes any character
            kind, value = match.lastgroup, match.group()
            if kind == "block_comment":
                yield self._skip_block_comment()
            elif kind == "string":
                yield self._literal(self._quoted_end(match.end()))
            elif kind == "dollar":
                end = self.text.find(value, match.end())
                yield self._literal(len(self.text) if end < 0 else end + len(value))
            else:
                self.pos = match.end()
                self._note(kind, value)
                yield value

    def _skip_block_comment(self) -> str:
        """Nested /* */ comments, as PostgreSQL reads them."""
        start, depth, i = self.pos, 0, self.pos
        while i < len(self.text):
            pair = self.text[i : i + 2]
            if pair == "/*":
                depth, i = depth + 1, i + 2
            elif pair == "*/":
                depth, i = depth - 1, i + 2
                if depth == 0:
                    break
            else:
                i += 1
        self.pos = i
        return self.text[start:i]

    def _quoted_end(self, i: int) -> int:
        """The end of a '...' literal whose body starts at `i` ('' and \\x escapes)."""
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\" or (ch == "'" and self.text[i + 1 : i + 2] == "'"):
                i += 2
            elif ch == "'":
                return i + 1
            else:
                i += 1
        return len(self.text)  # cut off inside the literal: all of the rest is literal

    def _literal(self, end: int) -> str:
        value = self.text[self.pos : end]
        self.pos = end
        secret = (self.every_literal or self.stmt.utility() or self.stmt.secret_context()
                  or SECRET_TEXT.search(value))
        self.stmt.recent.append("'")
        return MASK if secret else value

    def _note(self, kind: str | None, value: str) -> None:
        if kind in ("space", "line_comment"):
            return
        word = value.strip('"').lower() if kind == "ident" else value.lower()
        if word == ";" and not self.stmt.calls:
            self.stmt = _Statement()
            return
        if kind in ("word", "ident") and self.stmt.kind is None:
            self.stmt.kind = word
        if word == "(":
            previous = self.stmt.recent[-1] if self.stmt.recent else None
            self.stmt.calls.append(previous)
        elif word == ")" and self.stmt.calls:
            self.stmt.calls.pop()
        self.stmt.recent = [*self.stmt.recent[-4:], word]
