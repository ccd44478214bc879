"""Adding a method is one module with its settings dataclass (README "Add a method").

The workflow plans from a method's class attributes (``label``, ``needs``), read from its source without
importing it (:mod:`pkt.rows`), and checks its config section against a schema derived from its dataclass
(:mod:`pkt.methods.schema`). Here a trivial method is added to a copy of the workflow, and its dry run, its
train job's inputs and settings, its table row and a mistyped key of its section are checked; then the pieces
alone, on the built-in methods (their labels, inputs and settings unchanged) and on small written modules.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import yaml
from conftest import REPO, copy_workflow, planned_jobs, snakemake

from pkt.config_schema import load_schema, schema_problems
from pkt.config_settings import method_settings
from pkt.methods import BUILTIN, REGISTRY, LoraSettings, Method, get_method, method_module, register
from pkt.methods.schema import section_schema, with_methods
from pkt.rows import INPUTS, METHODS, method_spec, new_methods

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

SCALED = '''"""``scaled_lora``: LoRA whose alpha is multiplied by a fixed factor (a trivial method)."""

from __future__ import annotations

from dataclasses import dataclass

from pkt.methods.base import LoraSettings, Method, register


@dataclass
class ScaledSettings(LoraSettings):
    """The LoRA of every method, alpha times scale."""

    scale: float = 2.0
    note: str | None = None


@register
class ScaledLora(Method):
    """Standard LoRA with alpha times ``scale``."""

    name = "scaled_lora"
    label = "Scaled LoRA"
    needs = ("targets",)
    config_class = ScaledSettings

    def lora(self) -> LoraSettings:
        return LoraSettings(r=self.config.r, alpha=self.config.alpha * self.config.scale, dropout=self.config.dropout,
                            target_modules=self.config.target_modules)
'''

PLAN = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings
from pkt.report.tables import ROWS

with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf_api = api.workflow(resource_settings=ResourceSettings(cores=1), storage_settings=StorageSettings(),
                          config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[1:]]),
                          snakefile=Path("Snakefile"), workdir=Path("."))
    wf_api.dag(dag_settings=DAGSettings())
    wf = wf_api._workflow
    wf._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
    wf._build_dag()
    train = {j.wildcards["method"]: {"input": [str(f) for f in j.input], "settings": j.params.method_settings,
                                     "inputs": j.params.method_inputs} for j in wf.dag.jobs if j.rule.name == "train"}
print("PLAN" + json.dumps({"train": train, "rows": ROWS}))
"""


@pytest.fixture
def with_scaled(tmp_path, monkeypatch) -> Path:
    """A copy of the workflow whose library (first on PYTHONPATH, for the DAG and its jobs) holds ``scaled_lora``."""
    root = copy_workflow(tmp_path)
    (root / "src" / "pkt" / "methods" / "scaled_lora.py").write_text(SCALED)
    (root / "added.yaml").write_text("methods: [lora, scaled_lora]\nscaled_lora: {scale: 3.0}\n")
    monkeypatch.setenv("PYTHONPATH", str(root / "src"))
    return root


def test_an_added_method_is_planned_trained_with_its_inputs_and_named_in_the_tables(with_scaled):
    out = snakemake(with_scaled, "-n", "--configfile", "added.yaml").stdout
    jobs = planned_jobs(out)
    assert jobs["train"] == jobs["evaluate"] == 2  # lora and scaled_lora, one pair
    assert jobs["teacher_targets"] == 1  # scaled_lora needs the targets; lora alone would not
    assert "Training scaled_lora for toy" in out and "Evaluating scaled_lora toy" in out

    proc = subprocess.run([sys.executable, "-c", PLAN, "added.yaml"], cwd=with_scaled, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PLAN"))[4:])
    job = plan["train"]["scaled_lora"]
    assert "src/pkt/methods/scaled_lora.py" in job["input"]  # its code: editing it reruns its jobs
    assert "src/pkt/methods/scaled_lora.py" not in plan["train"]["lora"]["input"]
    assert "results/toy/targets/toy/toy_mmlu" in job["input"]
    assert job["inputs"]["toy_mmlu"] == {"targets": "results/toy/targets/toy/toy_mmlu"}
    lora = yaml.safe_load((with_scaled / "config" / "config.yaml").read_text())["lora"]
    assert job["settings"]["toy_mmlu"] == {**lora, "scale": 3.0, "note": None}  # its default filled in
    rows = list(plan["rows"].items())
    assert rows[-1] == ("scaled_lora", "Scaled LoRA")  # after the built-in rows
    assert rows[:3] == [("student", "Student"), ("teacher", "Teacher"), ("lora", "LoRA")]


def test_a_mistyped_key_of_an_added_method_fails_the_plan_in_one_line(with_scaled):
    (with_scaled / "bad.yaml").write_text("methods: [scaled_lora]\nscaled_lora: {scal: 3.0}\n")
    out = snakemake(with_scaled, "-n", "--configfile", "bad.yaml", check=False).stdout
    assert "invalid config (1 problem;" in out
    assert "  scaled_lora.scal: unknown key (did you mean 'scale'?)\n" in out


def test_builtin_rows_keep_their_labels_order_and_inputs():
    from pkt.report.tables import ROWS

    assert list(ROWS.items())[:10] == [
        ("student", "Student"), ("teacher", "Teacher"), ("lora", "LoRA"), ("seeking", "Seeking"),
        ("semalign", "SemAlign"), ("semalign_logit", "SemAlign (logit map)"),
        ("semalign_cosine", "SemAlign (cosine map)"), ("laten", "LaTen"), ("kd", "KD"), ("fitnet", "FitNet")]
    needs = {m: method_spec(m).needs for m in (*BUILTIN, "semalign_cosine")}
    assert needs == {"lora": (), "seeking": ("extract",), "semalign": ("targets", "align_split"),
                     "laten": ("teacher", "extract_split", "align_split"), "kd": ("targets",),
                     "fitnet": ("targets",), "semalign_cosine": ("targets", "align_split")}


def test_what_is_read_from_the_source_is_what_the_classes_carry():
    for name in BUILTIN:
        cls, spec = get_method(name), method_spec(name)
        assert (cls.label, cls.needs) == (spec.label, spec.needs), name
        assert spec.path.as_posix().endswith(method_module(name).replace(".", "/") + ".py")


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(f"from pkt.methods.base import Method, register\n\n\n@register\nclass C(Method):\n{body}")
    return path


def test_specs_are_read_from_a_module_without_running_it(tmp_path):
    write(tmp_path, "mine", '    name = "mine"\n    label = "Mine"\n    needs = ("teacher", "align_split")\n'
                            "    raise SystemExit('never run')\n")
    write(tmp_path, "plain", '    name = "plain"\n')
    (tmp_path / "helpers.py").write_text("x = 1\n")  # no method
    (tmp_path / "pack").mkdir()
    write(tmp_path / "pack", "method", '    name = "pack"\n    label = "Packaged"\n')
    spec = method_spec("mine", tmp_path)
    assert (spec.label, spec.needs, spec.path) == ("Mine", ("teacher", "align_split"), tmp_path / "mine.py")
    assert method_spec("plain", tmp_path).label == "plain" and method_spec("plain", tmp_path).needs == ()
    assert method_spec("pack", tmp_path).path == tmp_path / "pack" / "method.py"
    assert new_methods(tmp_path) == ["mine", "pack", "plain"]
    assert {n: method_spec(n, tmp_path).label for n in new_methods(tmp_path)} == {"mine": "Mine", "pack": "Packaged",
                                                                                 "plain": "plain"}
    with pytest.raises(KeyError, match="helpers.py registers no method named 'helpers'"):
        method_spec("helpers", tmp_path)
    with pytest.raises(KeyError, match=r"nor a module src/pkt/methods/nowhere.py \(README: Add a method\)"):
        method_spec("nowhere", tmp_path)


def test_a_spec_that_cannot_be_read_or_made_is_refused(tmp_path):
    write(tmp_path, "computed", '    name = "computed"\n    needs = tuple(["targets"])\n')
    with pytest.raises(ValueError, match=r"computed.py:7: C.needs must be a literal"):
        method_spec("computed", tmp_path)
    write(tmp_path, "wants", '    name = "wants"\n    needs = ("targets", "gold")\n')
    with pytest.raises(ValueError, match=r"needs \['gold'\], which the workflow does not make; it makes targets"):
        method_spec("wants", tmp_path)
    assert set(INPUTS) == {"targets", "extract", "teacher", "align_split", "extract_split"}


def test_register_refuses_a_label_the_source_does_not_show(tmp_path, monkeypatch):
    path = write(tmp_path, "sub", '    name = "sub"\n')  # its label would be inherited
    module = types.ModuleType("pkt.methods.sub")
    module.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "pkt.methods.sub", module)
    parent = type("Parent", (Method,), {"name": "parent", "label": "Parent"})
    sub = type("Sub", (parent,), {"name": "sub", "__module__": "pkt.methods.sub"})
    with pytest.raises(ValueError, match="must be literals in the body of Sub"):
        register(sub)
    assert "sub" not in REGISTRY


@dataclass
class ToySettings(LoraSettings):
    """LoRA and a scale."""

    scale: float = 2.0
    mode: Literal["a", "b"] = "a"
    steps: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    tag: str | None = None
    needed: bool = dataclasses.field(default=True)


class Toy(Method):
    name = "toy_scaled"
    config_class = ToySettings


def test_a_new_section_is_derived_from_the_dataclass_fields():
    section = section_schema("toy_scaled", ToySettings)
    assert section["properties"] == {
        "scale": {"type": "number", "default": 2.0}, "mode": {"enum": ["a", "b"], "default": "a"},
        "steps": {"type": "array", "items": {"type": "integer"}, "default": [1, 2]},
        "tag": {"type": ["string", "null"], "default": None}, "needed": {"type": "boolean", "default": True}}
    assert section["additionalProperties"] is False and section["default"] == {} and "required" not in section

    @dataclass
    class Odd(LoraSettings):
        ids: set[int] = dataclasses.field(default_factory=set)

    with pytest.raises(TypeError, match="Odd.ids: type set"):
        section_schema("odd", Odd)

    @dataclass
    class NotLora:
        x: int = 1

    with pytest.raises(TypeError, match="must be a dataclass extending LoraSettings"):
        section_schema("odd", NotLora)


def test_a_wrong_key_or_type_in_a_new_section_is_one_line(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy_scaled", Toy)
    schema = with_methods(load_schema(SCHEMA), ["toy_scaled"])
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["methods"] = ["lora", "toy_scaled"]
    config["train"]["per_method"] = {"toy_scaled": {"lr": 0.001}}

    def problems(section: dict) -> list[str]:  # those of the new method (the rest of the config is not ours)
        lines = schema_problems({**config, "toy_scaled": section}, schema)
        return [line for line in lines if "toy_scaled" in line]

    assert problems({"scale": 3.0, "tag": "x"}) == []
    assert problems({"scal": 3.0}) == ["toy_scaled.scal: unknown key (did you mean 'scale'?)"]
    assert problems({"scale": "big"}) == ["toy_scaled.scale: 'big' is not of type number"]
    assert problems({"mode": "c"}) == ["toy_scaled.mode: 'c' is not one of a, b"]
    misspelt = schema_problems({**config, "methods": ["lora", "toy_scaledd"]}, schema)
    assert [line for line in misspelt if line.startswith("methods")] == [
        "methods[1]: 'toy_scaledd' is not one of lora, seeking, semalign, semalign_logit, semalign_cosine, laten, kd, "
        "fitnet, toy_scaled"]


def test_a_new_method_settings_are_the_lora_section_and_its_own():
    config = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"]},
              "toy_scaled": {"scale": 3.0, "mode": "b"}}
    assert method_settings(config, "toy_scaled", ["t1", "t2"]) == {
        task: {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"], "scale": 3.0, "mode": "b"}
        for task in ("t1", "t2")}
    assert list(method_settings(config, "lora", ["t1"])["t1"]) == ["r", "alpha", "dropout", "target_modules"]


def test_the_library_s_other_modules_are_not_methods():
    assert not {"base", "schema", "__init__", *BUILTIN} & set(new_methods(METHODS))
