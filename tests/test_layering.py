"""The import graph: no cycle inside the package, and the gateway stays sans-IO.

Every import statement counts wherever it stands: at the top, under
``if TYPE_CHECKING:`` or inside a function (a lazy import is still a dependency).
The gateway imports nothing above it and needs only the core dependencies; a missing
extra is named in the ImportError (`pip install 'chatcore[extra]'`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
GATEWAY = SRC / "chatcore" / "gateway"

OPTIONAL = (
    "jwt",
    "starlette",
    "uvicorn",
    "picows",
    "websockets",
    "prometheus_client",
    "redis",
    "aiokafka",
    "cassandra",
    "typer",
    "filetype",
    "PIL",
    "boto3",
    "botocore",
    "httpx",
    "pywebpush",
    "py_vapid",
    "cryptography",
    "opentelemetry",
)
"""The extras' packages: importing the gateway must not need any of them."""

CORE_DEPS = {"anyio", "msgspec", "typing_extensions"}
ABOVE = ("chatcore.pipeline", "chatcore.node", "chatcore.server", "chatcore.log", "chatcore.store")
BACKENDS = ("redis", "memory", "sqlite", "kafka", "cassandra")


REFUSING_FINDER = """
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
"""


def import_without(modules: str, blocked: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Import ``modules`` in a fresh interpreter where the ``blocked`` packages are missing."""
    script = f"BLOCKED = {tuple(blocked)!r}\n{REFUSING_FINDER}\nimport {modules}\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_the_gateway_imports_without_the_extras() -> None:
    gateway = "chatcore.gateway.session, chatcore.gateway, chatcore.gateway.convert"
    done = import_without(gateway, OPTIONAL)
    assert done.returncode == 0, done.stderr


def test_the_core_imports_without_any_extra() -> None:
    done = import_without("chatcore, chatcore.node, chatcore.backends, chatcore.push", OPTIONAL)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("chatcore.client", "websockets", "client"),
        ("chatcore.server", "starlette", "server"),
        ("chatcore.server.auth", "jwt", "server"),
        ("chatcore.server.run", "uvicorn", "server"),
        ("chatcore.server.native", "picows", "server"),
        ("chatcore.server", "prometheus_client", "server"),
        ("chatcore.cli", "typer", "server"),
        ("chatcore.log.kafka", "aiokafka", "kafka"),
        ("chatcore.store.cassandra", "cassandra", "cassandra"),
        ("chatcore.presence.redis", "redis", "redis"),
        ("chatcore.registry.redis", "redis", "redis"),
        ("chatcore.bus.redis", "redis", "redis"),
        ("chatcore.uploads.redis", "redis", "redis"),
        ("chatcore.server.media", "PIL", "media"),
        ("chatcore.media", "filetype", "media"),
        ("chatcore.media.thumbnail", "PIL", "media"),
        ("chatcore.media.s3", "boto3", "s3"),
        ("chatcore.push.webhook", "httpx", "push"),
        ("chatcore.push.webpush", "pywebpush", "push"),
        ("chatcore.push.webpush", "py_vapid", "push"),
        ("chatcore.push.fcm", "jwt", "push"),
        ("chatcore.push.apns", "cryptography", "push"),
        ("chatcore.push.redis", "redis", "redis"),
        ("chatcore.keys.redis", "redis", "redis"),
        ("chatcore.e2ee.scheme", "cryptography", "e2ee"),
        ("chatcore.push.cassandra", "cassandra", "cassandra"),
        ("chatcore.push.fcm", "httpx", "push"),
        ("chatcore.testing", "pytest", "testing"),
        ("chatcore.testing", "hypothesis", "testing"),
    ],
)
def test_a_missing_extra_names_itself(module: str, blocked: str, extra: str) -> None:
    done = import_without(module, [blocked])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:"), done.stderr
    assert f"needs {blocked}: pip install 'chatcore[{extra}]'" in last, done.stderr


def test_tracing_without_opentelemetry_names_its_extra() -> None:
    done = import_without(
        "chatcore.node, chatcore.telemetry.tracing; chatcore.telemetry.tracing.Tracing()",
        ["opentelemetry"],
    )
    last = done.stderr.strip().splitlines()[-1]
    assert "needs opentelemetry: pip install 'chatcore[tracing]'" in last, done.stderr


def _imported(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    """Every module an import statement names (anywhere, ``TYPE_CHECKING`` included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            yield node.lineno, base
            for alias in node.names:  # `from chatcore import node` names a module too
                yield node.lineno, f"{base}.{alias.name}"


def _forbidden(module: str) -> str | None:
    top = module.split(".")[0]
    if top != "chatcore":
        if top in CORE_DEPS or top in sys.stdlib_module_names or top == "__future__":
            return None
        return "a package outside the core dependencies"
    for above in ABOVE:
        if module == above or module.startswith(above + "."):
            return f"{above} (the gateway sits below it)"
    if module.split(".")[-1] in BACKENDS:
        return "a backend adapter"
    return None


@pytest.mark.parametrize("path", sorted(GATEWAY.glob("*.py")), ids=lambda p: p.name)
def test_the_gateway_imports_nothing_above_it(path: Path) -> None:
    package = "chatcore.gateway"
    tree = ast.parse(path.read_text(), filename=str(path))
    wrong = [
        f"{path.name}:{line}: {module}: {why}"
        for line, module in _imported(tree, package)
        if (why := _forbidden(module)) is not None
    ]
    assert not wrong, "\n".join(wrong)


def test_the_layering_check_sees_what_it_forbids() -> None:
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING
        import jwt
        from chatcore import node
        from ..pipeline.events import Event
        from chatcore.presence.redis import RedisPresenceStore
        if TYPE_CHECKING:
            from chatcore.server.app import ChatServer
        """
    )
    found = {m for _, m in _imported(ast.parse(source), "chatcore.gateway") if _forbidden(m)}
    assert found >= {
        "jwt",
        "chatcore.node",
        "chatcore.pipeline.events",
        "chatcore.presence.redis",
        "chatcore.server.app",
    }


Graph = dict[str, set[str]]


def import_graph(src: Path = SRC) -> Graph:
    """Module -> the package's modules it imports (``a.b`` for ``from a import b``)."""
    paths = {}
    for path in (src / "chatcore").rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: Graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = {m for _, m in _imported(tree, package) if m in paths and m != name}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_inside_the_package() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_cycles_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set[str]()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    sub = tmp_path / "chatcore" / "sub"
    sub.mkdir(parents=True)
    (tmp_path / "chatcore" / "__init__.py").write_text("")
    (sub / "__init__.py").write_text("from . import low\n")
    (sub / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chatcore.top import X\n"
    )
    (tmp_path / "chatcore" / "top.py").write_text("def f():\n    from .sub.low import Y\n")
    graph = import_graph(tmp_path)
    assert graph["chatcore.sub"] == {"chatcore.sub.low"}
    assert graph["chatcore.sub.low"] == {"chatcore.top"}
    assert graph["chatcore.top"] == {"chatcore.sub.low"}
    assert cycles(graph) == [["chatcore.sub.low", "chatcore.top"]]
