"""Tables and figures from eval JSONs whose numbers are known."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pkt.evaluation.evaluate import item_scores
from pkt.report.figures import TRAINED, benchmark_bars, curves_table, items_per_column, training_curves
from pkt.report.summary import summarise
from pkt.report.tables import (
    benchmark_of,
    code_path,
    identical_rows,
    latex_caption,
    load_items,
    load_results,
    main_table,
    vs_reference,
    write_tables,
    write_vs_reference,
)

PAIRS = {"toy": {"teacher": "big", "student": "small"}}
SCORES = {  # (method, pair slot, seed) -> score per benchmark, as fractions
    ("vanilla", "small", 0): {"mmlu": 0.40, "gsm8k": 0.20, "humaneval": 0.10, "mbpp": 0.10},
    ("vanilla", "big", 0): {"mmlu": 0.80, "gsm8k": 0.40, "humaneval": 0.30, "mbpp": 0.30},
    ("lora", "toy", 0): {"mmlu": 0.50, "gsm8k": 0.30, "humaneval": 0.10, "mbpp": 0.20},
    ("lora", "toy", 1): {"mmlu": 0.60, "gsm8k": 0.30, "humaneval": 0.20, "mbpp": 0.20},
}


BENCHES = ["mmlu", "gsm8k", "humaneval", "mbpp"]
HELD_OUT = {("vanilla", "small", 0): 0.2, ("vanilla", "big", 0): 0.8, ("lora", "toy", 0): 0.2, ("lora", "toy", 1): 0.4}
# MMLU control is then 2 * MMLU - held-out: 0.6, 0.8, 0.8, 0.8 (five items in each group)


def write_eval(root, method, pair, bench, seed, scores, groups=None, value=None, clusters=None):
    """One eval JSON as evaluation writes it: per-item scores, and subsets for grouped (toy_mmlu) items."""
    groups = groups or [None] * len(scores)
    clusters = clusters or [None] * len(scores)
    subsets = {g: {"value": sum(s for s, h in zip(scores, groups) if h == g) / groups.count(g), "n": groups.count(g)}
               for g in set(groups) - {None}}
    p = root / method / pair / f"toy_{bench}" / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"method": method, "pair": pair, "task": f"toy_{bench}", "seed": seed,
                             "value": sum(scores) / len(scores) if value is None else value, "n": len(scores),
                             "items": {"id": [f"{bench}-{i}" for i in range(len(scores))], "score": scores,
                                       "group": groups, "cluster": clusters}, "subsets": subsets}))
    return p


@pytest.fixture
def eval_files(tmp_path):
    paths = []
    for (method, pair, seed), scores in SCORES.items():
        for bench, value in scores.items():
            ones = round(10 * value)
            if bench == "mmlu":  # items 0-4 held out, 5-9 control
                held = round(5 * HELD_OUT[(method, pair, seed)])
                items = [1.0] * held + [0.0] * (5 - held) + [1.0] * (ones - held) + [0.0] * (5 - ones + held)
                groups = ["held_out"] * 5 + ["control"] * 5
            else:
                items, groups = [1.0] * ones + [0.0] * (10 - ones), None
            paths.append(write_eval(tmp_path, method, pair, bench, seed, items, groups, value))
    return paths


def test_benchmark_names():
    assert benchmark_of("toy_gsm8k") == benchmark_of("paper_gsm8k") == "GSM8K"
    with pytest.raises(ValueError, match="toy_trivia"):
        benchmark_of("toy_trivia")


def test_main_table_rows_means_stds_average_and_gap(eval_files):
    table = main_table(load_results(eval_files, PAIRS))
    assert [row for _, row in table.index] == ["student", "teacher", "lora"]
    mean, std = table["mean"], table["std"]
    assert mean.loc[("toy", "teacher"), "MMLU"] == pytest.approx(80.0)
    assert mean.loc[("toy", "lora"), "MMLU"] == pytest.approx(55.0)
    assert std.loc[("toy", "lora"), "MMLU"] == pytest.approx(7.0710678)  # sample std of 50 and 60
    assert mean.loc[("toy", "student"), "Average"] == pytest.approx(20.0)
    assert mean.loc[("toy", "lora"), "Average"] == pytest.approx(30.0)  # seeds average 27.5 and 32.5
    assert mean.loc[("toy", "teacher"), "Gap to teacher"] == 0.0
    # |80-55| + |40-30| + |30-15| + |30-20| = 60 -> mean 15
    assert mean.loc[("toy", "lora"), "Gap to teacher"] == pytest.approx(15.0)
    assert table.loc[("toy", "lora"), ("seeds", "")] == 2


def test_methods_that_did_not_run_are_absent(eval_files):
    only_vanilla = [p for p in eval_files if "lora" not in p.parts]
    table = main_table(load_results(only_vanilla, PAIRS))
    assert [row for _, row in table.index] == ["student", "teacher"]


def test_written_tables_and_metrics(eval_files, tmp_path):
    table = main_table(load_results(eval_files, PAIRS))
    out = tmp_path / "out"
    write_tables(table, out / "main.csv", out / "main.md", out / "main.tex", out / "metrics.json", "toy scale")
    md = (out / "main.md").read_text()
    assert "| LoRA" in md and "55.00 ± 7.07" in md and md.startswith("toy scale")
    assert "\\begin{tabular}" in (out / "main.tex").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["toy/lora/MMLU"] == 55.0 and metrics["toy/teacher/Gap to teacher"] == 0.0
    assert "Model" in (out / "main.csv").read_text().splitlines()[0]


def test_figures_are_written(eval_files, tmp_path):
    tidy = load_results(eval_files, PAIRS)
    table = main_table(tidy)
    assert benchmark_bars(table, tmp_path / "bars.png", "t", items_per_column(tidy)).stat().st_size > 1000
    curves = [{"method": "lora", "task": "toy_mmlu", "seed": 0, "loss_curve": [[5, 2.0], [10, 1.0]]}]
    assert training_curves(curves, tmp_path / "curves.png", "t").stat().st_size > 1000


def _curves() -> list[dict]:
    """Seven methods (five kinds of loss) x two tasks x three seeds, as scripts/figures.py reads them."""
    runs = {"lora": {}, "seeking": {}, "semalign": {"variant": "v1", "ce_weight": 0.0},
            "semalign_cosine": {"variant": "v1", "ce_weight": 0.0}, "kd": {"kd_alpha": 0.5},
            "fitnet": {"loss": "cosine"}, "laten": None}
    return [{"method": m, "task": t, "seed": s, "loss_curve": [[1, 2.0 + s], [2, 1.0]],
             **({"method_settings": settings} if settings is not None else {})}
            for m, settings in runs.items() for t in ("toy_gsm8k", "toy_mmlu") for s in (0, 1, 2)]


def test_training_curves_one_legend_one_colour_per_method_one_axis_per_loss_kind():
    """The reviewer's complaints, each checked: one legend outside the panels (none inside), one colour per
    method and one line style per seed, a row of panels per kind of loss (two kinds never share an axis), and a
    title about losses, not the tables' scores."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from pkt.report.figures import curves_figure, loss_kind

    curves = _curves()
    fig = curves_figure(curves, "Run toy: toy scale")
    try:
        axes = [ax for ax in fig.axes if ax.lines]
        assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
        kinds = {loss_kind(c) for c in curves}
        assert len(kinds) == 5 and len(axes) == 5 * 2  # cross-entropy (LoRA, Seeking), SemAlign, KD, FitNet, LaTen
        assert loss_kind(curves[0]) == "cross-entropy" and "KL" in loss_kind({"method": "kd"})
        colours = {to_hex(line.get_color()) for ax in axes for line in ax.lines}
        assert len(colours) == 7  # one per method, none repeated (LoRA and LaTen no longer share a blue)
        styles = {str(line.get_linestyle()) for ax in axes for line in ax.lines}
        assert len(styles) == 3  # one per seed
        labels = {ax.get_ylabel().replace("\n", " ") for ax in fig.axes if ax.get_ylabel()}
        assert labels == kinds
        title = fig._suptitle.get_text()
        assert "loss" in title.lower() and "scores in %" not in title and "Run toy" in title
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend[:2] == ["LoRA", "Seeking"] and legend[-3:] == ["seed 0", "seed 1", "seed 2"]
    finally:
        plt.close(fig)


def test_each_panel_of_the_training_curves_holds_one_kind_of_loss():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from pkt.report.figures import curves_figure, loss_kind, method_colors

    curves = _curves()
    kind_of = {to_hex(c): loss_kind(next(r for r in curves if r["method"] == m))
               for m, c in method_colors([r["method"] for r in curves]).items()}
    fig = curves_figure(curves, "t")
    try:
        for ax in (ax for ax in fig.axes if ax.lines):  # two kinds of loss never share a y-axis
            assert len({kind_of[to_hex(line.get_color())] for line in ax.lines}) == 1
    finally:
        plt.close(fig)


def test_benchmark_bars_mark_chance_and_item_counts(eval_files):
    """MMLU (four choices) and its subsets get a 25% chance line, the generation tasks none; every benchmark's
    tick names its item count; the Student and Teacher are greys and each method keeps its colour."""
    import matplotlib.pyplot as plt

    from pkt.report.figures import bars_figure, chance_level, method_colors

    tidy = load_results(eval_files, PAIRS)
    counts = items_per_column(tidy)
    assert counts["MMLU"] == "10" and counts["MMLU held-out"] == "5"
    assert chance_level("MMLU held-out") == 25.0 and chance_level("GSM8K") is None
    assert chance_level("Average") is None
    fig = bars_figure(main_table(tidy), "t", counts)
    try:
        ax = fig.axes[0]
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert "MMLU\n10 items" in ticks and "Average" in ticks
        lines = [c for c in ax.collections if c.get_linestyle() and c.get_segments()]
        chance = [seg for c in lines for seg in c.get_segments() if seg[0][1] == seg[1][1] == 25.0]
        mmlu_columns = [c for c in main_table(tidy)["std"].columns if chance_level(c) is not None]
        assert len(chance) == len(mmlu_columns) >= 1
        assert any(t.get_text() == "chance: 25%" for t in ax.get_legend().get_texts())
    finally:
        plt.close(fig)
    colours = method_colors(["student", "teacher", "lora", "kd"])
    assert colours["student"] == "0.78" and colours["teacher"] == "0.35"
    assert method_colors(["kd"])["kd"] == colours["kd"]  # a method's colour does not depend on who else ran


def test_subset_columns_follow_mmlu_and_stay_out_of_average_and_gap(eval_files):
    tidy = load_results(eval_files, PAIRS)
    held = tidy[tidy["benchmark"] == "MMLU held-out"]
    assert set(held["n"]) == {5} and len(held) == 4  # student, teacher, two lora seeds
    table = main_table(tidy)
    assert list(table["std"].columns) == ["MMLU", "MMLU held-out", "MMLU control", "GSM8K", "HumanEval", "MBPP",
                                          "Average"]
    mean, std = table["mean"], table["std"]
    assert mean.loc[("toy", "lora"), "MMLU held-out"] == pytest.approx(30.0)
    assert std.loc[("toy", "lora"), "MMLU held-out"] == pytest.approx(14.1421356)  # sample std of 20 and 40
    assert mean.loc[("toy", "lora"), "MMLU control"] == pytest.approx(80.0)
    assert std.loc[("toy", "lora"), "MMLU control"] == pytest.approx(0.0)
    assert mean.loc[("toy", "student"), "MMLU control"] == pytest.approx(60.0)
    assert mean.loc[("toy", "lora"), "Average"] == pytest.approx(30.0)  # the four benchmarks only
    assert mean.loc[("toy", "lora"), "Gap to teacher"] == pytest.approx(15.0)
    assert mean.loc[("toy", "student"), "Gap to teacher"] == pytest.approx(25.0)  # (40 + 20 + 20 + 20) / 4


def test_load_items_maps_vanilla_and_adds_subset_items(eval_files, tmp_path, caplog):
    old = tmp_path / "old.json"  # written before evals kept per-item scores
    old.write_text(json.dumps({"method": "kd", "pair": "toy", "task": "toy_gsm8k", "seed": 0, "value": 0.1, "n": 10}))
    items = load_items([*eval_files, old], PAIRS)
    assert list(items.columns) == ["pair", "row", "benchmark", "seed", "id", "score", "cluster"]
    assert items["cluster"].isna().all()  # these results record no clusters: every item is its own
    # 4 results x (4 benchmarks x 10 items + 5 held-out + 5 control)
    assert len(items) == 4 * 50
    assert "no per-item scores" in caplog.text and "kd" not in set(items["row"])
    sizes = items.groupby(["row", "benchmark"]).size()
    assert sizes[("student", "MMLU held-out")] == 5 and sizes[("lora", "GSM8K")] == 20
    teacher = items[(items["row"] == "teacher") & (items["benchmark"] == "MMLU")]
    assert teacher["score"].mean() == pytest.approx(80.0) and set(teacher["score"]) == {0.0, 100.0}
    held = items[(items["row"] == "lora") & (items["benchmark"] == "MMLU held-out")]
    assert set(held["id"]) == {f"mmlu-{i}" for i in range(5)}
    assert held.groupby("seed")["score"].mean().tolist() == pytest.approx([20.0, 40.0])


@pytest.fixture
def item_files(tmp_path):
    """20 items per benchmark: LoRA 0.5 on every item, KD exactly 0.6 (+10 points), the student alternating 0/1
    (the same mean as LoRA), the teacher 1 everywhere; MMLU items 0-9 held out, 10-19 control."""
    rows = {("vanilla", "small"): ([0], [float(i % 2) for i in range(20)]), ("vanilla", "big"): ([0], [1.0] * 20),
            ("lora", "toy"): ([0, 1, 2], [0.5] * 20), ("kd", "toy"): ([0, 1, 2], [0.6] * 20)}
    groups = {bench: ["held_out"] * 10 + ["control"] * 10 if bench == "mmlu" else None for bench in BENCHES}
    return [write_eval(tmp_path, method, pair, bench, seed, scores, groups[bench])
            for (method, pair), (seeds, scores) in rows.items() for seed in seeds for bench in BENCHES]


def test_vs_reference_known_differences(item_files):
    table = vs_reference(load_items(item_files, PAIRS), n_boot=2000)
    assert [row for _, row in table.index] == ["student", "teacher", "kd"]  # no LoRA row
    benches = ["MMLU", "MMLU held-out", "MMLU control", "GSM8K", "HumanEval", "MBPP"]
    for stat in ("diff", "lo", "hi"):
        assert list(table[stat].columns) == benches
        assert table.loc[("toy", "kd"), stat].tolist() == pytest.approx([10.0] * 6)
        assert table.loc[("toy", "teacher"), stat].tolist() == pytest.approx([50.0] * 6)
    student = table.loc[("toy", "student")]
    assert student[("diff", "MMLU")] == pytest.approx(0.0)
    # one seed (deterministic) against LoRA's three seeds, which agree: the item part alone, 0/1 vs 0.5 on 20
    # items: se = sd / sqrt(20) = 50 sqrt(20 / 19) / sqrt(20) points, t with 19 degrees of freedom
    assert student[("se_items", "MMLU")] == pytest.approx(50 / 19**0.5, rel=0.05)
    assert student[("hi", "MMLU")] == pytest.approx(2.093024 * student[("se_items", "MMLU")], rel=1e-4)
    assert student[("se_seeds", "MMLU")] == 0.0 and student[("units", "MMLU")] == 20
    assert table[("seeds", "")].tolist() == [1, 1, 3]
    assert table[("seed_part", "")].tolist() == ["reference", "reference", "paired"]
    assert table[("identical_to", "")].tolist() == ["", "", ""]


def test_vs_reference_without_reference_or_with_mismatched_items(item_files, caplog, tmp_path):
    items = load_items(item_files, PAIRS)
    assert vs_reference(items[items["row"] != "lora"], n_boot=10).empty
    assert "no 'lora' row" in caplog.text
    items.loc[(items["row"] == "kd") & (items["id"] == "gsm8k-3"), "id"] = "gsm8k-99"
    with pytest.raises(ValueError, match="toy/kd vs lora on GSM8K: item ids differ"):
        vs_reference(items, n_boot=10)


def test_written_vs_reference(item_files, tmp_path):
    table = vs_reference(load_items(item_files, PAIRS), n_boot=2000)
    out = tmp_path / "out"
    write_vs_reference(table, out / "vs.csv", out / "vs.md", out / "vs.tex", "toy scale")
    md = (out / "vs.md").read_text()
    assert md.startswith("toy scale. Row minus LoRA") and "95% interval in brackets" in md
    assert "* = the interval excludes 0" in md and "paired bootstrap over the test items (2000 replicates)" in md
    assert "resampled by template cluster where items share one) and training seeds of one pretrained pair" in md
    assert "t interval over the seeds" in md
    kd = next(line for line in md.splitlines() if line.startswith("| KD"))
    assert "+10.00 [+10.00, +10.00]*" in kd and "| MMLU held-out" in md
    student = next(line for line in md.splitlines() if line.startswith("| Student"))
    assert "+0.00 [" in student and "*" not in student
    tex = (out / "vs.tex").read_text()
    assert "\\begin{tabular}" in tex and "95\\% interval" in tex and "+50.00 [+50.00, +50.00]*" in tex
    header, *lines = (out / "vs.csv").read_text().splitlines()
    assert header.startswith("pair,row,model,seeds,MMLU diff,MMLU lo,MMLU hi,MMLU held-out diff")
    assert header.endswith("MBPP se_items,MBPP se_seeds,MBPP units,seed_part,identical_to")  # added after
    kd_row = dict(zip(header.split(","), next(line for line in lines if ",kd," in line).split(",")))
    assert float(kd_row["MMLU diff"]) == pytest.approx(10.0) and float(kd_row["MBPP hi"]) == pytest.approx(10.0)
    assert kd_row["seeds"] == "3" and kd_row["seed_part"] == "paired" and kd_row["MMLU units"] == "20"


def test_gap_to_teacher_is_undefined_when_a_benchmark_is_missing(eval_files):
    """A row without MBPP has no gap (it used to be the mean over the three benchmarks it has)."""
    partial = [p for p in eval_files if not ("lora" in p.parts and p.parent.name == "toy_mbpp")]
    table = main_table(load_results(partial, PAIRS))
    assert pd.isna(table.loc[("toy", "lora"), ("mean", "Gap to teacher")])
    assert table.loc[("toy", "student"), ("mean", "Gap to teacher")] == pytest.approx(25.0)


def test_two_tasks_of_one_benchmark_are_an_error_not_an_average(eval_files, tmp_path):
    paper = write_eval(tmp_path / "paper", "vanilla", "big", "gsm8k", 0, [1.0, 0.0])
    data = json.loads(paper.read_text())
    paper.write_text(json.dumps({**data, "task": "paper_gsm8k"}))
    with pytest.raises(ValueError, match="'toy_gsm8k' and 'paper_gsm8k' both fill the GSM8K column"):
        load_results([*eval_files, paper], PAIRS)


def test_results_made_on_different_cpu_code_paths_do_not_share_a_table(eval_files):
    pinned = {"processor": "x", "capability": "AVX2", "pins": {"ATEN_CPU_CAPABILITY": "avx2"}}
    for path in eval_files:  # every result pinned, one of them on its own path
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "cpu": pinned, "model": {"cpu": pinned}}))
    assert not load_results(eval_files, PAIRS).empty
    odd = json.loads(eval_files[-1].read_text())
    eval_files[-1].write_text(json.dumps({**odd, "cpu": {**pinned, "capability": "AVX512", "pins": {}}}))
    with pytest.raises(ValueError, match="different CPU code paths"):
        load_results(eval_files, PAIRS)
    gpu = {**odd, "cpu": None, "model": {}}
    assert code_path(gpu) == "gpu" and code_path({"task": "toy_mmlu"}) == "unrecorded"


def test_curves_table_averages_per_method_and_step_with_a_column_for_every_method():
    curves = [{"method": "lora", "loss_curve": [[5, 2.0], [10, 1.0]]}, {"method": "lora", "loss_curve": [[5, 4.0]]},
              {"method": "kd", "loss_curve": [[10, 3.0]]}]
    table = curves_table(curves)
    assert list(table.columns) == ["step", *TRAINED]  # dvc.yaml's plot names every method: none may be missing
    assert table["step"].tolist() == [5, 10]
    assert table["lora"].tolist() == [3.0, 1.0]  # (2 + 4) / 2 at step 5; the one run left at step 10
    assert table["kd"].isna().tolist() == [True, False] and table["semalign"].isna().all()


def test_item_scores_carry_clusters_and_the_interval_resamples_them(tmp_path):
    """A doc's cluster goes from lm-eval's samples into the eval JSON and the items frame; 20 items in 4
    clusters whose items share an outcome give a 4-unit bootstrap, wider than the 20-item one."""
    samples = [{"doc_id": i, "doc": {"id": f"t-{i}", "cluster": f"c{i // 5}"}, "acc": float(i // 5 % 2)}
               for i in range(20)]
    scored = item_scores(samples, "acc")
    assert scored["cluster"] == [f"c{i // 5}" for i in range(20)]
    assert item_scores([{"doc_id": 0, "doc": {}, "acc": 1.0}], "acc")["cluster"] == [None]  # paper tasks
    paths = [write_eval(tmp_path, "kd", "toy", "gsm8k", s, scored["score"], clusters=scored["cluster"])
             for s in (0, 1, 2)]
    paths += [write_eval(tmp_path, "lora", "toy", "gsm8k", s, [0.5] * 20) for s in (0, 1, 2)]
    items = load_items(paths, PAIRS)
    assert items.loc[items["row"] == "kd", "cluster"].tolist()[:6] == ["c0"] * 5 + ["c1"]
    table = vs_reference(items, n_boot=4000)
    kd = table.loc[("toy", "kd")]
    assert kd[("units", "GSM8K")] == 4 and kd[("diff", "GSM8K")] == pytest.approx(0.0)
    # 4 cluster means of +-50 points: se = 50 sqrt(4 / 3) / sqrt(4) = 50 / sqrt(3); item by item 50 / sqrt(19)
    assert kd[("se_items", "GSM8K")] == pytest.approx(50 / 3**0.5, rel=0.05)
    items["cluster"] = None
    iid = vs_reference(items, n_boot=4000).loc[("toy", "kd")]
    assert iid[("units", "GSM8K")] == 20 and iid[("se_items", "GSM8K")] == pytest.approx(50 / 19**0.5, rel=0.05)


@pytest.fixture
def laten_copies_student(item_files, tmp_path):
    """item_files plus a LaTen row that scores every item, on each of its 3 seeds, as the Student does."""
    student = [float(i % 2) for i in range(20)]
    groups = {bench: ["held_out"] * 10 + ["control"] * 10 if bench == "mmlu" else None for bench in BENCHES}
    return item_files + [write_eval(tmp_path, "laten", "toy", bench, seed, student, groups[bench])
                         for seed in (0, 1, 2) for bench in BENCHES]


def test_a_row_identical_to_another_is_flagged_in_both_tables_and_the_summary(laten_copies_student, tmp_path):
    items = load_items(laten_copies_student, PAIRS)
    assert identical_rows(items) == {("toy", "laten"): "student"}
    table = vs_reference(items, n_boot=500)
    assert table[("identical_to", "")].to_dict() == {("toy", "student"): "", ("toy", "teacher"): "",
                                                     ("toy", "laten"): "student", ("toy", "kd"): ""}
    assert table.loc[("toy", "laten"), "diff"].tolist() == table.loc[("toy", "student"), "diff"].tolist()
    run = tmp_path / "run"
    out = run / "tables"
    write_vs_reference(table, out / "vs_lora.csv", out / "vs_lora.md", out / "vs_lora.tex", "toy")
    md = (out / "vs_lora.md").read_text()
    assert "| LaTen †" in md and "| Student " in md and "| Student †" not in md
    assert "† LaTen is identical to Student on every item, task and seed" in md
    main = main_table(load_results(laten_copies_student, PAIRS))
    write_tables(main, out / "main.csv", out / "main.md", out / "main.tex", run / "metrics.json", "toy, in %",
                 identical=identical_rows(items))
    assert "| LaTen †" in (out / "main.md").read_text()
    tex = (out / "main.tex").read_text()
    assert "\\caption{toy, in \\%}" in tex  # the footnote is under the table, not in the caption
    assert "\\textsuperscript{\\dag} LaTen is identical to Student on every item, task and seed: its training" in tex
    rows = pd.read_csv(out / "main.csv", keep_default_na=False)
    assert rows.set_index("Model")["identical_to"].to_dict() == {"Student": "", "Teacher": "", "LoRA": "",
                                                                 "LaTen": "student", "KD": ""}
    summary = summarise(run)
    assert "Rows identical to another row (marked †" in summary
    assert "LaTen (pair toy) is identical to Student on every item, task and seed" in summary
    write_tables(main, out / "main.csv", out / "main.md", out / "main.tex", run / "metrics.json", "toy")
    assert "†" not in (out / "main.md").read_text()  # nothing flagged unless told


def test_latex_captions_escape_what_latex_would_misread():
    assert latex_caption("toy_mmlu: 95% {a} & $5 #1 ~ ^") == (
        "toy\\_mmlu: 95\\% \\{a\\} \\& \\$5 \\#1 \\textasciitilde{} \\textasciicircum{}")


def test_a_one_method_run_gets_its_comparison_against_the_student(item_files):
    """methods: [kd] (no LoRA): tables.reference resolves to the student, and the vs table compares KD with it."""
    from pkt.config_checks import table_reference

    reference = table_reference({"methods": ["kd"], "tables": {"reference": None}})
    assert reference == "student"
    items = load_items(item_files, PAIRS)
    table = vs_reference(items[items["row"] != "lora"], reference=reference, n_boot=200)
    assert [row for _, row in table.index] == ["teacher", "kd"]
    student_minus_lora = vs_reference(items, n_boot=200).loc[("toy", "student"), "diff"]
    kd_minus_lora = vs_reference(items, n_boot=200).loc[("toy", "kd"), "diff"]
    assert table.loc[("toy", "kd"), "diff"].tolist() == pytest.approx((kd_minus_lora - student_minus_lora).tolist())
