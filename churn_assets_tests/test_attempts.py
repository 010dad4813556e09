"""Attempts count input faults only: a request whose runs failed for the environment (a crash, a
service down, an interruption) is tried again once that is judged, however often it failed; one
whose input was refused stays given up until its input changes."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pytest

from churn_assets.automation.requests import (
    MAX_ATTEMPTS,
    forgive_environment_faults,
    given_up,
    keyed_request,
    next_attempt,
)
from churn_assets.keys import FAULT_TAG


@dg.op(config_schema={"fault": str})
def load(context) -> None:
    if context.op_config["fault"] == "input":
        raise dg.Failure("transactions_201604.csv: line 7, column msno: empty")
    raise OSError(28, "No space left on device")


@dg.job
def load_job() -> None:
    load()


def _fail_every_attempt(instance: dg.DagsterInstance, request_id: str, fault: str) -> None:
    while (request := keyed_request(instance, request_id)) is not None:
        result = load_job.execute_in_process(
            instance=instance,
            run_config={"ops": {"load": {"config": {"fault": fault}}}},
            tags=request.tags,
            raise_on_error=False,
        )
        assert not result.success


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_environment_faults_are_forgiven_and_input_faults_are_not(instance) -> None:
    _fail_every_attempt(instance, "raw-2016-04-disk", "environment")
    _fail_every_attempt(instance, "raw-2016-04-bad-file", "input")
    assert next_attempt(instance, "raw-2016-04-disk") is None  # within one replay: bounded
    assert next_attempt(instance, "raw-2016-04-bad-file") is None
    assert len(given_up(instance)) == 2

    forgiven = forgive_environment_faults(instance)
    assert len(forgiven) == MAX_ATTEMPTS
    assert next_attempt(instance, "raw-2016-04-disk") == MAX_ATTEMPTS + 1
    assert next_attempt(instance, "raw-2016-04-bad-file") is None
    [stuck] = given_up(instance)
    assert stuck.tags["churn/request"] == "raw-2016-04-bad-file"
    faults = {r.tags[FAULT_TAG] for r in instance.get_runs()}
    assert faults == {"input", "environment"}

    # Judged once: a second pass forgives nothing more.
    assert forgive_environment_faults(instance) == []


def test_a_young_environment_fault_waits_before_it_is_forgiven(instance) -> None:
    _fail_every_attempt(instance, "raw-2016-04-disk", "environment")
    an_hour_ago = datetime.now() - timedelta(hours=1)
    assert forgive_environment_faults(instance, an_hour_ago) == []
    assert next_attempt(instance, "raw-2016-04-disk") is None
    assert len(forgive_environment_faults(instance, datetime.now() + timedelta(seconds=1))) == 3
