"""The library's layout: wings import only downward, and every rule declares all the code its jobs run.

The declared code inputs come from :mod:`pkt.sources` (an AST walk). They are checked here against an
independent reading, the standard library's ``modulefinder``, on the jobs of the real DAGs (toy and paper):
for each job, every ``pkt`` module its script imports, transitively, and of the module it picks by name
(the method a train job runs, the data source), must be among its inputs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from modulefinder import ModuleFinder
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow

from pkt.data import SOURCES
from pkt.methods import BUILTIN, method_module
from pkt.sources import library_files, module_file
from pkt.transfer_probe import PROBE_ROWS

SRC = REPO / "src"
WINGS = ["root", "data", "models", "layers", "evaluation", "report", "methods", "driver"]
DRIVERS = {"pkt.train", "pkt.probe", "pkt.transfer_probe"}


def wing(module: str) -> str:
    """``pkt.layers.pairing`` -> ``layers``; a root module is a helper or (train, the probes) a driver."""
    if module in DRIVERS:
        return "driver"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS) else "root"


def library_modules() -> dict[str, Path]:
    files = sorted((SRC / "pkt").rglob("*.py"))
    return {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def pkt_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("pkt.")}


def test_every_module_is_in_a_known_wing():
    for module in library_modules():
        if module != "pkt":
            assert wing(module) in WINGS, module


def test_wings_import_only_downward():
    bad = []
    for module, path in library_modules().items():
        for name in pkt_imports(path):
            if WINGS.index(wing(name)) > WINGS.index(wing(module)):
                bad.append(f"{module} imports {name} ({wing(module)} -> {wing(name)})")
    assert not bad, "\n".join(bad)


def test_sources_follow_imports_packages_and_files_run_by_path():
    files = {p.relative_to(SRC).as_posix() for p in library_files("pkt.evaluation.tasks")}
    assert {"pkt/__init__.py", "pkt/evaluation/__init__.py", "pkt/data/records.py"} <= files
    # imported inside a function (tasks -> sandbox.run), started by path (pool -> runner.py), imported by the
    # runner from its own folder (isolation.py)
    sandbox = {f"pkt/evaluation/sandbox/{n}.py" for n in ("__init__", "run", "pool", "runner", "isolation")}
    assert sandbox <= files
    assert not any(f.startswith("pkt/methods/") for f in files)  # evaluation never reaches up
    with pytest.raises(ValueError, match="pkt.nowhere"):
        library_files("pkt.nowhere")


def test_methods_load_lazily_one_at_a_time():
    assert module_file(method_module("semalign")).name == "method.py"
    assert module_file(method_module("kd")).name == "kd.py"
    code = {p.relative_to(SRC).as_posix() for p in library_files(method_module("kd"))}
    assert "pkt/methods/kd.py" in code and "pkt/methods/lora.py" not in code
    assert "pkt/methods/semalign/method.py" not in code  # KD reads SemAlign's targets, not its method
    probe = "import pkt.methods, sys; print(sorted(m for m in sys.modules if m.startswith('pkt.methods.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['pkt.methods.base']"


JOBS_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, ResourceSettings,
                                      StorageSettings)

configfiles = [Path(p) for p in sys.argv[1:]]
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf_api = api.workflow(resource_settings=ResourceSettings(cores=1), storage_settings=StorageSettings(),
                          config_settings=ConfigSettings(configfiles=configfiles), snakefile=Path("Snakefile"),
                          workdir=Path("."))
    wf_api.dag(dag_settings=DAGSettings(forceall=True))
    wf = wf_api._workflow
    wf._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
    wf._build_dag()
    jobs = [{"rule": j.rule.name, "script": j.rule.script, "wildcards": dict(j.wildcards),
             "input": [str(f) for f in j.input], "config": {"source": wf.config["data"]["source"]}}
            for j in wf.dag.jobs]
print("JOBS" + json.dumps(jobs))
"""


def dag_jobs(root: Path, *configfiles: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", JOBS_SCRIPT, *configfiles], cwd=root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("JOBS"))
    return json.loads(line.removeprefix("JOBS"))


def modulefinder_files(root: Path, script: Path, extra: tuple[str, ...]) -> set[str]:
    """pkt files a script (and the modules picked by name) imports, transitively, as modulefinder reads them."""
    finder = ModuleFinder(path=[str(root / "src"), str(script.parent)])
    finder.run_script(str(script))
    for module in extra:
        finder.import_hook(module)
    return {Path(m.__file__).relative_to(root).as_posix() for name, m in finder.modules.items()
            if name == "pkt" or name.startswith("pkt.")}


def picked_by_name(job: dict) -> tuple[str, ...]:
    """The modules a job imports by a name from the config: a train job's method, the probe's methods, the data
    source."""
    if job["rule"] == "train":
        return (method_module(job["wildcards"]["method"]),)
    if job["rule"] == "semalign_ablation":
        return (method_module("semalign"),)
    if job["rule"] == "transfer_probe":
        return tuple(sorted({method_module(method) for method, _ in PROBE_ROWS.values()}))
    if job["rule"] == "prepare_data":
        return (SOURCES[job["config"]["source"]],)
    return ()


@pytest.mark.parametrize("configfiles", [[], ["config/paper.yaml", "config/paper-code.yaml"]],
                         ids=["toy", "paper+code"])
def test_every_job_declares_the_code_it_runs(tmp_path, configfiles):
    root = copy_workflow(tmp_path)
    (root / "probe.yaml").write_text("transfer_probe: {in_default_run: true}\n")  # its rule joins the DAG (toy)
    jobs = [j for j in dag_jobs(root, *configfiles, "probe.yaml") if j["script"]]
    assert {j["rule"] for j in jobs} >= {"prepare_data", "prepare_model", "train", "evaluate", "tables"}
    assert ("transfer_probe" in {j["rule"] for j in jobs}) == (not configfiles)  # toy data only
    assert {j["wildcards"].get("method") for j in jobs if j["rule"] == "train"} >= {"seeking", "semalign"}
    cache: dict[tuple[str, str | None], set[str]] = {}
    for job in jobs:
        script = (root / "workflow" / "rules" / job["script"]).resolve()
        key = (str(script), picked_by_name(job))
        if key not in cache:
            cache[key] = modulefinder_files(root, script, key[1])
        missing = cache[key] - set(job["input"])
        assert not missing, f"{job['rule']} {job['wildcards']}: code not among its inputs: {sorted(missing)}"
        if job["rule"] in ("evaluate", "evaluate_vanilla"):  # run by path, which modulefinder cannot see
            assert {"src/pkt/evaluation/sandbox/runner.py", "src/pkt/evaluation/sandbox/isolation.py"} <= \
                set(job["input"])


def test_every_builtin_method_has_a_module():
    for name in BUILTIN:
        assert module_file(method_module(name)) is not None, name


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_dvc_stages_depend_on_the_code_of_their_scripts():
    """``dvc repro`` calls a stage's Snakemake target only when a dep changed: each stage lists the library
    code of every rule script it lists (methods and data sources: every one), and every script has a stage."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    listed = set()
    for name, stage in stages.items():
        scripts = [d for d in stage["deps"] if d.startswith("scripts/")]
        listed |= set(scripts)
        for script in scripts:
            picked = {"scripts/train.py": [method_module(m) for m in BUILTIN],
                      "scripts/semalign_ablation.py": [method_module("semalign")],
                      "scripts/transfer_probe.py": [method_module(m) for m, _ in PROBE_ROWS.values()],
                      "scripts/prepare_data.py": list(SOURCES.values())}.get(script, [])
            for path in library_files(REPO / script, *picked):
                rel = path.relative_to(REPO).as_posix()
                assert rel == "src/pkt/__init__.py" or covered(rel, stage["deps"]), f"dvc stage {name}: {rel}"
    assert listed == {f"scripts/{p.name}" for p in (REPO / "scripts").glob("*.py")}
