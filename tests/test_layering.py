"""The import graph of ``sipapp`` follows the layer order of the style guide.

Imports flow one way: ``sip`` -> ``interfaces``/``config`` -> ``transport``
-> ``transaction`` -> ``proxy``/``routing`` -> ``registrar``, ``auth``,
``lcr``, ``dispatcher``, ``services`` -> ``dialog``, ``accounting``,
``stats``, ``cluster`` -> ``admin`` -> ``tap``. Every module of the package is
read with ``ast`` (never imported) and each of its imports, wherever it sits
in the file, is checked: no import from a higher layer, none between two
packages of the same rank unless `ALLOWED_SAME_RANK` lists the pair, no
Twisted in ``sipapp/sip``, and the global reactor only in ``sipapp/tap.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "sipapp"
PLUGIN = REPO_ROOT / "twisted" / "plugins" / "sipapp_plugin.py"

#: The package's own ``__init__`` (version, docstring): importable from anywhere.
ROOT = "<sipapp>"

#: Rank of each top-level package or module of ``sipapp``; higher ranks may
#: import lower ones, never the reverse.
LAYERS: dict[str, int] = {
    ROOT: -1,
    "sip": 0,
    "interfaces": 1,
    "config": 1,
    "plugins": 1,  # the plugin package that getPlugins searches; holds no code of ours
    "logging": 2,  # log setup; reads LogConfig, used by everything above
    "transport": 3,
    "transaction": 4,
    "proxy": 5,
    "routing": 5,
    "registrar": 6,
    "auth": 6,
    "lcr": 6,
    "dispatcher": 6,
    "services": 6,
    "dialog": 7,
    "accounting": 7,
    "stats": 7,
    "cluster": 7,
    "admin": 8,
    "tap": 9,
    "testing": 10,  # fakes and builders for tests: may use anything, nothing imports it
}

#: ``(importer, imported)`` pairs of the same rank that may import each other,
#: each with the reason it is needed. Peers normally meet through an
#: interface in ``sipapp/interfaces.py`` and are wired together in ``tap.py``.
ALLOWED_SAME_RANK: frozenset[tuple[str, str]] = frozenset(
    {
        # The proxy core runs the routing pipeline and carries out its
        # decisions; routing never imports the proxy.
        ("proxy", "routing"),
    }
)

#: The only module that may touch the global reactor: the composition root.
REACTOR_OWNER = "sipapp.tap"


def module_name(path: Path, root: Path = REPO_ROOT) -> str:
    """The dotted module name of a source file under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer key of a dotted ``sipapp`` module name; ``None`` outside ``sipapp``."""
    parts = module.split(".")
    if parts[0] != "sipapp":
        return None
    if len(parts) == 1:
        return ROOT
    return parts[1]


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module named by a (possibly relative) ``from … import``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every ``(line, module)`` imported by ``source``, the module's own text.

    ``from a import b`` yields ``a.b`` (``b`` may be a submodule, and the
    layer key of ``sipapp.b`` is what matters for ``from sipapp import b``).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, is_package, node)
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def target_layer(imported: str) -> str | None:
    """The layer of an imported dotted name; names of the root package map to ``ROOT``."""
    layer = layer_of(imported)
    if layer is not None and layer != ROOT and layer not in LAYERS:
        return ROOT  # ``from sipapp import __version__``
    return layer


def violations(
    module: str,
    source: str,
    is_package: bool = False,
    allowed: frozenset[tuple[str, str]] = ALLOWED_SAME_RANK,
) -> list[str]:
    """Every broken layering rule in one module, as readable lines (empty when clean)."""
    own = layer_of(module)
    if own is None or own not in LAYERS:
        return [f"{module}: no layer; add {own!r} to LAYERS in tests/test_layering.py"]
    problems = []
    for line, imported in imported_modules(module, source, is_package):
        where = f"{module}:{line}: imports {imported}"
        if own == "sip" and imported.split(".")[0] == "twisted":
            problems.append(f"{where}: sipapp/sip is pure and never imports Twisted")
        if imported.startswith("twisted.internet.reactor") and module != REACTOR_OWNER:
            problems.append(
                f"{where}: only sipapp/tap.py uses the global reactor; take a reactor argument"
            )
        layer = target_layer(imported)
        if layer is None or layer in (own, ROOT):
            continue
        if LAYERS[layer] > LAYERS[own]:
            problems.append(
                f"{where}: {own} (rank {LAYERS[own]}) is below {layer} "
                f"(rank {LAYERS[layer]}); imports flow downward only"
            )
        elif LAYERS[layer] == LAYERS[own] and (own, layer) not in allowed:
            problems.append(
                f"{where}: {own} and {layer} share rank {LAYERS[own]}; list the pair in "
                "ALLOWED_SAME_RANK only if the edge is intended"
            )
    return problems


def package_modules() -> list[tuple[str, Path]]:
    """Every module of the ``sipapp`` package with its file, sorted by name."""
    return sorted((module_name(path), path) for path in PACKAGE.rglob("*.py"))


def check_file(module: str, path: Path) -> list[str]:
    """The layering problems of one file of the package."""
    source = path.read_text("utf-8")
    return violations(module, source, is_package=path.name == "__init__.py")


def test_imports_flow_one_way() -> None:
    """No module of sipapp imports from a higher layer, a same-rank peer, or the global reactor."""
    problems = [p for module, path in package_modules() for p in check_file(module, path)]
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_package_is_walked() -> None:
    """The walk finds the package's modules (an empty walk would prove nothing)."""
    names = {module for module, _ in package_modules()}
    assert {"sipapp", "sipapp.interfaces"} <= names


def test_plugin_imports_nothing_from_sipapp() -> None:
    """The twistd plugin stays lazy: it names sipapp.tap as a string and imports no sipapp code."""
    source = PLUGIN.read_text("utf-8")
    edges = imported_modules("twisted.plugins.sipapp_plugin", source)
    assert [m for _, m in edges if m.startswith("sipapp")] == []


# The checker itself, on synthetic modules: it must catch every kind of bad edge.


def test_checker_catches_upward_import() -> None:
    """An import from a higher layer (transport importing the proxy) is reported."""
    problems = violations("sipapp.transport.udp", "from sipapp.proxy.core import SipCore\n")
    assert len(problems) == 1
    assert "sipapp.transport.udp:1" in problems[0]
    assert "downward" in problems[0]


def test_checker_catches_upward_import_inside_a_function() -> None:
    """A deferred import inside a function body is an edge too."""
    source = "def f():\n    import sipapp.tap\n    return sipapp.tap\n"
    assert violations("sipapp.stats", source)


def test_checker_catches_upward_relative_import() -> None:
    """A relative import is resolved before its layer is checked."""
    assert violations("sipapp.sip.parser", "from ..transport import udp\n")
    assert violations("sipapp.transport", "from .. import tap\n", is_package=True)
    assert violations("sipapp.sip.parser", "from . import grammar\n") == []


def test_checker_catches_twisted_in_sip() -> None:
    """sipapp/sip may not import Twisted, not even its logger."""
    assert violations("sipapp.sip.message", "from twisted.logger import Logger\n")
    assert violations("sipapp.sip.message", "import twisted\n")
    assert violations("sipapp.transport.udp", "from twisted.logger import Logger\n") == []


@pytest.mark.parametrize(
    "source",
    [
        "from twisted.internet import reactor\n",
        "import twisted.internet.reactor\n",
        "from twisted.internet.reactor import callLater\n",
    ],
)
def test_checker_catches_global_reactor(source: str) -> None:
    """The global reactor is refused everywhere but in sipapp/tap.py."""
    assert violations("sipapp.proxy.core", source)
    assert violations("sipapp.tap", source) == []


def test_checker_catches_same_rank_import() -> None:
    """Two packages of the same rank may not import each other unless the pair is listed."""
    source = "from sipapp.auth.digest import check\n"
    assert violations("sipapp.registrar.store", source, allowed=frozenset())
    pair = frozenset({("registrar", "auth")})
    assert violations("sipapp.registrar.store", source, allowed=pair) == []
    assert violations("sipapp.interfaces", "from sipapp.config import Config\n")


def test_checker_accepts_downward_and_own_package_imports() -> None:
    """Imports from lower layers, the own package and the package root are fine."""
    source = (
        "from sipapp.sip import parse_message\n"
        "from sipapp.interfaces import IStats\n"
        "from sipapp.transport.source import Source\n"
        "from sipapp import __version__\n"
        "import attrs\n"
    )
    assert violations("sipapp.proxy.core", source) == []


def test_checker_reports_unknown_layer() -> None:
    """A new top-level package must be given a rank before it can be used."""
    problems = violations("sipapp.newthing.x", "")
    assert problems
    assert "LAYERS" in problems[0]


def test_testing_module_is_imported_by_nobody_in_the_package() -> None:
    """sipapp.testing sits above everything, so no package module may import it."""
    assert violations("sipapp.tap", "from sipapp.testing import FakeTransport\n")
    assert violations("sipapp.testing", "from sipapp.tap import makeService\n") == []
