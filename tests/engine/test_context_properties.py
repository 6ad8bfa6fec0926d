"""Property: for any project, mode, budget and format, the context never exceeds
the budget as tiktoken counts it, reports exactly that count, and is the same
bytes on every run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmstruct.engine.context import ContextManager
from llmstruct.engine.project import scan_to_struct
from llmstruct.engine.scanner import ScanOptions
from llmstruct.engine.tokens import TokenCounter

COUNTER = TokenCounter()
NAMES = st.sampled_from(
    ["load", "save", "parse_args", "HTTPServer", "fetch", "render", "цена", "计算"]
)
WORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=40
)


@st.composite
def modules(draw) -> dict[str, str]:
    files = {}
    for number in range(draw(st.integers(1, 4))):
        module_doc = draw(WORDS).replace("\\", "/").replace('"', "'")
        lines = [f'"""{module_doc}"""' if draw(st.booleans()) else ""]
        for index in range(draw(st.integers(0, 5))):
            name = f"{draw(NAMES)}_{index}"
            doc = draw(WORDS).replace("\\", "/").replace('"', "'")
            callee = f"{draw(NAMES)}_{draw(st.integers(0, 5))}"
            body = "\n".join(
                f"    x{k} = {callee}({k!r}) + {draw(WORDS)!r}"
                for k in range(draw(st.integers(0, 8)))
            )
            lines.append(f'def {name}(a, b=1):\n    """{doc}"""\n{body or "    pass"}\n')
            if draw(st.booleans()):
                lines.append(f"class C{index}:\n    def m(self):\n        return {name}(1)\n")
        files[f"pkg/m{number}.py"] = "\n\n".join(lines) + "\n"
    return files


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=modules(),
    mode=st.sampled_from(["MINIMAL", "FOCUSED", "FULL", "SESSION"]),
    budget=st.integers(0, 3000),
    fmt=st.sampled_from(["md", "json", "xml"]),
    hint=st.one_of(st.none(), WORDS, NAMES),
)
def test_context_fits_counts_exactly_and_repeats(files, mode, budget, fmt, hint) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        (root / "struct.json").write_bytes(scan_to_struct(ScanOptions(root, workers=1)).data)
        runs = [
            ContextManager(root / "struct.json", root=root).build_context(
                mode, hint, budget, format=fmt
            )
            for _ in range(2)
        ]
    first, second = runs
    assert first.token_count == COUNTER.count(first.data)
    assert first.token_count <= budget
    assert first.data == second.data and first.symbols == second.symbols
