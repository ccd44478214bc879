"""The Snakemake report of a run (``make report RUN=<run>``): every caption renders without a docutils message and
with every field it names, states the run's scale, every entry has a unique row of labels in its category, and
every table of the run is in it; the report of a finished DAG (the smoke run) shows exactly that."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, snakemake

from pkt.run_config import RunConfigError, configfiles

# Each config's DAG (no job runs), every output flagged for the report rendered as Snakemake renders its caption
# (snakemake.report.FileRecord.render: Jinja with the job's snakemake object, then docutils), but with a field the
# caption names and the job lacks an error (StrictUndefined) and docutils stopping at its first warning.
CAPTIONS_SCRIPT = """
import json, sys
from pathlib import Path
from docutils.core import publish_parts
from jinja2 import Environment, StrictUndefined
from snakemake.api import SnakemakeApi
from snakemake.io import apply_wildcards, get_flag_value, is_flagged
from snakemake.script import Snakemake
from snakemake.settings.enums import Quietness
from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, ResourceSettings,
                                      StorageSettings)

env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
STRICT = {"halt_level": 2, "report_level": 5}  # a docutils warning raises; nothing printed


def render(text, **context):
    try:
        text = env.from_string(text).render(**context)
        publish_parts(text, writer_name="html", settings_overrides=STRICT)
        return text, None
    except Exception as error:
        return text, f"{type(error).__name__}: {error}"


runs = {}
for arg in sys.argv[1:]:
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf_api = api.workflow(resource_settings=ResourceSettings(cores=1), storage_settings=StorageSettings(),
                              config_settings=ConfigSettings(configfiles=[Path(p) for p in arg.split(",") if p]),
                              snakefile=Path("Snakefile"), workdir=Path("."))
        wf_api.dag(dag_settings=DAGSettings(forceall=True))
        wf = wf_api._workflow
        wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        wf._build_dag()

        class Global:
            config = wf.config

        text, error = render(wf.sourcecache.open(wf.report_text).read(), snakemake=Global, categories={}, files=[])
        run = runs[arg] = {"run": wf.config["run_name"], "description": text, "description_error": error,
                           "entries": [], "unreported": []}
        for job in wf.dag.jobs:
            for f in job.output:
                if not is_flagged(f, "report"):
                    run["unreported"].append(str(f))
                    continue
                flag = get_flag_value(f, "report")
                smk = Snakemake(job.input, job.output, job.params, job.wildcards, job.threads, job.resources,
                                job.log, job.rule.module_globals["config"], job.rule.name, None)
                text, error = render(wf.sourcecache.open(flag.caption).read(), snakemake=smk, categories={},
                                     files=[])
                labels = {k: apply_wildcards(str(v), job.wildcards_dict) for k, v in (flag.labels or {}).items()}
                run["entries"].append({"rule": job.rule.name, "file": str(f), "category": flag.category,
                                       "labels": labels, "caption": text, "error": error})
print("RUNS" + json.dumps(runs))
"""
CONFIGS = {
    "toy": "probe.yaml",  # the default run, with the transfer probe's table (its own target otherwise)
    "paper_code": "config/paper.yaml,config/paper-code.yaml",  # hub models, three pairs, the code-teacher rows
    "seeking": "config/seeking.yaml",  # Seeking's own tables
}


@pytest.fixture(scope="module")
def captions(tmp_path_factory) -> dict:
    root = copy_workflow(tmp_path_factory.mktemp("captions"))
    (root / "probe.yaml").write_text("transfer_probe: {in_default_run: true}\n")
    proc = subprocess.run([sys.executable, "-c", CAPTIONS_SCRIPT, *CONFIGS.values()], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RUNS")).removeprefix("RUNS"))
    return {name: runs[arg] for name, arg in CONFIGS.items()}


def label_problems(entries: list[dict]) -> list[str]:
    """Entries the report would list without labels, with an empty one, or with the same labels as another
    entry of their category (the report lists a labelled category by its labels)."""
    problems, rows = [], defaultdict(list)
    for entry in entries:
        labels = entry["labels"] or {}
        if not labels or not all(str(v).strip() for v in labels.values()):
            problems.append(f"{entry['file']}: labels {labels}")
        rows[(entry["category"], tuple(sorted(labels.items())))].append(entry["file"])
    return problems + [f"{category}: the same labels {dict(labels)} for {files}"
                       for (category, labels), files in rows.items() if len(files) > 1]


@pytest.mark.slow
@pytest.mark.parametrize("run", list(CONFIGS))
def test_every_caption_renders_cleanly_with_the_runs_own_fields(captions, run):
    found = captions[run]
    assert found["run"] == run and found["entries"]
    assert found["description_error"] is None, found["description_error"]
    assert f"``{run}``" in found["description"]
    errors = [f"{e['rule']} {e['file']}: {e['error']}" for e in found["entries"] if e["error"]]
    assert not errors, "\n".join(errors)
    empty = [e["file"] for e in found["entries"] if not e["caption"].strip()]
    assert not empty, f"empty captions: {empty}"
    assert not label_problems(found["entries"]), "\n".join(label_problems(found["entries"]))


@pytest.mark.slow
@pytest.mark.parametrize("run", list(CONFIGS))
def test_every_table_of_the_run_is_in_the_report(captions, run):
    found = captions[run]
    tables = [f for f in found["unreported"] if re.fullmatch(rf"results/{re.escape(run)}/tables/[^/]+\.csv", f)]
    assert not tables, f"tables not flagged for the report: {tables}"
    reported = {e["file"] for e in found["entries"]}
    assert f"results/{run}/tables/code_teachers.csv" in reported


@pytest.mark.slow
def test_captions_state_the_runs_scale(captions):
    """Toy tiny models or the hub models of a paper run, never "toy scale" for the latter (issue 29)."""
    scaled = ("main.csv", "code_teachers.csv", "semalign_ablation.csv", "cka.png", "bases.png")

    def of(run):
        return {e["file"]: e["caption"] for e in captions[run]["entries"] if e["file"].endswith(scaled)}

    toy, paper = of("toy"), of("paper_code")
    assert {f.rsplit("/", 1)[1] for f in toy} == {f.rsplit("/", 1)[1] for f in paper} == set(scaled)
    assert all("toy scale" in text.lower() for text in toy.values())
    assert all("hub models" in text.lower() and "toy scale" not in text.lower() for text in paper.values())
    assert not [e["file"] for e in captions["paper_code"]["entries"] if "toy scale" in e["caption"].lower()]
    for cka in (text for path, text in paper.items() if path.endswith("/cka.png")):
        assert re.search(r"``[\w.-]+/[\w.-]+``", cka) and "train split" in cka  # repo ids; paper data: train
    assert "toy scale" not in captions["paper_code"]["description"].lower()


def report_results(report_html: str) -> tuple[dict, dict, str]:
    """The report's results, categories and workflow description, as its page embeds them."""
    def embedded(script: str, name: str):
        start = re.search(rf'<script id="{script}">\s*var {name} = ', report_html).end()
        return json.JSONDecoder(strict=False).raw_decode(report_html[start:])[0]  # the description has newlines

    return (embedded("results", "results"), embedded("categories", "categories"),
            embedded("workflow-desc", "workflow_desc"))


ALL_CATEGORIES = ("Tables", "Figures", "Layer pairing", "Seeking extraction", "SemAlign analysis")


def check_report(root: Path, run: str, report: Path, *args: str, categories: tuple[str, ...] = ALL_CATEGORIES) -> dict:
    """Build the report (``report``: a .zip) of the finished run ``run`` in the workflow copy ``root`` (``args``:
    its config files and targets) and check it as a reader sees it, with at least ``categories``; return its
    results."""
    out = snakemake(root, *args, "--report", str(report)).stdout
    assert "Report created" in out and not re.search(r"\((INFO|WARNING|ERROR|SEVERE)/\d\)", out), out[-3000:]
    with zipfile.ZipFile(report) as archive:
        page = archive.read(f"{report.stem}/report.html").decode()  # the archive's folder: its name
    assert "System Message" not in page and "system-message" not in page
    results, found, description = report_results(page)
    assert f"``{run}``" not in description and f"results/{run}" in description  # rendered: no literal left
    tables = {f"results/{run}/tables/{p.name}" for p in (root / "results" / run / "tables").glob("*.csv")}
    assert tables and tables <= results.keys(), f"tables not in the report: {sorted(tables - results.keys())}"
    assert set(categories) <= found.keys()
    category_of = {path: category for category, subs in found.items() for files in subs.values()
                   for path in files}
    entries = [{"file": path, "category": category_of[path], "labels": result["labels"]}
               for path, result in results.items()]
    assert not label_problems(entries), "\n".join(label_problems(entries))
    for path, result in results.items():
        text = html.unescape(re.sub(r"<[^>]+>", "", result["caption"])).strip()
        assert text and "``" not in text, f"{path}: caption {text!r}"
    return results


@pytest.mark.slow
def test_the_report_of_a_finished_run_has_every_table_and_clean_captions(smoke_run, tmp_path):
    results = check_report(smoke_run, "smoke", tmp_path / "report.zip", "--configfile", "config/smoke.yaml")
    assert "results/smoke/tables/code_teachers.csv" in results  # issue 29: it was missing
    assert "results/smoke/tables/transfer_probe.csv" in results  # smoke.yaml: in the default target


def test_a_run_is_found_by_its_name_with_the_files_under_it():
    assert configfiles("toy", REPO / "config") == []
    assert configfiles("smoke", REPO / "config") == ["config/smoke.yaml"]
    assert configfiles("paper_code", REPO / "config") == ["config/paper.yaml", "config/paper-code.yaml"]
    assert configfiles("seeking-llama1", REPO / "config") == ["config/seeking.yaml", "config/seeking-llama1.yaml"]
    with pytest.raises(RunConfigError, match="config/mine.yaml"):  # goes over the user's own overlay
        configfiles("quick-check", REPO / "config")
    assert configfiles("quick-check", REPO / "config", ["config/smollm2.yaml", "config/quick-check.yaml"])
    with pytest.raises(RunConfigError, match="make run 'smoke', not 'paper'"):
        configfiles("paper", REPO / "config", ["config/smoke.yaml"])
    with pytest.raises(RunConfigError, match="no config"):
        configfiles("no-such-run", REPO / "config")
