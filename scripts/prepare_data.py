"""Rule prepare_data: generate the toy world's task splits and pretraining corpora."""

from pathlib import Path

from pkt.data import write_manifest, write_split
from pkt.io import write_jsonl
from pkt.runtime import job_logging
from pkt.toyworld import generate


def main(world_cfg: dict, out_dir: Path, splits: list[str], corpora: list[str]) -> None:
    world = generate(world_cfg)
    for path in map(Path, splits):
        task, split = path.parent.name, path.stem
        write_split(path, world.splits[task][split], prefix=f"{task}-{split}")
    for path in map(Path, corpora):
        write_jsonl(path, ({"text": doc} for doc in world.corpora[path.stem]))
    n_held = sum(not f.known_by_student for f in world.facts)
    write_manifest(out_dir, [*splits, *corpora], {"world": world_cfg, "facts": len(world.facts),
                                                  "facts_held_out_from_student": n_held})


if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        main(snakemake.params.world, Path(snakemake.output.manifest).parent,
             list(snakemake.output.splits), list(snakemake.output.corpora))
