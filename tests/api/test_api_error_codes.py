"""docs/api.md lists every error code the API can answer, and only those.

The codes are read from the source, not from a hand-kept list:

- every DomainError subclass's ``code``, and every ``code="..."`` given when
  one is raised (services, selectors, the apps' api.py), with the codes a
  helper passes through (``_refuse(message, "code_used", 409)``) or picks
  from tuples of (message, code);
- the codes the API layer itself answers (doorkeep/api: validation, auth,
  unknown paths, a body that is not JSON, a body too large, a CSRF refusal).

The web UI's own views (doorkeep/web), the CLI and the demo are left out:
the API never runs them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "doorkeep"
DOCS = ROOT / "docs" / "api.md"
NOT_THE_API = ("web", "cli.py", "demo.py", "migrations")
CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _sources() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text())
        for path in SRC.rglob("*.py")
        if not any(part in NOT_THE_API for part in path.relative_to(SRC).parts)
    }


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _constant(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _domain_errors(trees: dict[Path, ast.Module]) -> dict[str, str | None]:
    """Every DomainError subclass, with its own ``code`` if it sets one."""
    classes: dict[str, tuple[list[str], str | None]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                code = None
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign | ast.AnnAssign):
                        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
                        if isinstance(target, ast.Name) and target.id == "code":
                            code = _constant(stmt.value)
                bases = [b for b in (_name(base) for base in node.bases) if b]
                classes[node.name] = (bases, code)
    errors = {"DomainError"}
    grew = True
    while grew:
        grew = False
        for name, (bases, _code) in classes.items():
            if name not in errors and errors.intersection(bases):
                errors.add(name)
                grew = True
    return {name: classes[name][1] for name in errors}


def codes_the_api_can_answer() -> set[str]:
    trees = _sources()
    errors = _domain_errors(trees)
    codes = {code for code in errors.values() if code}
    dynamic = []  # (module, function, parameter) whose value is a raised error's code
    for path, tree in trees.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            params = [a.arg for a in function.args.args]
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and _name(call.func) in errors):
                    continue
                for keyword in call.keywords:
                    if keyword.arg != "code":
                        continue
                    if _constant(keyword.value) is not None:
                        codes.add(str(_constant(keyword.value)))
                    elif isinstance(keyword.value, ast.Name) and keyword.value.id in params:
                        dynamic.append((path, function.name, params.index(keyword.value.id)))
                    else:  # picked from (message, code) tuples made in the function
                        for node in ast.walk(function):
                            if isinstance(node, ast.Tuple) and node.elts:
                                last = _constant(node.elts[-1])
                                if last and CODE.match(last):
                                    codes.add(last)
    for path, function, index in dynamic:  # the helper's calls in its module
        for call in ast.walk(trees[path]):
            if (
                isinstance(call, ast.Call)
                and _name(call.func) == function
                and len(call.args) > index
            ):
                code = _constant(call.args[index])
                assert code, f"{function}() is called with a code that is not a literal"
                codes.add(code)
    return codes | _api_layer_codes()


def _api_layer_codes() -> set[str]:
    codes = set()
    for path in (SRC / "api").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and _name(node.func) == "error"
                and len(node.args) >= 3
                and _constant(node.args[2])
            ):
                codes.add(str(_constant(node.args[2])))
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if key is not None and _constant(key) == "code" and _constant(value):
                        codes.add(str(_constant(value)))
            if isinstance(node, ast.Tuple) and len(node.elts) == 2:  # _MESSAGES in middleware
                first = _constant(node.elts[0])
                if first and CODE.match(first) and _constant(node.elts[1]):
                    codes.add(first)
    return codes


def documented_codes() -> dict[str, int]:
    """The codes in docs/api.md's "Every error code" section, with their status."""
    text = DOCS.read_text()
    section = text.split("## Every error code", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, int] = {}
    for line in section.splitlines():
        row = re.match(r"\|\s*(\d{3})\s*\|(.*)\|\s*$", line)
        if row:
            for code in re.findall(r"`([a-z][a-z0-9_]*)`", row[2]):
                codes[code] = int(row[1])
    return codes


def test_docs_list_every_error_code_the_api_can_answer_and_no_other() -> None:
    answered = codes_the_api_can_answer()
    documented = set(documented_codes())
    assert len(answered) > 150  # the collection found the services' errors
    assert sorted(answered - documented) == [], "answered by the API but not in docs/api.md"
    assert sorted(documented - answered) == [], "in docs/api.md but never answered"


def test_the_collection_finds_codes_of_each_kind() -> None:
    answered = codes_the_api_can_answer()
    assert "lock_offline" in answered  # a class's own code
    assert "wrong_claim_secret" in answered  # picked from (message, code) tuples
    assert "code_used" in answered  # passed through a helper
    assert {"invalid_json", "validation_error", "unauthorized"} <= answered  # the API layer
    assert "server_error" in answered  # the fast unlock path's own answer
