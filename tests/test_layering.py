"""The gateway stays sans-IO: it imports nothing above it and needs only the core deps."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "src" / "chatcore" / "gateway"

OPTIONAL = (
    "jwt",
    "starlette",
    "uvicorn",
    "websockets",
    "prometheus_client",
    "redis",
    "aiokafka",
    "cassandra",
    "typer",
)
"""The extras' packages: importing the gateway must not need any of them."""

CORE_DEPS = {"anyio", "msgspec", "typing_extensions"}
ABOVE = ("chatcore.pipeline", "chatcore.node", "chatcore.server", "chatcore.log", "chatcore.store")
BACKENDS = ("redis", "memory", "sqlite", "kafka", "cassandra")


def test_the_gateway_imports_without_the_extras() -> None:
    script = textwrap.dedent(
        f"""
        import sys

        BLOCKED = {OPTIONAL!r}

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Refuse())
        import chatcore.gateway.session
        import chatcore.gateway
        import chatcore.gateway.convert
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


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
