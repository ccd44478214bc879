"""Rule pair_layers: SemAlign's depth-aware teacher/student pairing (and Seeking's map) + its figure."""

from pkt.io import read_json, write_json
from pkt.pairing import pair_layers
from pkt.pairing_plot import plot_pairing
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        teacher, student = read_json(snakemake.input.teacher), read_json(snakemake.input.student)
        cfg, wc = snakemake.params.pairing, snakemake.wildcards
        pairing = pair_layers(teacher["scores"], student["scores"], **cfg)
        pairing.update(teacher_model=teacher["model"], student_model=student["model"], task=wc.task,
                       aggregation=teacher["aggregation"], target=teacher["target"])
        plot_pairing(teacher["scores"], student["scores"], pairing,
                     f"{wc.pair} on {wc.task}: {teacher['model']} -> {student['model']}", snakemake.output.figure)
        write_json(snakemake.output.pairing, pairing)
