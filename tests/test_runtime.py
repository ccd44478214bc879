"""pkt.runtime: what a job says when the scheduler restarted it."""

from __future__ import annotations

import logging

import pytest

from pkt.runtime import ON_RESTART, announce_restart


def test_a_first_run_says_nothing(caplog):
    with caplog.at_level(logging.WARNING):
        assert announce_restart("train", env={}) == 0
        assert announce_restart("train", env={"SLURM_RESTART_COUNT": "0"}) == 0
    assert not caplog.records


@pytest.mark.parametrize("stage", sorted(ON_RESTART))
def test_a_requeued_job_says_what_its_stage_does(stage, caplog):
    with caplog.at_level(logging.WARNING):
        assert announce_restart(stage, env={"SLURM_RESTART_COUNT": "2"}) == 2
    (record,) = caplog.records
    assert record.getMessage() == f"SLURM restart 2 of this job: {ON_RESTART[stage]}"
