"""Rule prepare_data: the toy world's task splits and pretraining corpora, or the papers' splits converted."""

from pathlib import Path

from pkt.data import write_manifest, write_split
from pkt.io import write_jsonl
from pkt.runtime import job_logging


def toy(world_cfg: dict, out_dir: Path, splits: list[str], corpora: list[str]) -> None:
    from pkt.toyworld import generate

    world = generate(world_cfg)
    for path in map(Path, splits):
        task, split = path.parent.name, path.stem
        write_split(path, world.splits[task][split], prefix=f"{task}-{split}")
    for path in map(Path, corpora):
        write_jsonl(path, ({"text": doc} for doc in world.corpora[path.stem]))
    n_held = sum(not f.known_by_student for f in world.facts)
    write_manifest(out_dir, [*splits, *corpora], {"world": world_cfg, "facts": len(world.facts),
                                                  "facts_held_out_from_student": n_held})


def paper(paper_cfg: dict, out_dir: Path, splits: list[str]) -> None:
    from pkt.paper_data import load_paper_splits

    paths = [Path(p) for p in splits]
    records = load_paper_splits(paper_cfg, sorted({p.parent.name for p in paths}))
    for path in paths:
        task, split = path.parent.name, path.stem
        write_split(path, records[task][split], prefix=f"{task}-{split}")
    write_manifest(out_dir, splits, {"paper": paper_cfg})


if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, out = snakemake.params, snakemake.output
        if params.source == "toy":
            toy(params.world, Path(out.manifest).parent, list(out.splits), list(out.corpora))
        else:
            paper(params.paper, Path(out.manifest).parent, list(out.splits))
