"""Every example in docs/operations.md runs against a real node and does what the docs say.

An example nobody runs rots silently, so this module executes the guide as a reader
would, top to bottom, against one node started with the guide's own quick-start block:

* each ```bash block runs in bash (``set -euo pipefail``), with the guide's
  ``localhost:8080`` / ``localhost:9090`` / ``logs/`` rewritten to the test node, and
  ``HEDGEGRID_API_KEY`` set as the quick start sets it. ``curl`` gets
  ``--fail-with-body`` so an HTTP error fails the example, unless the guide shows an
  error answer for it;
* a ```json block right after a bash block is the documented answer: the real answer
  must have every documented key, recursively, with a value of the same JSON type (and
  the same ``error`` code for error examples); a ```text block must start like the
  real output;
* the Prometheus server example starts the real server with the shipped config;
* ```python blocks run as scripts; ```promql blocks are run by test_prometheus_e2e.py.

The flag table is compared with ``run --help`` and the metric tables with the series
the node really exports. Tools the examples call (curl, jq, promtool, prometheus,
openssl) are skipped without them, and a failure under HEDGEGRID_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hedgegrid_ops.cli import build_parser
from tests.support.ports import free_port
from tests.support.program import ROOT, RunningService, program, program_env, running_program
from tests.tools import require_tool, stop_process

pytestmark = pytest.mark.e2e

OPERATIONS = ROOT / "docs" / "operations.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DOC_API = "http://localhost:8080"
DOC_METRICS = "http://localhost:9090"
TOOLS = ("curl", "jq", "promtool", "prometheus", "openssl", "amtool")
RESPONSE_LANGS = {"json", "text"}


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int  # 1-based line of the opening fence


@dataclass(frozen=True)
class Example:
    block: Block
    expected: Block | None  # the ```json / ```text block right after it

    @property
    def id(self) -> str:
        first = next(ln for ln in self.block.body.splitlines() if ln.strip())
        words = re.sub(r"[^\w./-]+", " ", first).split()[:4]
        return f"L{self.block.line}-" + "-".join(words)


_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")


def parse_blocks(text: str) -> list[Block]:
    """Fenced blocks, including those indented inside list items (dedented)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = opening.group("indent")
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != f"{indent}```":
            end += 1
        assert end < len(lines), f"unclosed code fence at line {i + 1}"
        body = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        blocks.append(Block(opening.group("lang"), body, i + 1))
        i = end + 1
    return blocks


def examples(text: str) -> list[Example]:
    blocks = parse_blocks(text)
    out = []
    for i, block in enumerate(blocks):
        if block.lang != "bash":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        out.append(Example(block, nxt if nxt and nxt.lang in RESPONSE_LANGS else None))
    return out


def joined_commands(body: str) -> list[str]:
    """Shell lines with backslash continuations joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", body)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def is_run_block(block: Block) -> bool:
    return any("hedgegrid_ops run" in c for c in joined_commands(block.body))


def is_prometheus_block(block: Block) -> bool:
    return any(c.startswith("prometheus ") for c in joined_commands(block.body))


DOC_TEXT = OPERATIONS.read_text(encoding="utf-8") if OPERATIONS.exists() else ""
EXAMPLES = examples(DOC_TEXT)
SHELL_EXAMPLES = [e for e in EXAMPLES if not is_run_block(e.block)]


# --------------------------------------------------------------------------- helpers


def tools_called(body: str) -> list[str]:
    return [
        t
        for t in TOOLS
        if re.search(rf"(?m)(?:^|[|;&(]|\$\(|\b(?:until|while|if|then|do)\s)\s*{t}(?=\s|$)", body)
    ]


def base_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_shape(documented: Any, real: Any, where: str = "$") -> None:
    """``real`` has every key of ``documented``, recursively, with the same JSON type.

    ``null`` on either side matches anything (nullable fields: ``rung`` of an exit,
    ``mid_price`` before the first quote); list items are compared with the first
    documented item when both lists are non-empty.
    """
    if documented is None or real is None:
        return
    assert json_type(documented) == json_type(real), (
        f"{where}: documented {documented!r}, got {real!r}"
    )
    if isinstance(documented, dict):
        missing = sorted(set(documented) - set(real))
        assert not missing, f"{where}: documented keys missing from the answer: {missing}"
        for key, value in documented.items():
            assert_shape(value, real[key], f"{where}.{key}")
    elif isinstance(documented, list) and documented and real:
        for i, item in enumerate(real):
            assert_shape(documented[0], item, f"{where}[{i}]")


def rewrite(body: str, node: Node) -> str:
    text = body.replace(DOC_API, node.service.api_url)
    text = text.replace(DOC_METRICS, base_url(node.service.metrics_url))
    return re.sub(r"(?<![\w/.-])logs/", f"{node.service.log_dir}/", text)


def shell_env(node: Node) -> dict[str, str]:
    env = program_env(HEDGEGRID_API_KEY=node.api_key, HEDGEGRID_URL=node.service.api_url)
    env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


# --------------------------------------------------------------------------- the node


@dataclass
class Node:
    service: RunningService
    api_key: str
    tmp: Path


def quick_start() -> tuple[list[str], list[str]]:
    """The quick-start block: (shell lines before the run command, run's arguments)."""
    runs = [e.block for e in EXAMPLES if is_run_block(e.block)]
    assert len(runs) == 1, "docs/operations.md must have exactly one `run` example (quick start)"
    setup: list[str] = []
    for command in joined_commands(runs[0].body):
        if "hedgegrid_ops run" in command:
            words = shlex.split(command)
            return setup, words[words.index("run") + 1 :]
        setup.append(command)
    raise AssertionError("unreachable")


def without_port_flags(args: list[str]) -> list[str]:
    """The test picks its own ports and log dir; the quick start's other flags stay."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in {"--api-port", "--prometheus-port", "--log-dir"}:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not EXAMPLES:
        pytest.fail("docs/operations.md is missing or has no bash examples")
    setup, run_args = quick_start()
    for tool in tools_called("\n".join(setup)):
        require_tool(tool)
    # Run the quick start's own set-up lines (the key export) to get the key it makes.
    made = subprocess.run(
        [
            "bash",
            "-c",
            "set -euo pipefail\n" + "\n".join(setup) + '\nprintf %s "$HEDGEGRID_API_KEY"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    api_key = made.stdout
    assert len(api_key) >= 32, "the quick start should create a strong HEDGEGRID_API_KEY"
    tmp = tmp_path_factory.mktemp("docs")
    args = [*without_port_flags(run_args), "--prometheus-port", str(free_port())]
    with running_program(tmp, *args, env={"HEDGEGRID_API_KEY": api_key}) as svc:
        assert any(r.get("auth") == "X-API-Key required" for r in svc.lines), svc.lines[-5:]
        deadline = time.monotonic() + 30
        while True:  # the examples expect a node that has processed bars
            try:
                with urllib.request.urlopen(f"{svc.api_url}/health", timeout=5) as resp:
                    if json.load(resp)["status"] == "healthy":
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "the node never became healthy"
            time.sleep(0.25)
        yield Node(svc, api_key, tmp)


# --------------------------------------------------------------------------- the examples


def run_prometheus_example(example: Example, node: Node) -> None:
    """Start the documented Prometheus command (ports and storage moved to the test's)."""
    require_tool("prometheus")
    (command,) = [c for c in joined_commands(example.block.body) if c.startswith("prometheus ")]
    words = shlex.split(command)
    url = f"127.0.0.1:{free_port()}"
    moved = {"--web.listen-address": url, "--storage.tsdb.path": str(node.tmp / "tsdb")}
    args = [
        f"{w.split('=', 1)[0]}={moved[w.split('=', 1)[0]]}" if w.split("=", 1)[0] in moved else w
        for w in words
    ]
    assert {a.split("=", 1)[0] for a in args} >= set(moved), command
    log = node.tmp / "prometheus-docs.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://{url}/api/v1/rules", timeout=2) as resp:
                    groups = json.load(resp)["data"]["groups"]
                if groups:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.25)
        loaded = {r["name"] for g in groups for r in g["rules"]}
        rules = yaml.safe_load((ROOT / "configs/prometheus/alerts.yml").read_text())
        assert loaded == {r["alert"] for g in rules["groups"] for r in g["rules"]}
    finally:
        stop_process(proc)


def check_answer(example: Example, stdout: str) -> None:
    expected = example.expected
    if expected is None:
        return
    if expected.lang == "json":
        documented = json.loads(expected.body)
        try:
            real = json.loads(stdout)
        except json.JSONDecodeError:
            pytest.fail(f"not one JSON document: {stdout[:500]!r}")
        assert_shape(documented, real)
        if "error" in documented:
            assert real["error"] == documented["error"], real
        return
    documented_words = expected.body.split()
    real_words = stdout.split()
    assert real_words, "no output"
    assert real_words[0] == documented_words[0], f"output starts {stdout[:200]!r}"
    for name in set(re.findall(r"\bhedgegrid_\w+", expected.body)):
        assert name in stdout, f"{name} not in the output"


@pytest.mark.parametrize("example", SHELL_EXAMPLES, ids=lambda e: e.id)
def test_example(example: Example, node: Node) -> None:
    for tool in tools_called(example.block.body):
        require_tool(tool)
    if is_prometheus_block(example.block):
        run_prometheus_example(example, node)
        return
    shows_error = (
        example.expected is not None
        and example.expected.lang == "json"
        and "error" in json.loads(example.expected.body)
    )
    prelude = "set -euo pipefail\n"
    if not shows_error:
        prelude += 'curl() { command curl --fail-with-body "$@"; }\n'
    result = subprocess.run(
        ["bash", "-c", prelude + rewrite(example.block.body, node)],
        cwd=ROOT,
        env=shell_env(node),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    check_answer(example, result.stdout)


PYTHON_BLOCKS = [b for b in parse_blocks(DOC_TEXT) if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: f"L{b.line}-python")
def test_python_example(block: Block, node: Node) -> None:
    result = subprocess.run(
        [sys.executable, "-c", rewrite(block.body, node)],
        cwd=ROOT,
        env=shell_env(node),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the example printed nothing"
    if "Total PnL" in block.body:  # the operations guide's usage example
        assert re.fullmatch(r"Total PnL: -?\d+(\.\d+)?(e-?\d+)? USDT", result.stdout.strip())


# --------------------------------------------------------------------------- structure


def test_every_example_block_is_run_by_some_test() -> None:
    blocks = parse_blocks(DOC_TEXT)
    assert {b.lang for b in blocks} <= {"bash", "json", "text", "python", "promql"}
    for i, block in enumerate(blocks):
        if block.lang in RESPONSE_LANGS:
            # an answer must belong to a command; an orphan would be checked by nobody
            assert i > 0 and blocks[i - 1].lang == "bash", (
                f"orphan {block.lang} at line {block.line}"
            )
    assert len([e for e in EXAMPLES if is_run_block(e.block)]) == 1


def test_architecture_page_has_no_unrun_examples_and_names_real_modules() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert {b.lang for b in parse_blocks(text)} <= {"text"}, "diagrams only"
    named = set(re.findall(r"hedgegrid_ops/[\w/]+\.py", text))
    assert named, "the module map names no module"
    for path in named:
        assert (ROOT / path).is_file(), f"architecture.md names a missing module {path}"
    # every module is named, or its package is (e.g. hedgegrid_ops/grid/)
    packages = set(re.findall(r"hedgegrid_ops/[\w/]+/(?![\w/])", text))
    unmapped = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "hedgegrid_ops").rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
        and str(p.relative_to(ROOT)) not in named
        and not any(str(p.relative_to(ROOT)).startswith(d) for d in packages)
    }
    assert not unmapped, f"modules missing from the module map: {sorted(unmapped)}"


def _table_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| `") and re.match(first_cell, line[2:]):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            rows.append(cells)
    return rows


def test_run_flags_table_matches_run_help() -> None:
    result = subprocess.run(
        program("run", "--help"), cwd=ROOT, env=program_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    in_help = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.stdout)) - {"--help"}
    rows = {r[0].strip("`").split()[0]: r for r in _table_rows(DOC_TEXT, r"`--")}
    assert set(rows) == in_help, f"doc-only {set(rows) - in_help}, help-only {in_help - set(rows)}"

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    run_parser = commands.choices["run"]
    for action in run_parser._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None or flag == "--help":
            continue
        default_cell = rows[flag][1]
        if action.default in (None, False, []):  # [] = a repeatable flag given no times
            assert "`" not in default_cell, f"{flag}: no default, the table says {default_cell}"
            continue
        shown = default_cell.strip("`")
        if isinstance(action.default, int | float):
            assert float(shown) == float(action.default), flag
        else:
            assert shown == str(action.default), flag
        assert rows[flag][2], f"{flag} is not explained"


def _live_metrics(url: str) -> dict[str, tuple[str, set[str]]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, flags=re.M))
    labels: dict[str, set[str]] = {name: set() for name in types}
    for name, label_text in re.findall(r"^(\w+)\{([^}]*)\}", body, flags=re.M):
        base = next((t for t in types if name == t or name.startswith(t + "_")), name)
        labels.setdefault(base, set()).update(re.findall(r"(\w+)=", label_text))
    return {n: (types[n], labels[n] - {"instrument", "le"}) for n in types}


def test_metric_tables_match_the_exported_series(node: Node) -> None:
    # one request of each kind first, so the request series exist
    urllib.request.urlopen(f"{node.service.api_url}/health", timeout=5).close()
    live = _live_metrics(node.service.metrics_url)
    rows = {r[0].strip("`"): r for r in _table_rows(DOC_TEXT, r"`(?:hedgegrid|process)_")}
    assert set(rows) == set(live), (
        f"undocumented: {sorted(set(live) - set(rows))}; "
        f"documented but not exported: {sorted(set(rows) - set(live))}"
    )
    for name, (kind, labels) in live.items():
        _, doc_kind, unit, doc_labels, meaning = rows[name]
        assert doc_kind == kind, f"{name}: documented {doc_kind}, exported {kind}"
        assert unit and meaning, f"{name}: unit and meaning must be given"
        named = set(re.findall(r"`(\w+)", doc_labels))
        assert named == labels, f"{name}: documented labels {named}, exported {labels}"


def test_every_route_has_a_section(node: Node) -> None:
    with urllib.request.urlopen(f"{node.service.api_url}/openapi.json", timeout=10) as resp:
        spec = json.load(resp)
    headings = re.findall(r"^###.*$", DOC_TEXT, flags=re.M)
    for path, operations in spec["paths"].items():
        if path.startswith("/docs/static"):
            continue  # the Swagger UI's own files
        for method in operations:
            assert any(f"{method.upper()} {path}" in h for h in headings), (
                f"no section for {method.upper()} {path}"
            )
