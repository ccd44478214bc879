"""README.md's shell commands work, and every relative link of README.md and docs/*.md resolves.

Every line of a ```bash block in README.md is a command, and each one is handled in one of three ways:

* **run as written**: the cheap ones, listed in :data:`RUN` with what their output must show;
* **dry-run**: every ``snakemake`` command, with ``-n`` added where it has none, in a copy of the workflow
  (``tests/no_slurm`` first on PATH, as conftest sets it); every ``make <target>`` as ``make -n <target>``;
* **not in CI**: listed in :data:`NOT_IN_CI` with the reason.

A command the README gains that is none of these fails :func:`test_every_readme_command_is_run_dry_run_or_named`,
so it is either tested or named. See docs/testing.md.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import BIN, REPO, copy_workflow, planned_jobs

README = REPO / "README.md"
DOCS = REPO / "docs"

# Commands that cannot run in CI, each with the reason. tests/test_own_pair.py plans the own-pair overlay
# from stand-ins carrying SmolLM2's config.json values.
NOT_IN_CI = {
    "huggingface-cli login":
        "interactive: asks for a hub token; CI has no network",
    "snakemake -n --configfile config/config.yaml config/mine.yaml":
        "config/mine.yaml is the README's example; planning it reads both hub models' config.json (hub cache or "
        "download), which CI has not: tests/test_own_pair.py plans this pair from stand-ins",
    "snakemake --cores all --configfile config/config.yaml config/mine.yaml config/quick-check.yaml":
        "the hub models of config/mine.yaml, downloaded, and a GPU",
    "snakemake --cores all --configfile config/config.yaml config/mine.yaml":
        "the hub models of config/mine.yaml, downloaded, and GPUs for the real run",
}

DRY_RUN_FLAGS = re.compile(r"(^|\s)(-n|--dry-run|--dryrun)(\s|$)")


def strip_comment(line: str) -> str:
    """The command without its trailing ``# comment`` (README comments follow a space)."""
    return re.sub(r"(^|\s+)#\s.*$", "", line).strip()


def readme_commands(text: str | None = None) -> list[str]:
    """Every command of every ```bash block of README.md, in order, comments stripped."""
    text = README.read_text() if text is None else text
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            if command := strip_comment(line):
                commands.append(command)
    return commands


def kind(command: str) -> str:
    if command in NOT_IN_CI:
        return "not in CI"
    if command in RUN:
        return "run"
    if command.startswith("snakemake ") or command == "snakemake" or re.match(r"make [\w-]+( [A-Z]+=\S+)*$", command):
        return "dry-run"
    return "unknown"


def dry_run_form(command: str) -> str:
    """``snakemake ... -n`` (the flag added after ``snakemake`` unless present) or ``make -n <target>``."""
    if command.startswith("make "):
        return "make -n " + command.removeprefix("make ")
    return command if DRY_RUN_FLAGS.search(command) else command.replace("snakemake", "snakemake -n", 1)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # conftest: tests/no_slurm first
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)


def benchmark_logs(root: Path) -> None:
    """Two jobs' Snakemake benchmark TSVs under logs/toy, as the rules write them."""
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rule, job, seconds in (("train", "lora", 12.5), ("evaluate", "lora", 30.0)):
        path = root / "logs" / "toy" / rule / f"{job}.benchmark.tsv"
        path.parent.mkdir(parents=True)
        path.write_text(header + f"{seconds}\t0:00:{int(seconds):02d}\t500\t900\t400\t450\t1\t2\t80\t{seconds}\n")


# Commands run as written, with a text their output must contain. ``fixture`` makes what they read where the
# repository has none (logs/ is not tracked); None runs them in the repository (results/toy is committed).
RUN = {
    "python -m pkt.report.summary results/toy": {"expect": "Main table (results/toy/tables/main.md", "fixture": None},
    "python -m pkt.report.timing logs/toy": {"expect": "train", "fixture": benchmark_logs},
}

def test_readme_commands_are_found():
    commands = readme_commands()
    assert "make setup" in commands and "make demo" in commands
    assert any(c.startswith("python -m pkt.report.summary") for c in commands)
    assert readme_commands("```bash\nmake demo   # a comment\n\n# only a comment\nsnakemake -n\n```\n") == [
        "make demo", "snakemake -n"]


def test_every_readme_command_is_run_dry_run_or_named():
    unknown = [c for c in readme_commands() if kind(c) == "unknown"]
    assert not unknown, ("README commands that this test neither runs nor dry-runs: run them (RUN), or name them "
                         f"in NOT_IN_CI with the reason: {unknown}")
    stale = [c for c in [*NOT_IN_CI, *RUN] if c not in readme_commands()]
    assert not stale, f"listed here but no longer in README.md: {stale}"


def test_dry_run_form():
    assert dry_run_form("snakemake --cores 2 models") == "snakemake -n --cores 2 models"
    assert dry_run_form("snakemake -n --configfile x.yaml | grep gpu") == "snakemake -n --configfile x.yaml | grep gpu"
    assert dry_run_form("make demo") == "make -n demo"


def test_readme_commands_run(tmp_path):
    """The RUN commands, as written: each exits 0 and prints what it is there for."""
    failures = []
    for command in (c for c in readme_commands() if kind(c) == "run"):
        how = RUN[command]
        cwd = REPO
        if how["fixture"]:
            cwd = tmp_path / how["fixture"].__name__
            cwd.mkdir()
            how["fixture"](cwd)
        proc = shell(command, cwd)
        if proc.returncode != 0 or how["expect"] not in proc.stdout:
            failures.append(f"{command} (exit {proc.returncode}, expected {how['expect']!r}):\n{proc.stdout[-2000:]}")
    assert not failures, "\n\n".join(failures)


def plan_key(command: str) -> tuple[str, ...]:
    """What a snakemake command plans: its words before any pipe, without ``-n`` and ``--cores N``
    (``snakemake --cores 2`` and ``snakemake -n`` plan the same DAG, so one dry run covers both)."""
    words = shlex.split(command.split("|")[0])
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--cores":
            skip = True
        elif word not in ("-n", "--dry-run", "--dryrun"):
            kept.append(word)
    return tuple(kept)


def test_plan_key():
    assert plan_key("snakemake --cores 2") == plan_key("snakemake -n") == ("snakemake",)
    assert plan_key("snakemake -n --configfile c.yaml | grep x") == plan_key("snakemake --configfile c.yaml")


def test_readme_commands_dry_run(tmp_path):
    """Every snakemake command with -n, in a copy of the workflow, and every make target with make -n: each
    exits 0. Commands that plan the same DAG share one dry run (a piped one if any, so the pipe runs too); the
    dry runs go side by side (each is ~3 s of one core)."""
    commands = list(dict.fromkeys(c for c in readme_commands() if kind(c) == "dry-run"))
    groups: dict[tuple[str, ...], list[str]] = {}
    for command in commands:
        groups.setdefault(("make", command) if command.startswith("make ") else plan_key(command), []).append(command)
    chosen = [max(group, key=lambda c: "|" in c) for group in groups.values()]

    def dry_run(item: tuple[int, str]) -> tuple[str, subprocess.CompletedProcess]:
        i, command = item
        if command.startswith("make "):
            return command, shell(dry_run_form(command), REPO)  # make -n only prints the recipe
        root = tmp_path / f"w{i}"
        root.mkdir()
        return command, shell(dry_run_form(command), copy_workflow(root))

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        ran = dict(pool.map(dry_run, enumerate(chosen)))
    failures = [f"{dry_run_form(c)} (exit {p.returncode}):\n{p.stdout[-3000:]}" for c, p in ran.items()
                if p.returncode != 0]
    assert not failures, "\n\n".join(failures)
    done = {c: ran[rep] for group, rep in zip(groups.values(), chosen) for c in group}
    # what the README says of them
    one_method = done[next(c for c in commands if "methods=[kd]" in c)].stdout
    assert planned_jobs(one_method)["train"] == 1 and "results/kd-only/" in one_method
    resources = done[next(c for c in commands if "grep" in c and "paper.yaml" in c)].stdout
    assert "gpu=1" in resources and "mem_mb=" in resources


# ------------------------------------------------------------------------------------------------ links

LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """Markdown without its fenced code blocks and inline code (no links or headings live there)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens,
    a repeated slug numbered."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*$", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M),
                              flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_docs_exist_and_the_readme_links_each():
    docs = sorted(DOCS.glob("*.md"))
    assert docs, "docs/*.md"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(prose(README.read_text()))}
    assert not [d for d in docs if d.resolve() not in linked], "every docs/*.md is linked from the README"


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file whose file, or heading for a ``#fragment`` into Markdown, is missing."""
    broken = []
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, fragment = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    return broken


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_broken_links_are_found(tmp_path):
    (tmp_path / "there.md").write_text("# Here it is\n")
    page = tmp_path / "page.md"
    page.write_text("[a](there.md) [b](there.md#here-it-is) [c](gone.md) [d](there.md#nowhere) [e](#top)\n"
                    "![f](img.png) [g](https://example.org/x) `[h](inline.md)`\n```\n[i](fenced.md)\n```\n# Top\n")
    assert broken_links(page) == ["gone.md: no such file", "there.md#nowhere: no heading #nowhere in there.md",
                                  "img.png: no such file"]


def test_anchors_are_githubs(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Seeking's own tables\n```\n# not a heading\n```\n## A -> B, `c` (d)\n## A -> B, `c` (d)\n")
    assert anchors(page) == {"seekings-own-tables", "a---b-c-d", "a---b-c-d-1"}


def test_the_readme_toy_table_is_the_committed_one():
    """The main table shown in the README is results/toy/tables/main.md's, line for line."""
    committed = (REPO / "results" / "toy" / "tables" / "main.md").read_text().splitlines()
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model") and "Gap to teacher" in line)
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    assert len(table) > 3
    assert [line for line in table if line not in committed] == []
