"""Rule pair_layers: SemAlign's depth-aware teacher/student pairing (and Seeking's map) + figure, per task."""

from pkt.io import read_json, write_json
from pkt.layers.pairing import pair_layers
from pkt.layers.pairing_plot import plot_pairing
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        cfg, pair, inp, out = snakemake.params.pairing, snakemake.wildcards.pair, snakemake.input, snakemake.output
        for i, task in enumerate(snakemake.params.tasks):
            teacher, student = read_json(inp.teacher[i]), read_json(inp.student[i])
            pairing = pair_layers(teacher["scores"], student["scores"], **cfg)
            pairing.update(teacher_model=teacher["model"], student_model=student["model"], task=task,
                           aggregation=teacher["aggregation"], target=teacher["target"])
            plot_pairing(teacher["scores"], student["scores"], pairing,
                         f"{pair} on {task}: {teacher['model']} -> {student['model']}", out.figures[i])
            write_json(out.pairings[i], pairing)
