"""Every command a newcomer copies from README.md is one that CI exercises.

A `make X` must be a Makefile target that `make test` (what .ci/run runs) reaches, or that a
GitHub workflow or a test runs. Any other command must appear, with its subcommand, its options,
values files and OCI reference or URL path, in one file that CI runs: a ci/ script, a test, a
workflow or the Makefile.
"""

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = {"sh", "bash", "shell", "console"}
# Commands that only move the reader around or set a variable: nothing to exercise.
NO_OP = {"cd", "export", "source", "."}
TARGET_LINE = re.compile(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)\s*(.*)$")


def shell_blocks(markdown: str) -> Iterator[str]:
    fence, lang, body = None, "", []
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is None:
            if m := re.match(r"^(`{3,}|~{3,})\s*([\w-]*)", stripped):
                fence, lang, body = m[1], m[2].lower(), []
        elif stripped.startswith(fence):
            if lang in SHELL_FENCES:
                yield "\n".join(body)
            fence = None
        else:
            body.append(line)


def commands(block: str) -> Iterator[str]:
    """Each simple command of a shell block: continuations joined, prompts and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    for raw in joined.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token and set(token) <= set(";&|"):
                if words:
                    yield shlex.join(words)
                words = []
            else:
                words.append(token)
        if words:
            yield shlex.join(words)


def strip_env(words: list[str]) -> list[str]:
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    return words


def signature(command: str) -> list[str]:
    """What a CI file must contain for `command` to count as exercised."""
    words = strip_env(shlex.split(command))
    sig = [words[0]]
    rest = words[1:]
    if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]):
        sig.append(rest[0])
    for word in rest:
        if word.startswith("-"):
            sig.append(word.split("=", 1)[0])
        elif word.endswith((".yaml", ".yml")):
            sig.append(word)
        elif word.startswith("oci://"):
            sig.append(word.split(":", 2)[0] + ":" + word.split(":", 2)[1])
        elif m := re.match(r"^https?://[^/\s]+(/[^?\s]*)", word):
            sig.append(re.sub(r"/[0-9a-f-]{36}", "/", m[1]))
    return sig


def makefile_graph(makefile: str) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for line in makefile.splitlines():
        if line.startswith(("\t", "#", ".")):
            continue
        if m := TARGET_LINE.match(line):
            prereqs = m[2].split("##", 1)[0].split()
            for target in m[1].split():
                graph.setdefault(target, []).extend(prereqs)
    return graph


def recipe_scripts(makefile: str) -> dict[str, list[str]]:
    """The ci/ scripts each target's recipe runs."""
    scripts: dict[str, list[str]] = {}
    targets: list[str] = []
    for line in makefile.splitlines():
        if line.startswith("\t"):
            for target in targets:
                scripts.setdefault(target, []).extend(re.findall(r"\bci/[\w.-]+\.sh\b", line))
        elif m := TARGET_LINE.match(line):
            targets = m[1].split()
        elif line.strip():
            targets = []
    return scripts


def target_is_run(target: str, scripts: list[str], workflows: str, tests: str) -> bool:
    """A workflow runs `make TARGET`, or a test runs it (argv form) or runs its recipe's script."""
    t = re.escape(target)
    if re.search(rf"^\s*(-\s+)?run:\s*make\s+{t}\s*$", workflows, re.M):
        return True
    if re.search(rf"[\"']make[\"'],\s*[\"']{t}[\"']", tests):
        return True
    return any(re.search(rf"[\"'/]{re.escape(Path(s).name)}[\"']", tests) for s in scripts)


def scripts_run_by(targets: set[str], recipes: dict[str, list[str]], root: Path) -> set[str]:
    """The ci/ scripts that running `targets` runs: their recipes and what those scripts call."""
    todo = [s for t in targets for s in recipes.get(t, [])]
    seen: set[str] = set()
    while todo:
        script = todo.pop()
        if script in seen or not (root / script).is_file():
            continue
        seen.add(script)
        todo += re.findall(r"\bci/[\w.-]+\.sh\b", (root / script).read_text())
    return seen


def aggregates_tested_targets(
    target: str, graph: dict[str, list[str]], scripts: dict[str, list[str]], tested: set[str]
) -> bool:
    """A target with no recipe of its own whose prerequisites `make test` all reaches."""
    prereqs = graph.get(target, [])
    return not scripts.get(target) and bool(prereqs) and set(prereqs) <= tested


def reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        target = stack.pop()
        if target not in seen:
            seen.add(target)
            stack.extend(graph.get(target, []))
    return seen


def ci_files(root: Path) -> list[Path]:
    files = [*root.glob("ci/**/*.sh"), *root.glob("tests/**/*.py"), *root.glob(".github/**/*.yml")]
    files += [root / "Makefile", root / ".ci" / "run"]
    return [f for f in files if f.is_file() and f.resolve() != Path(__file__).resolve()]


def section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    return match[1] if match else ""


# README sections whose commands a test runs exactly as written, by the test that does it:
# tests/ci/test_readme_api.py against a real service, tests/chart/test_gitops.py with pinned helm.
RUN_LIVE = {
    "API": "tests/ci/test_readme_api.py",
    "GitOps (Argo CD and Flux)": "tests/chart/test_gitops.py",
}


def run_live(readme: str, root: Path) -> set[str]:
    """Commands of the README sections in RUN_LIVE whose test is there: they count as exercised."""
    return {
        c
        for heading, test in RUN_LIVE.items()
        if (root / test).is_file()
        for block in shell_blocks(section(readme, heading))
        for c in commands(block)
    }


def unexercised(readme: str, root: Path) -> list[str]:
    """README commands that nothing CI runs exercises, each with the reason."""
    live = run_live(readme, root)
    makefile = (root / "Makefile").read_text()
    graph = makefile_graph(makefile)
    scripts = recipe_scripts(makefile)
    run_by_make_test = reachable(graph, "test")
    scripts_of_make_test = scripts_run_by(run_by_make_test, scripts, root)
    texts = {f: f.read_text(errors="replace") for f in ci_files(root)}
    workflows = "\n".join(t for f, t in texts.items() if ".github" in f.parts)
    tests = "\n".join(t for f, t in texts.items() if "tests" in f.parts)
    missing = []
    for block in shell_blocks(readme):
        for command in commands(block):
            words = strip_env(shlex.split(command))
            if not words or words[0] in NO_OP or command in live:
                continue
            if words[0] == "make":
                for target in [w for w in words[1:] if not w.startswith("-") and "=" not in w]:
                    if target not in graph:
                        missing.append(f"{command}: no Makefile target {target!r}")
                    elif (
                        target not in run_by_make_test
                        and not (set(scripts.get(target, [])) or {""}) <= scripts_of_make_test
                        and not target_is_run(target, scripts.get(target, []), workflows, tests)
                        and not aggregates_tested_targets(target, graph, scripts, run_by_make_test)
                    ):
                        missing.append(
                            f"{command}: neither `make test` nor a workflow/test runs it"
                        )
                continue
            sig = signature(command)
            if not any(all(part in text for part in sig) for text in texts.values()):
                missing.append(f"{command}: no ci/ script, test or workflow contains {sig}")
    return missing


def test_readme_tells_the_test_command_that_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    found = {c for block in shell_blocks(readme) for c in commands(block)}
    assert "make test" in found
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("doc", ["README.md", "docs/development.md"])
def test_every_readme_command_is_exercised_by_ci(doc: str) -> None:
    """The README and the development page it links to: both are read by newcomers."""
    assert unexercised((ROOT / doc).read_text(), ROOT) == []


@pytest.mark.parametrize("doc", ["README.md", "docs/development.md"])
def test_every_relative_link_resolves(doc: str) -> None:
    path = ROOT / doc
    targets = re.findall(r"\]\((?![a-z]+:|#)([^)\s#]+)", path.read_text())
    assert targets
    assert [t for t in targets if not (path.parent / t).exists()] == []


# The checker itself, on a README and repository made up for the purpose: it must be able to fail.

FAKE_MAKEFILE = """\
.PHONY: test lint run orphan
test: lint ## all
lint: ## lint
\tci/lint.sh
run: ## run
\tci/run.sh
orphan: ## nobody runs this
\tci/orphan.sh
"""


def fake_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"Makefile": FAKE_MAKEFILE, **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def fenced(*lines: str) -> str:
    return "```sh\n" + "\n".join(lines) + "\n```\n"


def test_checker_accepts_targets_reached_from_test_or_run_by_a_workflow(tmp_path: Path) -> None:
    root = fake_repo(tmp_path, {".github/workflows/ci.yml": "steps:\n  - run: make run\n"})
    assert unexercised(fenced("make test", "make lint  # comment", "$ make run"), root) == []


def test_checker_accepts_a_test_that_runs_the_targets_script_not_a_mere_mention(
    tmp_path: Path,
) -> None:
    readme = fenced("make run")
    mention = fake_repo(tmp_path, {"tests/t.py": '"""`make run` starts the API."""\n'})
    assert unexercised(readme, mention) != []
    (tmp_path / "tests/t.py").write_text('subprocess.Popen([str(ROOT / "ci" / "run.sh")])\n')
    assert unexercised(readme, mention) == []


def test_checker_accepts_a_target_whose_script_a_make_test_script_runs(tmp_path: Path) -> None:
    readme = fenced("make orphan")
    root = fake_repo(tmp_path, {"ci/lint.sh": "echo lint\n", "ci/orphan.sh": "echo up\n"})
    assert unexercised(readme, root) != []
    (tmp_path / "ci/lint.sh").write_text('"$REPO_ROOT/ci/orphan.sh"\n')
    assert unexercised(readme, root) == []


def test_checker_rejects_unknown_and_unexercised_make_targets(tmp_path: Path) -> None:
    root = fake_repo(tmp_path, {})
    problems = unexercised(fenced("make orphan", "make nonexistent", "make run"), root)
    assert len(problems) == 3
    assert "no Makefile target 'nonexistent'" in problems[1]


def test_checker_needs_subcommand_options_and_oci_ref_in_one_file(tmp_path: Path) -> None:
    readme = fenced(
        "helm install tm oci://ghcr.io/task-manager/charts/task-manager \\",
        "  --version 0.1.0 --namespace tm --create-namespace",
    )
    partial = fake_repo(tmp_path, {"ci/a.sh": "helm install x . --namespace n\n"})
    assert len(unexercised(readme, partial)) == 1
    (tmp_path / "ci/b.sh").write_text(
        'helm install t oci://ghcr.io/task-manager/charts/task-manager --version "$v" '
        "--namespace n --create-namespace --wait\n"
    )
    assert unexercised(readme, partial) == []


def test_checker_counts_api_examples_only_where_a_live_test_runs_them(tmp_path: Path) -> None:
    readme = "## API\n" + fenced("curl -sS --fail-with-body http://127.0.0.1:8080/api/v1/tasks")
    root = fake_repo(tmp_path, {})
    assert len(unexercised(readme, root)) == 1
    (tmp_path / "tests/ci").mkdir(parents=True)
    (tmp_path / "tests/ci/test_readme_api.py").write_text("# runs the API section\n")
    assert unexercised(readme, root) == []
    assert len(unexercised("## Other\n" + readme.split("\n", 1)[1], root)) == 1


def test_checker_matches_curl_by_method_and_path(tmp_path: Path) -> None:
    readme = fenced(
        'curl -sS -X DELETE -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/v1/tasks/1'
    )
    root = fake_repo(tmp_path, {"tests/t.py": "curl -sS -H x http://127.0.0.1:8080/api/v1/tasks\n"})
    assert unexercised(readme, root) != []  # -X and the /tasks/1 path are not exercised there


def test_commands_split_pipes_and_lists() -> None:
    block = "make setup && make test | tee log  # both\nA=1 helm lint . ; echo done"
    assert list(commands(block)) == [
        "make setup",
        "make test",
        "tee log",
        "A=1 helm lint .",
        "echo done",
    ]


def test_only_shell_fences_count() -> None:
    md = "```yaml\nmake nope: 1\n```\n```console\n$ make test\n```\n"
    assert list(shell_blocks(md)) == ["$ make test"]


def test_checker_tells_values_files_apart(tmp_path: Path) -> None:
    script = "helm install r . --namespace n --values values-dev.yaml\n"
    root = fake_repo(tmp_path, {"ci/install.sh": script})
    assert (
        unexercised(fenced("helm install tm . --namespace tm --values values-dev.yaml"), root) == []
    )
    assert unexercised(fenced("helm install tm . --namespace tm --values values-prod.yaml"), root)


def test_every_target_make_help_lists_is_exercised_by_ci() -> None:
    """`make help` is a second README: each target it lists is reached by `make test` or run by a
    test or workflow (as its own recipe script at least), like the README's commands."""
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.M)
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == targets
    # `make help` is the list itself, run just above (the checker does not read this file).
    as_markdown = "\n".join(f"```sh\nmake {t}\n```" for t in targets if t != "help")
    assert unexercised(as_markdown, ROOT) == []
