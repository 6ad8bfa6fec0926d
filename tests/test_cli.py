"""The ``llmstruct`` command as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest


def test_scan_writes_struct_json_and_prints_a_summary(tree, run_cli) -> None:
    root = tree({"app.py": "def main():\n    helper()\n\ndef helper():\n    pass\n"})
    done = run_cli("scan", str(root))
    assert done.returncode == 0, done.stderr
    assert re.search(r"Scanned 1 files \(1 parsed, 0 from cache\) in [\d.]+s", done.stdout)
    assert "functions 2, classes 0, call edges 1, errors 0, warnings 0, skipped 0" in done.stdout
    struct = json.loads((root / "struct.json").read_text())
    assert struct["modules"][0]["functions"][0]["calls"] == ["app#helper"]
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def test_second_scan_comes_from_the_cache(tree, run_cli) -> None:
    root = tree({"a.py": "x = 1\n", "b.py": "y = 2\n"})
    run_cli("scan", str(root))
    assert "(0 parsed, 2 from cache)" in run_cli("scan", str(root)).stdout
    assert "(2 parsed, 0 from cache)" in run_cli("scan", str(root), "--no-cache").stdout


def test_output_include_exclude_and_quiet(tree, run_cli, tmp_path: Path) -> None:
    root = tree({"src/a.py": "", "src/a_test.py": "", "other/b.py": ""})
    out = tmp_path / "out.json"
    done = run_cli(
        "scan", str(root), "-o", str(out), "--include", "src/", "--exclude", "*_test.py", "-q"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert [m["path"] for m in json.loads(out.read_text())["modules"]] == ["src/a.py"]


def test_config_file_extends_secrets(tree, run_cli) -> None:
    root = tree(
        {"llmstruct.toml": '[scan]\nsecret_patterns = ["vault*.py"]\n', "vault1.py": "", "a.py": ""}
    )
    assert run_cli("scan", str(root)).returncode == 0
    struct = json.loads((root / "struct.json").read_text())
    assert [m["path"] for m in struct["modules"]] == ["a.py"]
    assert struct["metadata"]["scan"]["skipped"] == [
        {"path": "vault1.py", "reason": "secret file pattern"}
    ]


def _one_clean_error(done, *fragments: str) -> None:
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmstruct: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_root_is_one_line_and_exit_2(run_cli, tmp_path: Path) -> None:
    _one_clean_error(run_cli("scan", str(tmp_path / "nope")), "no such directory")


def test_bad_glob_is_one_line_and_exit_2(tree, run_cli) -> None:
    _one_clean_error(run_cli("scan", str(tree({"a.py": ""})), "--exclude", "src/[x"), "pattern")


def test_output_into_missing_directory_is_one_line_and_exit_2(tree, run_cli, tmp_path) -> None:
    done = run_cli("scan", str(tree({"a.py": ""})), "-o", str(tmp_path / "no" / "s.json"))
    _one_clean_error(done, "does not exist")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere; a chmod cannot stop it")
def test_unwritable_output_is_one_line_and_exit_2(tree, run_cli, tmp_path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _one_clean_error(
        run_cli("scan", str(tree({"a.py": ""})), "-o", str(locked / "s.json")), "permission denied"
    )


def test_output_that_is_a_directory_is_one_line_and_exit_2(tree, run_cli, tmp_path) -> None:
    _one_clean_error(run_cli("scan", str(tree({"a.py": ""})), "-o", str(tmp_path)), "directory")


def test_bad_config_is_one_line_and_exit_2(tree, run_cli) -> None:
    root = tree({"llmstruct.toml": "[scan]\nexclud = []\n", "a.py": ""})
    _one_clean_error(run_cli("scan", str(root)), "unknown key scan.exclud")


def test_version_names_the_extension_build(run_cli) -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    expected = "py" if os.environ.get("LLMSTRUCT_NO_EXTENSIONS") else "c"
    twins = (
        f"app={expected}, assemble={expected}, csr={expected}, httphead={expected}, "
        f"llhttp={expected}, "
        f"lru={expected}, metrics={expected}, middleware={expected}, protocol={expected}, "
        f"request={expected}, router={expected}"
    )
    assert re.fullmatch(rf"llmstruct \S+ \(extensions: {twins}\)\n", done.stdout)


@pytest.mark.parametrize("args", [["--help"], ["scan", "--help"]])
def test_help_everywhere(run_cli, args) -> None:
    done = run_cli(*args)
    assert done.returncode == 0 and "usage: llmstruct" in done.stdout


def test_unknown_flag_is_a_usage_error(run_cli) -> None:
    done = run_cli("scan", "--bogus")
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr


# -- llmstruct context -----------------------------------------------------------------
CONTEXT_PROJECT = {
    "billing/invoice.py": (
        '"""Invoices."""\n\n\ndef total_due(lines, tax_rate):\n'
        '    """Sum the invoice lines and add tax."""\n'
        "    return round(sum(lines) * (1 + tax_rate), 2)\n"
    ),
    "billing/report.py": (
        "from .invoice import total_due\n\n\ndef monthly_report(invoices):\n"
        "    return [total_due(i, 0.2) for i in invoices]\n"
    ),
}


def test_context_scans_first_then_prints_context_and_a_summary(tree, run_cli) -> None:
    root = tree(CONTEXT_PROJECT)
    done = run_cli(
        "context", "--root", str(root), "--query", "invoice tax total", "--budget", "300"
    )
    assert done.returncode == 0, done.stderr
    assert "def total_due(lines, tax_rate):" in done.stdout
    assert (root / "struct.json").exists()
    summary = done.stderr.strip().splitlines()
    assert summary[0].startswith("llmstruct: no ") and "scanning" in summary[0]
    assert re.fullmatch(
        r"llmstruct: FOCUSED context: \d+/300 tokens, 2 files, \d+ symbols(, truncated)?",
        summary[-1],
    )


@pytest.mark.parametrize("fmt", ["md", "json", "xml"])
def test_context_formats_and_modes(tree, run_cli, fmt) -> None:
    root = tree(CONTEXT_PROJECT)
    run_cli("scan", str(root), "-q")
    for mode in ("minimal", "FULL", "focused"):
        done = run_cli("context", "--root", str(root), "--mode", mode, "--format", fmt)
        assert done.returncode == 0, done.stderr
        if fmt == "json":
            assert json.loads(done.stdout)["mode"] == mode.upper()


def test_context_with_a_struct_path_and_include_file(tree, run_cli, tmp_path) -> None:
    root = tree(CONTEXT_PROJECT)
    out = tmp_path / "s.json"
    run_cli("scan", str(root), "-o", str(out), "-q")
    done = run_cli(
        "context", "--root", str(root), "--struct", str(out), "--include-file", "billing/report.py"
    )
    assert done.returncode == 0 and "def monthly_report(invoices):" in done.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mode", "everything"], "invalid context mode"),
        (["--budget", "lots"], "--budget must be a whole number"),
        (["--budget", "-5"], "must not be negative"),
        (["--format", "yaml"], "invalid format"),
        (["--include-file", "missing.py"], "not in the struct"),
    ],
)
def test_context_bad_input_is_one_line_and_exit_2(tree, run_cli, args, fragment) -> None:
    root = tree(CONTEXT_PROJECT)
    run_cli("scan", str(root), "-q")
    _one_clean_error(run_cli("context", "--root", str(root), *args), fragment)


def test_context_on_a_corrupt_struct_is_one_line_and_exit_2(tree, run_cli) -> None:
    root = tree({**CONTEXT_PROJECT, "struct.json": "{not json"})
    _one_clean_error(run_cli("context", "--root", str(root)), "not valid JSON")


def test_context_budget_zero_and_ten_are_valid(tree, run_cli) -> None:
    root = tree(CONTEXT_PROJECT)
    for budget in ("0", "10"):
        done = run_cli("context", "--root", str(root), "--budget", budget)
        assert done.returncode == 0, done.stderr
        assert f"/{budget} tokens" in done.stderr


# -- llmstruct query (against a real OpenAI-compatible server on loopback) ---------------
def _query_env(base_url: str) -> dict[str, str]:
    return {"LLMSTRUCT_LLM_BASE_URL": base_url, "LLMSTRUCT_LLM_MODEL": "fake-model"}


def test_query_streams_the_answer(tree, run_cli, fake_llm) -> None:
    root = tree(CONTEXT_PROJECT)
    done = run_cli("query", "what does total_due return?", "--root", str(root),
                   env=_query_env(fake_llm.url))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "what does total_due return?" in done.stdout  # the fake echoes the question
    assert re.search(r"FOCUSED context \d+ tokens; model used \d+ tokens", done.stderr)
    system = fake_llm.requests[-1].json["messages"][0]["content"]
    assert "def total_due(lines, tax_rate):" in system


def test_query_with_the_backend_down_is_one_line_and_exit_1(tree, run_cli) -> None:
    from fakellm import unused_port

    root = tree(CONTEXT_PROJECT)
    env = {**_query_env(f"http://127.0.0.1:{unused_port()}/v1"), "LLMSTRUCT_LLM_RETRIES": "0"}
    done = run_cli("query", "anything", "--root", str(root), env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("llmstruct: error: ")
    assert "Traceback" not in done.stderr


def test_query_without_a_backend_configured_is_a_usage_error(tree, run_cli) -> None:
    root = tree(CONTEXT_PROJECT)
    done = run_cli("query", "anything", "--root", str(root), env={"LLMSTRUCT_LLM_BASE_URL": ""})
    _one_clean_error(done, "LLMSTRUCT_LLM_BASE_URL")
