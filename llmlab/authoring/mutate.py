"""`llmlab mutate TOPIC`: automatic mutation testing of the solution regions.

The mutant catalogue (llmlab.authoring.mutants) holds the mistakes someone thought of; this
command finds the ones nobody did. It parses each solution file, and for every expression
inside a `### BEGIN SOLUTION` … `### END SOLUTION` region makes the small edits a mutation
tool makes: swap an arithmetic, comparison or boolean operator, drop a `not` or a unary
minus, change a number by one, flip a boolean, swap `min`/`max`-like names, turn `break`
into `continue`. Each mutant is the reference with that one edit, judged by the topic's
graders (public and hidden) in the mutant worker, stopping at the first failing test.

A surviving mutant is either a missing test or an *equivalent* mutant (it computes the same
thing, e.g. `>` vs `>=` where equality cannot occur). Equivalent ones are
listed in the topic's `graders/NN_x/mutants.py` as

    EQUIVALENT = {"attention.py: `<` -> `<=` in `if t < 0:`": "t is never 0 here because ..."}

with the reason; the key is the mutant's id as this command prints it. The command reports
the kill rate with and without them, every survivor not listed, and listed ids that no
longer occur.

Why not mutmut: it mutates whole files in place through its own import trampolines, while
this course loads topic folders by path (names start with a digit) and must mutate only the
solution regions; an AST mutator of ~150 lines drives the existing mutant worker instead
(docs/decisions.md).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import time
from dataclasses import dataclass
from pathlib import Path

from llmlab.authoring.mutants import Mutant, judge_all
from llmlab.authoring.sync import solution_lines
from llmlab.course import topics

_BINOPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
           ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "//"), ast.Pow: ("**", "*"), ast.MatMult: ("@", "*"),
           ast.LShift: ("<<", ">>"), ast.RShift: (">>", "<<"), ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"),
           ast.BitXor: ("^", "&")}
_AUGOPS = {op: (a + "=", b + "=") for op, (a, b) in _BINOPS.items()}
_CMPOPS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
           ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
           ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
_NAME_SWAPS = {"min": "max", "max": "min", "argmin": "argmax", "argmax": "argmin", "amin": "amax", "amax": "amin",
               "triu": "tril", "tril": "triu", "sum": "mean", "mean": "sum", "any": "all", "all": "any",
               "floor": "ceil", "ceil": "floor", "minimum": "maximum", "maximum": "minimum",
               "clamp_min": "clamp_max", "clamp_max": "clamp_min", "exp": "log", "log": "exp",
               "sqrt": "rsqrt", "rsqrt": "sqrt", "sin": "cos", "cos": "sin", "unsqueeze": "squeeze"}


@dataclass(frozen=True)
class Generated:
    file: str
    line: int
    unit_line: str    # the source line, stripped: part of the stable id
    description: str  # "`<` -> `<=`"
    start: int        # character offsets of the replaced span in the file
    end: int
    replacement: str

    @property
    def id(self) -> str:
        return f"{self.file}: {self.description} in `{self.unit_line}`"


class _Offsets:
    def __init__(self, source: str):
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def __call__(self, line: int, col: int) -> int:
        # ast columns are UTF-8 byte offsets; solution code is ASCII outside string literals
        return self.starts[line - 1] + col


def _between(source: str, offsets: _Offsets, left: ast.AST, right: ast.AST, token: str) -> tuple[int, int] | None:
    """Offsets of `token` in the text between two nodes (an operator's spelling)."""
    lo = offsets(left.end_lineno, left.end_col_offset)
    hi = offsets(right.lineno, right.col_offset)
    gap = source[lo:hi]
    words = token[0].isalpha()
    at = gap.find(f" {token} ") + 1 if words else gap.find(token)
    if words and at == 0:
        return None
    if at < 0 or (not words and token in ("*", "/", "<", ">") and gap[at:at + 2] in ("**", "//", "<=", ">=", "<<", ">>")):
        return None
    return lo + at, lo + at + len(token)


def generate(path: Path, name: str) -> list[Generated]:
    """Every mutant of the solution regions of one file."""
    source = path.read_text()
    inside = solution_lines(source)
    if not inside:
        return []
    lines = source.splitlines()
    offsets = _Offsets(source)
    tree = ast.parse(source)
    in_fstring: set[int] = {id(n) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for n in ast.walk(node)}
    found: list[Generated] = []

    def add(node: ast.AST, start: int, end: int, old: str, new: str) -> None:
        code = re.sub(r"\s+#[^'\"]*$", "", lines[node.lineno - 1]).strip()  # the line without its comment
        found.append(Generated(name, node.lineno, code, f"`{old}` -> `{new}`", start, end, new))

    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or id(node) in in_fstring:
            continue
        if not all(line in inside for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)):
            continue
        start = offsets(node.lineno, node.col_offset)
        end = offsets(node.end_lineno, node.end_col_offset)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            old, new = _BINOPS[type(node.op)]
            span = _between(source, offsets, node.left, node.right, old)
            if span:
                add(node, *span, old, new)
        elif isinstance(node, ast.AugAssign) and type(node.op) in _AUGOPS:
            old, new = _AUGOPS[type(node.op)]
            span = _between(source, offsets, node.target, node.value, old)
            if span:
                add(node, *span, old, new)
        elif isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                old, new = _CMPOPS[type(op)]
                span = _between(source, offsets, left, right, old)
                if span:
                    add(node, *span, old, new)
                left = right
        elif isinstance(node, ast.BoolOp):
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:]):
                span = _between(source, offsets, left, right, old)
                if span:
                    add(node, *span, old, new)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            operand = offsets(node.operand.lineno, node.operand.col_offset)
            add(node, start, operand, source[start:operand].strip(), "")
        elif isinstance(node, ast.Constant) and source[start:end] == repr(node.value):
            value = node.value
            if isinstance(value, bool):
                add(node, start, end, repr(value), repr(not value))
            elif isinstance(value, int):
                add(node, start, end, repr(value), repr(value + 1))
                if value != 0:
                    add(node, start, end, repr(value), repr(value - 1))
            elif isinstance(value, float):
                add(node, start, end, repr(value), repr(value * 2 if value else 1.0))
        elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAPS:
            add(node, end - len(node.attr), end, node.attr, _NAME_SWAPS[node.attr])
        elif isinstance(node, ast.Name) and node.id in _NAME_SWAPS and node.id in ("min", "max", "any", "all", "sum"):
            add(node, start, end, node.id, _NAME_SWAPS[node.id])
        elif isinstance(node, ast.Break):
            add(node, start, end, "break", "continue")
    found.sort(key=lambda g: (g.start, g.description))
    return _numbered(found)


def _numbered(found: list[Generated]) -> list[Generated]:
    """Give repeated ids (the same edit twice on one line) an occurrence number."""
    seen: dict[str, int] = {}
    out = []
    for g in found:
        seen[g.id] = seen.get(g.id, 0) + 1
        if seen[g.id] > 1:
            g = Generated(g.file, g.line, g.unit_line, f"{g.description} (#{seen[g.id]})", g.start, g.end, g.replacement)
        out.append(g)
    return out


def as_mutant(path: Path, g: Generated) -> Mutant:
    """The generated edit as a catalogue-style mutant: the whole file replaced (unique by
    construction), so it runs through exactly the worker the catalogue uses."""
    source = path.read_text()
    return Mutant(g.id, g.file, find=source, replace=source[:g.start] + g.replacement + source[g.end:])


def equivalent_list(topic: topics.Topic) -> dict[str, str]:
    path = topic.graders / "mutants.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"llmlab_equivalent_{topic.slug}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(getattr(module, "EQUIVALENT", {}))


def run(topic: topics.Topic, console, limit: int | None = None) -> dict:
    """Generate, judge and report the mutants of one topic. Returns the figures."""
    from rich.markup import escape  # ids hold code: `x[i]` must not read as markup

    generated = []
    for path in sorted(topic.solutions.glob("*.py")):
        generated.extend((path, g) for g in generate(path, path.name))
    if limit:
        generated = generated[:limit]
    equivalent = equivalent_list(topic)
    start = time.monotonic()
    verdicts = judge_all(topic, [as_mutant(path, g) for path, g in generated], test_timeout=20)
    seconds = time.monotonic() - start
    survivors = [g for (_, g), v in zip(generated, verdicts) if not v.ok]
    listed = [g for g in survivors if g.id in equivalent]
    missed = [g for g in survivors if g.id not in equivalent]
    stale = sorted(set(equivalent) - {g.id for _, g in generated})
    total = len(generated)
    killed = total - len(survivors)
    figures = {"topic": topic.slug, "mutants": total, "killed": killed, "equivalent": len(listed),
               "survivors": len(missed), "seconds": round(seconds, 1),
               "kill_rate": killed / total if total else 1.0,
               "kill_rate_non_equivalent": killed / (total - len(listed)) if total - len(listed) else 1.0}
    for g in missed:
        console.print(f"[red]SURVIVED[/red] {escape(f'{g.file}:{g.line}: {g.description}')}\n    id: {escape(g.id)}",
                      soft_wrap=True)
    for g in listed:
        console.print(escape(f"equivalent {g.file}:{g.line}: {g.description}: {equivalent[g.id]}"), soft_wrap=True)
    for key in stale:
        console.print(f"[yellow]stale EQUIVALENT entry[/yellow] (no such mutant any more): {escape(key)}", soft_wrap=True)
    console.print(f"{topic.slug}: {total} mutants, {killed} killed, {len(listed)} equivalent, "
                  f"{len(missed)} surviving; kill rate {figures['kill_rate']:.1%} "
                  f"({figures['kill_rate_non_equivalent']:.1%} of the non-equivalent) in {seconds:.0f} s")
    return figures


def main(selected: list[topics.Topic], console, limit: int | None = None, json_path: str | None = None) -> int:
    import json

    results = [run(topic, console, limit) for topic in selected]
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=1))
    return 1 if any(r["survivors"] for r in results) else 0

