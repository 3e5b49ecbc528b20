"""``relevant`` conditions: a small, safe expression language over earlier answers.

Modelled on XLSForm's relevant column, parsed into a tree and evaluated by walking it —
never with ``eval``::

    ${lab-type} = 'eco'
    ${staff-count} >= 10 and not selected(${sites}, 'branch')
    (${has-branch} = 'yes' or ${sites} != '') and ${founded} < '2020-01-01'

Operands: ``${item-id}`` (the answer to an earlier item), quoted strings, numbers.
Operators: ``= != < <= > >=``, ``selected(${item}, 'option')``, ``and``, ``or``, ``not``
and parentheses. An unanswered item makes every comparison and ``selected`` false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Union

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ref>\$\{(?P<refid>[^}]*)\})
      | (?P<str>'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)

Value = Union[str, Decimal, frozenset, None]


class ConditionError(ValueError):
    """A condition that does not parse; the message says where."""


@dataclass(frozen=True)
class Ref:
    item_id: str


@dataclass(frozen=True)
class Literal:
    value: str | Decimal


@dataclass(frozen=True)
class Compare:
    op: str
    left: Ref | Literal
    right: Ref | Literal


@dataclass(frozen=True)
class Selected:
    ref: Ref
    option: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


Node = Union[Compare, Selected, Not, BoolOp]


@dataclass(frozen=True)
class Condition:
    source: str
    tree: Node

    @property
    def refs(self) -> frozenset[str]:
        found: set[str] = set()

        def walk(node: object) -> None:
            if isinstance(node, Ref):
                found.add(node.item_id)
            elif isinstance(node, Compare):
                walk(node.left)
                walk(node.right)
            elif isinstance(node, Selected):
                walk(node.ref)
            elif isinstance(node, Not):
                walk(node.operand)
            elif isinstance(node, BoolOp):
                for o in node.operands:
                    walk(o)

        walk(self.tree)
        return frozenset(found)

    @property
    def selected_options(self) -> tuple[tuple[str, str], ...]:
        """(item id, option) pairs named in selected(...), for the loader to check."""
        out: list[tuple[str, str]] = []

        def walk(node: object) -> None:
            if isinstance(node, Selected):
                out.append((node.ref.item_id, node.option))
            elif isinstance(node, Not):
                walk(node.operand)
            elif isinstance(node, BoolOp):
                for o in node.operands:
                    walk(o)

        walk(self.tree)
        return tuple(out)

    def evaluate(self, value_of: Callable[[str], Value]) -> bool:
        return _eval(self.tree, value_of)


def parse_condition(text: str) -> Condition:
    tokens = _tokenize(text)
    parser = _Parser(text, tokens)
    tree = parser.expr()
    if parser.pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[parser.pos][1]!r} in condition {text!r}")
    return Condition(text, tree)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if not m or m.end() == pos:
            raise ConditionError(f"cannot read condition {text!r} at character {pos + 1}: {stripped[pos:pos + 10]!r}")
        pos = m.end()
        if m["ref"]:
            item_id = m["refid"].strip()
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,23}", item_id):
                raise ConditionError(f"${{{item_id}}} in condition {text!r} is not an item id")
            tokens.append(("ref", item_id))
        elif m["str"]:
            tokens.append(("str", m["sq"] if m["sq"] is not None else m["dq"]))
        elif m["num"]:
            tokens.append(("num", m["num"]))
        elif m["op"]:
            tokens.append(("op", m["op"]))
        elif m["punct"]:
            tokens.append((m["punct"], m["punct"]))
        else:
            word = m["word"].lower()
            if word not in ("and", "or", "not", "selected"):
                raise ConditionError(f"unknown word {m['word']!r} in condition {text!r} (use and, or, not, selected)")
            tokens.append((word, word))
    if not tokens:
        raise ConditionError("the condition is empty")
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            got = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "the end"
            raise ConditionError(f"expected {kind!r} but found {got!r} in condition {self.text!r}")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def expr(self) -> Node:
        operands = [self.conj()]
        while self.peek() == "or":
            self.pos += 1
            operands.append(self.conj())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def conj(self) -> Node:
        operands = [self.neg()]
        while self.peek() == "and":
            self.pos += 1
            operands.append(self.neg())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def neg(self) -> Node:
        if self.peek() == "not":
            self.pos += 1
            return Not(self.neg())
        return self.atom()

    def atom(self) -> Node:
        kind = self.peek()
        if kind == "(":
            self.pos += 1
            node = self.expr()
            self.take(")")
            return node
        if kind == "selected":
            self.pos += 1
            self.take("(")
            ref = Ref(self.take("ref"))
            self.take(",")
            option = self.take("str")
            self.take(")")
            return Selected(ref, option)
        left = self.operand()
        op = self.take("op")
        right = self.operand()
        if not isinstance(left, Ref) and not isinstance(right, Ref):
            raise ConditionError(f"a comparison in {self.text!r} must involve an answer ${{...}}")
        return Compare(op, left, right)

    def operand(self) -> Ref | Literal:
        kind = self.peek()
        if kind == "ref":
            return Ref(self.take("ref"))
        if kind == "str":
            return Literal(self.take("str"))
        if kind == "num":
            return Literal(Decimal(self.take("num")))
        got = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "the end"
        raise ConditionError(f"expected ${{item}}, a 'string' or a number but found {got!r} in condition {self.text!r}")


def _resolve(operand: Ref | Literal, value_of: Callable[[str], Value]) -> Value:
    return value_of(operand.item_id) if isinstance(operand, Ref) else operand.value


def _as_number(value: Value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


_OPS: Mapping[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _eval(node: Node, value_of: Callable[[str], Value]) -> bool:
    if isinstance(node, BoolOp):
        results = (_eval(o, value_of) for o in node.operands)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not _eval(node.operand, value_of)
    if isinstance(node, Selected):
        value = value_of(node.ref.item_id)
        if isinstance(value, frozenset):
            return node.option in value
        return value == node.option
    left, right = _resolve(node.left, value_of), _resolve(node.right, value_of)
    if left is None or right is None or isinstance(left, frozenset) or isinstance(right, frozenset):
        return False
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        a, b = _as_number(left), _as_number(right)
        if a is None or b is None:
            return False
        return _OPS[node.op](a, b)
    return _OPS[node.op](str(left), str(right))
