"""The context manager on real scanned trees: modes, budgets, formats, bad input."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from llmstruct.engine.context import ContextError, ContextManager
from llmstruct.engine.gitstate import GitError
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions
from llmstruct.engine.tokens import TokenCounter
from llmstruct.store.structfile import StructFileError

COUNTER = TokenCounter()

PROJECT = {
    "shop/__init__.py": (
        '"""A small shop."""\nfrom .cart import Cart\n'
        '__all__ = ["Cart", "checkout"]\nfrom .orders import checkout\n'
    ),
    "shop/cart.py": (
        '"""Shopping carts."""\n\n'
        "from .pricing import apply_discount\n\n\n"
        "class Cart:\n"
        '    """Items a customer intends to buy."""\n\n'
        "    def __init__(self):\n        self.items = []\n\n"
        "    def add(self, sku, quantity=1):\n"
        '        """Put ``quantity`` of ``sku`` in the cart."""\n'
        "        self.items.append((sku, quantity))\n\n"
        "    def total(self, prices):\n"
        '        """Sum of the items at ``prices``, discounts applied."""\n'
        "        return apply_discount(sum(prices[s] * q for s, q in self.items))\n"
    ),
    "shop/pricing.py": (
        '"""Prices and discounts."""\n\n\n'
        "def apply_discount(amount):\n"
        '    """Ten percent off orders above one hundred."""\n'
        "    return amount * 0.9 if amount > 100 else amount\n"
    ),
    "shop/orders.py": (
        '"""Turning carts into orders."""\n\n'
        "from .cart import Cart\n\n\n"
        "def checkout(cart, prices):\n"
        '    """Charge the customer for the cart and return the order total."""\n'
        "    return cart.total(prices)\n"
    ),
    "tests/test_cart.py": "from shop.cart import Cart\n\n\ndef test_add():\n    Cart().add('x')\n",
}


def scanned(root: Path) -> ContextManager:
    build = scan_to_struct(ScanOptions(root))
    (root / "struct.json").write_bytes(build.data)
    return ContextManager(root / "struct.json", root=root)


@pytest.fixture
def shop(tree) -> ContextManager:
    return scanned(tree(PROJECT))


def test_focused_context_holds_the_answer_and_its_neighbours(shop) -> None:
    result = shop.build_context("FOCUSED", "how are discounts applied to prices", 4000)
    uids = dict(result.symbols)
    assert uids["shop.pricing#apply_discount"] == "full"
    assert "shop.cart#Cart.total" in uids  # its caller comes along
    assert "def apply_discount(amount):" in result.data
    assert result.optimization_applied and result.file_count >= 2


@pytest.mark.parametrize("mode", ["MINIMAL", "FOCUSED", "FULL", "SESSION"])
@pytest.mark.parametrize("fmt", ["md", "json", "xml"])
@pytest.mark.parametrize("budget", [0, 10, 60, 400, 5000])
def test_reported_tokens_are_tiktokens_count_and_within_budget(shop, mode, fmt, budget) -> None:
    result = shop.build_context(mode, "cart total", budget, format=fmt)
    assert result.token_count == COUNTER.count(result.data)
    assert result.token_count <= budget
    if fmt == "json" and result.data:
        json.loads(result.data)


def test_full_mode_puts_the_public_api_first(shop) -> None:
    result = shop.build_context("FULL", None, 120)
    shown = [uid for uid, _ in result.symbols]
    assert "shop.cart#Cart" in shown and "shop.orders#checkout" in shown
    assert "tests.test_cart#test_add" not in shown[:2]


def test_minimal_lists_modules_with_summaries(shop) -> None:
    result = shop.build_context("MINIMAL", None, 1000)
    assert "## Modules\n" in result.data
    assert "- shop/pricing.py: Prices and discounts." in result.data


def test_include_files_centres_the_context(shop) -> None:
    result = shop.build_context("FOCUSED", None, 4000, include_files=["shop/orders.py"])
    assert "shop.orders#checkout" in dict(result.symbols)


def test_results_are_cached_and_identical(shop) -> None:
    first = shop.build_context("FOCUSED", "cart", 500)
    hits = shop.cache.hits
    second = shop.build_context("FOCUSED", "cart", 500)
    assert shop.cache.hits == hits + 1 and second.data == first.data


def test_the_at_once_answers_are_the_cached_ones_and_never_wait(shop) -> None:
    # index_now / cached_context serve a server's event loop: an answer only when it
    # needs neither a parse, a build, nor waiting for another caller.
    assert shop.index_now() is None  # not loaded yet: index() must parse first
    assert shop.cached_context("FOCUSED", "cart", 500) is None
    built = shop.build_context("FOCUSED", "cart", 500)
    assert shop.index_now() == shop.index()
    assert shop.cached_context("FOCUSED", "cart", 500) is built
    assert shop.cached_context("FOCUSED", "cart", 501) is None  # a different key
    shop.build_context("SESSION", None, 500)
    assert shop.cached_context("SESSION", None, 500) is None  # its key needs git
    with pytest.raises(ContextError, match="budget"):
        shop.cached_context("FOCUSED", "cart", -1)
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(shop, held, release))
    holder.start()
    held.wait(30)
    try:
        assert shop.index_now() is None and shop.cached_context("FOCUSED", "cart", 500) is None
    finally:
        release.set()
        holder.join(30)
    struct = shop.struct_path
    struct.write_bytes(struct.read_bytes() + b" ")  # changed on disk: reload first
    assert shop.index_now() is None and shop.cached_context("FOCUSED", "cart", 500) is None


def test_with_a_recheck_window_an_outside_change_shows_within_it(shop, monkeypatch) -> None:
    # A server's at-once answers look at struct.json once per ``recheck_s``, not per
    # call; index() and builds always look, and recheck() makes the next call look.
    clock = [1000.0]
    monkeypatch.setattr("llmstruct.engine.context.time.monotonic", lambda: clock[0])
    shop.recheck_s = 1.0
    built = shop.build_context("FOCUSED", "cart", 500)
    assert shop.cached_context("FOCUSED", "cart", 500) is built  # looked: unchanged
    struct = shop.struct_path
    struct.write_bytes(struct.read_bytes() + b" ")
    clock[0] += 0.5
    assert shop.cached_context("FOCUSED", "cart", 500) is built  # within the window
    clock[0] += 0.6
    assert shop.index_now() is None  # the window is over: changed, reload first
    shop.index()
    assert shop.index_now() == shop.index()
    struct.write_bytes(struct.read_bytes() + b" ")
    assert shop.index_now() is not None  # looked a moment ago
    shop.recheck()
    assert shop.index_now() is None  # asked to look again: changed


def _hold(manager: ContextManager, held: threading.Event, release: threading.Event) -> None:
    """Hold the manager's lock, as a build in another thread does, until ``release``."""
    with manager._lock:
        held.set()
        release.wait(30)


def test_concurrent_callers_get_what_serial_callers_get(tree) -> None:
    # A server calls one ContextManager from executor threads (HTTP, WebSocket, the AI
    # bridge): concurrent cold builds and index reloads must equal the serial answers.
    from concurrent.futures import ThreadPoolExecutor

    requests = [(mode, hint, budget) for mode in ("MINIMAL", "FOCUSED", "FULL")
                for hint in ("cart", "discount", None) for budget in (300, 2000)]  # fmt: skip
    serial = scanned(tree(PROJECT))
    expected = [serial.build_context(*request).data for request in requests]
    shared = ContextManager(serial.struct_path, root=serial.root)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: shared.build_context(*r).data, requests * 4))
    assert answers == expected * 4


def test_hints_in_other_scripts_give_valid_output(shop) -> None:
    for hint in ("как применяется скидка", "折扣如何计算", "🛒"):
        result = shop.build_context("FOCUSED", hint, 300)
        assert result.token_count == COUNTER.count(result.data) <= 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "EVERYTHING"}, "invalid context mode"),
        ({"budget": -1}, "budget must be between"),
        ({"budget": "many"}, "whole number"),
        ({"format": "yaml"}, "invalid format"),
        ({"include_files": ["nope.py"]}, "not in the struct"),
    ],
)
def test_bad_requests_are_clear_errors(shop, kwargs, message) -> None:
    with pytest.raises(ContextError, match=message):
        shop.build_context(**kwargs)


def test_corrupt_struct_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "struct.json").write_text('{"metadata": ')
    with pytest.raises(StructFileError, match="not valid JSON"):
        ContextManager(tmp_path / "struct.json").build_context("MINIMAL")
    (tmp_path / "struct.json").write_text('{"modules": []}')
    with pytest.raises(StructFileError, match="not a struct.json"):
        ContextManager(tmp_path / "struct.json").build_context("MINIMAL")


def test_empty_repository_gives_a_valid_empty_context(tmp_path: Path) -> None:
    manager = scanned(tmp_path)
    for mode in ("MINIMAL", "FOCUSED", "FULL", "SESSION"):
        result = manager.build_context(mode, "anything", 200)
        assert result.token_count == COUNTER.count(result.data) <= 200
        assert result.symbols == []


def test_foreign_v21_struct_without_llmstruct_additions(tmp_path: Path) -> None:
    # A struct another v2.1 producer wrote: no signatures, byte ranges or token counts.
    foreign = {
        "metadata": {"project_name": "legacy", "version": "2024-01-01T00:00:00Z",
                     "schema_version": "2.1.0",
                     "stats": {"modules_count": 1, "functions_count": 1, "classes_count": 0,
                               "call_edges_count": 0}},
        "toc": [{"module_id": "app", "path": "app.py", "category": "core", "functions": 1,
                 "classes": 0}],
        "modules": [{"module_id": "app", "path": "app.py", "category": "core",
                     "functions": [{"name": "serve", "uid": "app#serve",
                                    "uid_components": ["app", "serve"],
                                    "parameters": ["port"], "docstring": "Serve forever.",
                                    "line_range": [1, 2]}],
                     "classes": [], "callgraph": {}, "dependencies": []}],
    }  # fmt: skip
    (tmp_path / "struct.json").write_text(json.dumps(foreign))
    (tmp_path / "app.py").write_text("def serve(port):\n    return port\n")
    result = ContextManager(tmp_path / "struct.json").build_context("FOCUSED", "serve", 500)
    assert dict(result.symbols) == {"app#serve": "full"}
    assert "def serve(port):" in result.data
    assert result.token_count == COUNTER.count(result.data)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_session_shows_what_changed_in_the_working_tree(tree) -> None:
    root = tree(PROJECT)
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    pricing = root / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef surcharge(amount):\n    return amount + 1\n")
    manager = scanned(root)
    session = dict(manager.build_context("SESSION", None, 2000).symbols)
    assert "shop.pricing#surcharge" in session and "shop.pricing#apply_discount" in session
    assert dict(manager.build_context("SESSION", None, 2000, since="HEAD").symbols) == session
    with pytest.raises(GitError, match="unknown git ref"):
        manager.build_context("SESSION", None, 2000, since="no-such-ref")


def test_session_outside_git_is_empty_not_an_error(shop) -> None:
    assert shop.build_context("SESSION", None, 1000).symbols == []


def test_session_includes_tasks_in_progress_and_what_they_mention(tree, tmp_path) -> None:
    from llmstruct.api.models import TaskCreateRequest, TaskUpdateRequest
    from llmstruct.store.tasks import TaskStore

    root = tree(PROJECT)
    (root / "struct.json").write_bytes(scan_to_struct(ScanOptions(root)).data)
    tasks = TaskStore(tmp_path / "tasks.db")
    task = tasks.create(TaskCreateRequest(title="Cap the discount at fifty", priority="high"))
    manager = ContextManager(root / "struct.json", root=root, tasks=tasks)
    assert manager.build_context("SESSION", None, 2000).symbols == []  # not started yet
    tasks.update(task.id, TaskUpdateRequest(status="in_progress"))
    result = manager.build_context("SESSION", None, 2000)
    assert "Tasks in progress:\n- Cap the discount at fifty\n" in result.data
    assert dict(result.symbols)["shop.pricing#apply_discount"] == "full"
    assert result.token_count == COUNTER.count(result.data)
