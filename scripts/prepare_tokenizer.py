"""Rule prepare_tokenizer: train the byte-level BPE shared by teacher and student, once."""

from pkt.data.tokenizer import train_tokenizer
from pkt.io import atomic_dir, read_jsonl
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        docs = [r["text"] for path in snakemake.input.corpora for r in read_jsonl(path)]
        tok = train_tokenizer(docs, **snakemake.params.tokenizer)
        with atomic_dir(snakemake.output[0]) as tmp:
            tok.save_pretrained(tmp)
