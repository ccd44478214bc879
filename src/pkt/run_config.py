"""The config files a run of this repository was made with, by its run name: what ``make report RUN=<run>`` passes
to ``snakemake --configfile`` so that the report is built from the run's own DAG and config.

The default run (config/config.yaml's ``run_name``, toy) needs none: the Snakefile loads config/config.yaml.
Another run is the overlay in config/ whose ``run_name`` it is, merged over the files its header's usage line
names, in that order (config/paper-code.yaml: ``snakemake --configfile config/paper.yaml config/paper-code.yaml``);
an overlay without such a line goes over config/config.yaml alone. A usage line naming a file that is not there
(config/quick-check.yaml goes over your own overlay, ``config/mine.yaml``) is refused with the line to follow:
give the files yourself (``make report RUN=quick-check CONFIGS="config/mine.yaml config/quick-check.yaml"``).
Files given are checked the same way: merged over config/config.yaml, their ``run_name`` must be the run's.

``python -m pkt.run_config <run> [files...]`` prints the files, space-separated (nothing for the default
run), or names the problem on stderr and exits 1.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

BASE = "config.yaml"  # the Snakefile's configfile, under every overlay
USAGE = re.compile(r"--configfile((?:\s+\S+\.ya?ml)+)")


class RunConfigError(ValueError):
    """No config files can be told for a run name (unknown, ambiguous, or a usage line naming a missing file)."""


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _merged_run_name(files: Sequence[Path], config_dir: Path) -> str | None:
    """``run_name`` of config/config.yaml with ``files`` merged over it, as Snakemake merges them (the last wins)."""
    name = _load(config_dir / BASE).get("run_name")
    for path in files:
        name = _load(path).get("run_name", name)
    return name


def usage_files(overlay: Path) -> list[str] | None:
    """The files an overlay's header comment tells to pass with ``--configfile``, as written; None without one."""
    for line in overlay.read_text().splitlines():
        if not line.startswith("#"):
            break  # the header is the leading comment block
        found = USAGE.search(line)
        if found:
            return found.group(1).split()
    return None


def configfiles(run: str, config_dir: str | Path = "config", given: Sequence[str] = ()) -> list[str]:
    """The ``--configfile`` arguments of run ``run`` (paths as they would be typed in the repository root, i.e.
    ``config_dir``'s parent); ``given`` instead of looking them up, checked. Raises :class:`RunConfigError`."""
    config_dir = Path(config_dir)
    root = config_dir.parent
    if given:
        missing = [f for f in given if not (root / f).is_file()]
        if missing:
            raise RunConfigError(f"run {run!r}: no such config file {missing}")
        files = list(given)
    else:
        names = {p: _load(p).get("run_name") for p in sorted(config_dir.glob("*.y*ml"))}
        if run == names.get(config_dir / BASE):
            return []
        overlays = [p for p, name in names.items() if p.name != BASE and name == run]
        if not overlays:
            known = sorted({str(name) for name in names.values() if name})
            raise RunConfigError(f"no config in {config_dir}/ has run_name {run!r} (there: {', '.join(known)}); "
                                 "give the run's files: CONFIGS=\"config/a.yaml ...\"")
        if len(overlays) > 1:
            raise RunConfigError(f"run_name {run!r} is in {[str(p) for p in overlays]}: give the run's files: "
                                 "CONFIGS=\"config/a.yaml ...\"")
        overlay = overlays[0]
        own = (config_dir / overlay.name).relative_to(root).as_posix()
        files = [f for f in usage_files(overlay) or [] if f != own] + [own]  # the overlay last, as its run had it
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise RunConfigError(f"run {run!r}: {overlay} goes over {', '.join(missing)}, which is not there: "
                                 f"give the files its run used: CONFIGS=\"{' '.join(files)}\" with yours")
    name = _merged_run_name([root / f for f in files], config_dir)
    if name != run:
        raise RunConfigError(f"config files {files} make run {name!r}, not {run!r}")
    return files


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m pkt.run_config <run_name> [config files...]", file=sys.stderr)
        return 2
    try:
        print(" ".join(configfiles(argv[0], given=argv[1:])))
    except RunConfigError as error:
        print(f"make report: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
