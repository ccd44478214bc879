"""AlpacaFarm win rate as Seeking Neural Nuggets reports it: Open-Instruct's ``eval/alpaca_farm/run_eval.py``.

Seeking's LIMA column (its website's Table 1) is the win rate against text-davinci-003 on AlpacaEval's 805
prompts, judged by an API model through the alpaca_eval package. Open-Instruct at the pinned commit
(:data:`pkt.evaluation.open_instruct.OPEN_INSTRUCT`, ``eval/alpaca_farm/run_eval.py``) renders each prompt's
``instruction`` alone (an ``input`` field is not read) in the Tulu chat format without BOS (``--use_chat_format``,
as its ``scripts/eval/alpaca_farm.sh`` runs it: :func:`pkt.data.records.render_prompt` is that format), generates
greedily with up to 8,192 new tokens, writes every prompt row with its ``output`` replaced and ``generator`` set to
``<model>-greedy-long``, one ``json.dumps`` per line, into ``<model>-greedy-long-output.json``, and calls
``alpaca_eval.evaluate`` with ``annotators_config="alpaca_eval_gpt4_0314"`` against alpaca_eval's default
reference (text-davinci-003's outputs, those of the prompt file itself; passed explicitly here, since newer
alpaca_eval defaults to another reference). Open-Instruct pinned ``alpaca-eval==0.3.1``; gpt-4-0314 is retired, so
the judge is a setting (``judge``): a result names the judge it used.

Off by default: the judge is a paid API. Settings (proposed config key ``seeking_eval.alpaca_farm``,
:data:`DEFAULTS`): ``enabled``, ``judge`` (an alpaca_eval annotator config name), ``api_key_env`` (the variable
holding the judge's key), ``prompts`` (the local 805-row file in alpaca_eval's schema: instruction, output,
generator, dataset), ``max_new_tokens``, ``chat_format``. :func:`plan_errors` refuses an enabled run without the
key or the file before any job; :func:`run` generates, writes and judges. alpaca_eval is not in requirements.txt
(it needs the network and an API key): :func:`judge` names the package to install when it is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pkt.data.records import render_prompt
from pkt.io import write_json, write_text

SECTION = "seeking_eval.alpaca_farm"
DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "train_task": "seeking_lima",  # whose adapters are judged (Seeking's LIMA column)
    "judge": "alpaca_eval_gpt4_0314",  # run_eval.py: annotators_config
    "api_key_env": "OPENAI_API_KEY",
    "prompts": None,
    "max_new_tokens": 8192,  # run_eval.py --max_new_tokens
    "chat_format": True,  # scripts/eval/alpaca_farm.sh --use_chat_format (Tulu)
}
PROMPTS = 805  # AlpacaEval's evaluation set
REFERENCE = "text_davinci_003"  # the generator of alpaca_eval's reference outputs (its set's 'generator')
INSTALL = "pip install alpaca-eval  (Open-Instruct pinned alpaca-eval==0.3.1)"


class AlpacaEvalMissing(RuntimeError):
    """The judge step needs the alpaca_eval package, which is not importable here."""


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``seeking_eval.alpaca_farm`` section over :data:`DEFAULTS`."""
    return {**DEFAULTS, **((config.get("seeking_eval") or {}).get("alpaca_farm") or {})}


def plan_errors(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per reason an enabled AlpacaFarm evaluation cannot run, each naming its key; none when disabled.

    Meant for the config check before any job (``environ`` defaults to ``os.environ``): the judge's key variable
    unset or empty, or the prompt file missing, would otherwise fail after the 805 generations.
    """
    s = settings(config)
    if not s["enabled"]:
        return []
    env = os.environ if environ is None else environ
    errors = []
    if not env.get(s["api_key_env"]):
        errors.append(f"{SECTION}.api_key_env: enabled, but ${s['api_key_env']} is not set: the judge {s['judge']!r} "
                      f"is an API model; export the key or set {SECTION}.enabled: false")
    if not s["prompts"]:
        errors.append(f"{SECTION}.prompts: enabled, but no prompt file is named (alpaca_eval's {PROMPTS} prompts with "
                      f"{REFERENCE}'s outputs: instruction, output, generator)")
    elif not Path(s["prompts"]).is_file():
        errors.append(f"{SECTION}.prompts: {s['prompts']} does not exist")
    return errors


def check_plan(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Raise ``ValueError`` with :func:`plan_errors`' lines, if any."""
    errors = plan_errors(config, environ)
    if errors:
        raise ValueError("\n".join(errors))


def load_prompts(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The prompt rows of a file in alpaca_eval's schema: a JSON array (alpaca_eval's own file) or JSON lines.
    Each row needs a string ``instruction``; its other fields are kept (they are written back with the output)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("instruction"), str):
            raise ValueError(f"{path}: row {i} has no string 'instruction' (alpaca_eval's schema)")
    return rows


def prompt_of(row: Mapping[str, Any], chat_format: bool = True) -> str:
    """run_eval's prompt: the instruction, in the Tulu chat format without BOS when ``chat_format``."""
    return render_prompt(row["instruction"]) if chat_format else row["instruction"]


def generation_budget(lm: Any, prompts: list[str], cap: int = DEFAULTS["max_new_tokens"]) -> int:
    """New tokens per output: ``cap`` (Open-Instruct's 8,192, which only the model's context or EOS ends), within
    what an lm-eval model's ``max_length`` leaves after the longest prompt (lm-eval cuts the prompt otherwise)."""
    max_length, encode = getattr(lm, "max_length", None), getattr(lm, "tok_encode", None)
    if not isinstance(max_length, int) or encode is None:
        return cap
    room = max_length - max(len(encode(p)) for p in prompts)
    if room < 1:
        raise ValueError(f"{SECTION}: a prompt fills the model's max_length ({max_length}); nothing can be generated")
    return min(cap, room)


def generate(lm: Any, rows: list[dict[str, Any]], prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy outputs of an lm-eval model (``generate_until``: an ``HFLM`` from pkt.evaluation.evaluate.load_lm, or
    a stub), stopped by EOS only, one per prompt; each request's doc is its row."""
    from lm_eval.api.instance import Instance

    kwargs = {"until": [], "do_sample": False, "max_gen_toks": int(max_new_tokens)}
    requests = [Instance(request_type="generate_until", doc=row, arguments=(prompt, dict(kwargs)), idx=i)
                for i, (row, prompt) in enumerate(zip(rows, prompts))]
    return list(lm.generate_until(requests))


def generator_name(model_name: str) -> str:
    return f"{model_name}-greedy-long"


def model_outputs(rows: list[dict[str, Any]], outputs: list[str], model_name: str) -> list[dict[str, Any]]:
    """Each prompt row with its ``output`` replaced by the model's and ``generator`` set, as run_eval writes them."""
    if len(rows) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs for {len(rows)} prompts")
    return [{**row, "output": out, "generator": generator_name(model_name)} for row, out in zip(rows, outputs)]


def write_outputs(out_dir: str | os.PathLike[str], model_name: str, records: list[dict[str, Any]]) -> Path:
    """``<out_dir>/<model>-greedy-long-output.json``: one ``json.dumps(row)`` per line (ASCII-escaped), as
    run_eval writes it (JSON lines despite the name)."""
    path = Path(out_dir) / f"{generator_name(model_name)}-output.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return path


def judge(records: list[dict[str, Any]], reference: list[dict[str, Any]], annotator: str,
          out_dir: str | os.PathLike[str], evaluate: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Win rate of ``records`` against ``reference`` by alpaca_eval's ``evaluate`` with annotator config
    ``annotator``, called as run_eval calls it; {win_rate, standard_error, n_total} of the model's leaderboard row
    (percentages, as alpaca_eval reports them). Raises :class:`AlpacaEvalMissing`, naming the package, when
    alpaca_eval is not importable (``evaluate`` replaces it in tests)."""
    if evaluate is None:
        try:
            from alpaca_eval import evaluate
        except ImportError as e:
            raise AlpacaEvalMissing(f"{SECTION}: judging needs the alpaca_eval package, which is not installed: "
                                    f"{INSTALL}") from e
    out = Path(out_dir)
    leaderboard, _ = evaluate(model_outputs=records, reference_outputs=reference, annotators_config=annotator,
                              output_path=str(out), is_return_instead_of_print=True,
                              caching_path=str(out / "alpaca_eval_annotator_cache.json"))
    row = leaderboard.loc[records[0]["generator"]]
    return {key: (None if key not in row else float(row[key])) for key in ("win_rate", "standard_error", "n_total")}


def run(lm: Any, config: Mapping[str, Any], out_dir: str | os.PathLike[str], model_name: str,
        environ: Mapping[str, str] | None = None, evaluate: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Generate the model's outputs for the prompt file, write them, judge them and write ``metrics.json``.

    The outputs are written before judging, so a missing alpaca_eval (:class:`AlpacaEvalMissing`, raised after
    writing them, naming the file) costs no generation: they can be judged elsewhere with alpaca_eval's CLI.
    """
    check_plan(config, environ)
    s = settings(config)
    rows = load_prompts(s["prompts"])
    prompts = [prompt_of(r, s["chat_format"]) for r in rows]
    budget = generation_budget(lm, prompts, int(s["max_new_tokens"]))
    records = model_outputs(rows, generate(lm, rows, prompts, budget), model_name)
    path = write_outputs(out_dir, model_name, records)
    summary = {"judge": s["judge"], "prompts": len(rows), "reference": sorted({str(r.get("generator")) for r in rows}),
               "outputs": str(path), "max_new_tokens": budget, "chat_format": s["chat_format"]}
    try:
        summary |= judge(records, rows, s["judge"], out_dir, evaluate)
    except AlpacaEvalMissing as e:
        raise AlpacaEvalMissing(f"{e}; the outputs are in {path} (alpaca_eval evaluate --model_outputs {path} "
                                f"--reference_outputs {s['prompts']} --annotators_config {s['judge']})") from e
    write_json(Path(out_dir) / "metrics.json", summary)
    return summary


def result_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """An eval result (the shape of lm-eval's, task ``alpaca_farm``) from :func:`run`'s summary: the win rate and
    its standard error as fractions (alpaca_eval reports percentages), n = the prompts judged."""
    if summary.get("win_rate") is None:
        raise ValueError(f"{SECTION}: the judge {summary.get('judge')!r} returned no win_rate")
    rate, error = summary["win_rate"] / 100, summary.get("standard_error")
    return {"task": "alpaca_farm", "metric": "win_rate", "value": rate, "n": summary["prompts"],
            "metrics": {"win_rate,none": rate, **({"win_rate_stderr,none": error / 100} if error is not None else {})},
            "alpaca_farm": dict(summary)}
