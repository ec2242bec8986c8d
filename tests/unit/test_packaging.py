"""Each package the images install declares what its code imports: a
distribution imported when a module loads is a dependency; one imported only
inside a function (the Kubernetes client of token-review) is a dependency or
belongs to an extra. The images install a package's declared closure and
nothing else, so an undeclared import would fail there, not here."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

from devstack.cluster import ROOT

# The packages of the images: their directory, and the import names they own.
PACKAGES = {
    "proto/python": ("trainconductor", "train_conductor"),
    "core": ("trainconductor_core",),
    "services/api": ("trainconductor_api",),
    "services/controller": ("trainconductor_controller",),
}


@dataclass(frozen=True)
class Import:
    module: str  # as written: `a.b` of `import a.b`, `a.b.c` of `from a.b import c`
    where: str  # file:line
    deferred: bool  # inside a function: only when that runs


def imports_of(source: Path) -> Iterator[Import]:
    """The absolute imports of a module, but those for type checking only."""
    tree = ast.parse(source.read_text(), str(source))

    def walk(node: ast.AST, deferred: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            where = f"{source.relative_to(ROOT)}:{getattr(child, 'lineno', 0)}"
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (i for c in child.orelse for i in walk(c, deferred))
                continue
            if isinstance(child, ast.Import):
                yield from (Import(alias.name, where, deferred) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for alias in child.names:
                    yield Import(f"{child.module}.{alias.name}", where, deferred)
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(child, deferred or inner)

    yield from walk(tree, False)


@cache
def owners() -> dict[Path, str]:
    """Every installed file, by the distribution that installed it."""
    found: dict[Path, str] = {}
    for distribution in metadata.distributions():
        for file in distribution.files or []:
            found[Path(str(distribution.locate_file(file))).resolve()] = normalized(
                distribution.metadata["Name"]
            )
    return found


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(module: str) -> str | None:
    """The distribution whose files hold `module` (`from a.b import c`: the
    module a.b.c, or else the package a.b); None for the standard library."""
    if module.split(".")[0] in sys.stdlib_module_names:
        return None
    for name in (module, module.rpartition(".")[0]):
        if not name:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None and spec.origin not in (None, "built-in", "frozen"):
            owner = owners().get(Path(spec.origin).resolve())
            assert owner, f"no installed distribution holds {spec.origin} (of {module})"
            return owner
    raise AssertionError(f"{module} is not installed in the test environment")


@dataclass(frozen=True)
class Declared:
    name: str
    dependencies: frozenset[str]
    extras: dict[str, frozenset[str]]


def requirement_name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert found, requirement
    return normalized(found[0])


def declared(directory: str) -> Declared:
    project = tomllib.loads((ROOT / directory / "pyproject.toml").read_text())["project"]
    return Declared(
        name=normalized(project["name"]),
        dependencies=frozenset(map(requirement_name, project.get("dependencies", []))),
        extras={
            extra: frozenset(map(requirement_name, requirements))
            for extra, requirements in project.get("optional-dependencies", {}).items()
        },
    )


def own_distributions() -> dict[str, str]:
    """The project's import names, by the distribution that ships them."""
    return {name: declared(d).name for d, names in PACKAGES.items() for name in names}


def sources(directory: str) -> Iterator[Path]:
    for name in PACKAGES[directory]:
        yield from sorted((ROOT / directory / name).rglob("*.py"))


@pytest.mark.parametrize("directory", list(PACKAGES))
def test_a_package_declares_every_distribution_its_code_imports(directory: str) -> None:
    package = declared(directory)
    own = own_distributions()
    extras = frozenset().union(*package.extras.values())
    undeclared: dict[str, str] = {}  # distribution: where it is first imported, and how
    for source in sources(directory):
        for found in imports_of(source):
            top = found.module.split(".")[0]
            distribution = own.get(top) or distribution_of(found.module)
            if distribution is None or distribution == package.name:
                continue
            if distribution in package.dependencies:
                continue
            if found.deferred and distribution in extras:
                continue
            wanted = "a dependency or an extra" if found.deferred else "a dependency"
            undeclared.setdefault(distribution, f"{found.module} at {found.where} ({wanted})")
    assert undeclared == {}, f"{directory}/pyproject.toml lacks:\n" + "\n".join(
        f"{distribution}: {first}" for distribution, first in sorted(undeclared.items())
    )


def test_the_api_takes_the_kubernetes_client_for_token_review_as_an_extra() -> None:
    api = declared("services/api")
    assert "kubernetes" not in api.dependencies
    assert "kubernetes" in api.extras["token-review"]
    assert "uvloop" in api.dependencies
