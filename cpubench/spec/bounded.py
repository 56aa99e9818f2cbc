"""Bounded reading of a config file: its size, its encoding and its YAML shape are checked before anything grows.

Why a module of its own: a config is a file someone may send you, and plain ``yaml.safe_load`` trusts it with the
machine. Nine nested aliases ("billion laughs") compose in microseconds and then expand past 6 GB in whatever walks
the tree; 100,000 ``[`` overflow the composer's recursion; ``!!python/object/apply`` and a key that is a list fail
deep inside the constructor with a traceback; a byte that is not UTF-8 fails before YAML sees it. Each limit below
is checked while the document is *composed* (YAML events into nodes), so nothing is built from a file that breaks
one, and each failure is one :class:`ConfigError`, ``file:line: what`` (or ``file: what`` where there is no line).

Why refuse anchors and aliases rather than bound their expansion: a benchmark matrix repeats nothing by reference
(none of the shipped configs uses ``&``, ``*`` or ``<<``), and a bound on expansion would have to be enforced by
every walk of the tree (line map, validation, plan) instead of once here. A refusal is simpler and says what to do.
"""

from __future__ import annotations

from typing import Any

import yaml

from cpubench.spec.schema import ConfigError

MAX_BYTES = 1 << 20  # a shipped config is ~1 KiB; 1 MiB is a thousand times that and parses in a few seconds
MAX_DEPTH = 16  # the deepest a config needs is 5 (exclude: - {key: [values]}); 16 leaves room, not recursion
MAX_NODES = 100_000  # every key, value and list item; a shipped config has ~100
MAX_SCALAR = 64 << 10  # one text value (a description, an env value) of 64 KiB is plenty
MAX_KEY = 256  # a key is an axis, a flag or an environment variable name
MAX_DIGITS = 64  # an integer longer than this is no thread count or batch size (and Python refuses >4300 digits)

_TAG = "tag:yaml.org,2002:"
# What a config holds: text, numbers, true/false, null, lists and mappings (a date is harmless text to a
# description). Every other tag (python/*, binary, set, omap, merge, value, a local !tag) is refused by name.
ALLOWED_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp"))


def decode(data: bytes, source: str) -> str:
    """The text of a config file's bytes: UTF-8 (a leading byte-order mark dropped), at most :data:`MAX_BYTES`."""
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(data):,} bytes or more: a config may be at most {MAX_BYTES:,} bytes (1 MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        what = f"not UTF-8 text (byte 0x{data[e.start]:02x}): save the config as UTF-8"
        raise ConfigError(f"{source}:{line}: {what}") from None
    return text.removeprefix("\ufeff")


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with every limit of this module checked as each node is composed."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.nodes = 0

    def refuse(self, mark: yaml.Mark | None, what: str) -> ConfigError:
        """The one-line error at ``mark``'s line."""
        return ConfigError(f"{self.source}:{mark.line + 1 if mark is not None else 1}: {what}")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Refuse an alias or anchor before it is followed, nesting before it recurses, a tag before it is
        constructed, and too many nodes before they are kept."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise self.refuse(
                event.start_mark,
                f"alias *{event.anchor}: YAML anchors and aliases (&name, *name, <<) are not allowed in a config; "
                "write each value out",
            )
        if getattr(event, "anchor", None) is not None:
            raise self.refuse(
                event.start_mark,
                f"anchor &{event.anchor}: YAML anchors and aliases (&name, *name, <<) are not allowed in a config; "
                "write each value out",
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(event.start_mark, f"more than {MAX_NODES:,} keys and values: a config may hold no more")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.refuse(event.start_mark, f"nested deeper than {MAX_DEPTH} levels: a config needs at most 5")
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self.check_node(node)
        return node

    def check_node(self, node: yaml.Node) -> None:
        """A composed node's tag, size and (for a mapping) keys."""
        if node.tag not in ALLOWED_TAGS:
            what = "merge key <<" if node.tag == _TAG + "merge" else f"tag {node.tag.removeprefix(_TAG)!r}"
            raise self.refuse(
                node.start_mark,
                f"YAML {what} is not allowed in a config (it holds text, numbers, true/false, lists and mappings)",
            )
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_SCALAR:
                what = f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,})"
                raise self.refuse(node.start_mark, what)
            if node.tag == _TAG + "int" and len(node.value) > MAX_DIGITS:
                raise self.refuse(node.start_mark, f"a number of {len(node.value):,} digits (at most {MAX_DIGITS})")
        elif isinstance(node, yaml.MappingNode):
            for key, _value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    kind = "list" if isinstance(key, yaml.SequenceNode) else "mapping"
                    raise self.refuse(key.start_mark, f"a key that is a {kind}: a config's keys are names")
                if len(key.value) > MAX_KEY:
                    raise self.refuse(key.start_mark, f"a key of {len(key.value):,} characters (at most {MAX_KEY})")

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value, or a constructor error at its node's line for text its tag cannot hold (``2024-13-45``)."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(None, None, " ".join(str(e).split()), node.start_mark) from None


def compose(text: str, source: str) -> tuple[yaml.Node | None, BoundedLoader]:
    """The one document of ``text`` as nodes (None when empty), and the loader that can construct it."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters: a config may be at most {MAX_BYTES:,} bytes (1 MiB)")
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text, source)  # the reader checks every character here
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"{source}:{mark.line + 1 if mark else '?'}: not valid YAML: {what}") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        char = e.character if isinstance(e.character, int) else ord(e.character)
        raise ConfigError(f"{source}:{line}: character U+{char:04X} is not allowed in YAML ({e.reason})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def construct(node: yaml.Node, loader: BoundedLoader, source: str) -> Any:
    """Python values of a document :func:`compose` checked (safe tags only, so only plain values come out)."""
    try:
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"{source}:{mark.line + 1 if mark else '?'}: not a value: {what}") from None
    except (ValueError, OverflowError) as e:
        raise ConfigError(f"{source}: not a value: {' '.join(str(e).split())}") from None
