"""Rule prepare_data: the toy world's task splits and pretraining corpora, or the papers' splits converted.

The data source (``data.source``) names the library module that writes them (:data:`pkt.data.SOURCES`).
"""

from importlib import import_module
from pathlib import Path

from pkt.data import SOURCES
from pkt.runtime import job_logging

if __name__ == "__main__":
    with job_logging(snakemake.log[0]):
        params, out = snakemake.params, snakemake.output
        source = import_module(SOURCES[params.source])
        source.write_data(params.settings, Path(out.manifest).parent, list(out.splits), list(out.corpora))
