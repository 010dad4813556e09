"""The feature SQL changes (a feature renamed: one column dropped, one added), end to end.

Everything runs through the real assets: raw loads of a simulated world, ``features`` built with
the shipped SQL, a first model, then ``features`` rebuilt with the changed SQL. The old champion
must fail naming the feature it misses, a retrain must learn the new feature set, and its
signature must follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.features import assets as feature_assets
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets.resources import default_resources, version_facts
from churn_assets.scoring.assets import predictions
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.simulator import simulate
from churn_assets.training.assets import churn_model
from churn_assets_tests.helpers import materialize

FEATURE_COHORTS = ["2016-02-01", "2016-03-01", "2016-04-01", "2016-05-01", "2016-06-01"]
LABELLED_COHORTS = FEATURE_COHORTS[:-1]
AS_OF = "2016-07"  # labels of 2016-05 are known: train on 02..04, validate on 05
DROPPED, ADDED = "days_since_last_listen", "weeks_since_last_listen"


def _materialize(assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    return materialize(assets, resources=default_resources(), **kwargs)


def _build_features() -> list[dict]:
    metadata = []
    for cohort in FEATURE_COHORTS:
        result = _materialize([feature_assets.features], partition_key=cohort)
        [event] = result.get_asset_materialization_events()
        metadata.append({k: v.value for k, v in event.materialization.metadata.items()})
    return metadata


def _train() -> dg.ExecuteInProcessResult:
    config = {"as_of_month": AS_OF, "time_budget_s": 1.0, "hurdle_margin": -1.0}
    return _materialize([churn_model], run_config={"ops": {"churn_model": {"config": config}}})


def _score_newest() -> dg.ExecuteInProcessResult:
    return _materialize([predictions], partition_key=FEATURE_COHORTS[-1], raise_on_error=False)


@pytest.fixture
def loaded_world(churn_env) -> Path:
    """A six-month world landed under CHURN_HOME, its raw tables and labels loaded."""
    home = Path(churn_env["CHURN_HOME"])
    simulate(home, users=400, months=6, seed=17)
    assert _materialize([members]).success
    for asset, first in ((transactions, "2015-01-01"), (user_logs, "2016-01-01")):
        tags = {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": "2016-06-01",
        }
        assert _materialize([asset], tags=tags).success
    for cohort in LABELLED_COHORTS:
        assert _materialize([labels], partition_key=cohort).success
    return home


def test_renamed_feature_retrains_and_the_old_version_names_what_it_misses(
    loaded_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    first_build = _build_features()
    assert first_build[0]["columns_added"] == [] and first_build[0]["columns_not_produced"] == []
    assert _train().success
    assert _score_newest().success
    client = MlflowClient(f"sqlite:///{loaded_world / 'mlflow.db'}")
    v1 = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    assert DROPPED in json.loads(version_facts(client, v1)["feature_columns"])

    # The feature SQL changes: the recency is now counted in weeks under a new name.
    shipped = feature_assets.SQL.read_text()
    assert f"g.{DROPPED}," in shipped
    changed = tmp_path / "cohort_features.sql"
    changed.write_text(shipped.replace(f"g.{DROPPED},", f"g.{DROPPED} / 7.0 AS {ADDED},"))
    monkeypatch.setattr(feature_assets, "SQL", changed)
    rebuilt = _build_features()
    assert rebuilt[0]["columns_added"] == [ADDED]
    assert all(m["columns_not_produced"] == [DROPPED] for m in rebuilt)
    with duckdb.connect(str(loaded_world / "warehouse.duckdb"), read_only=True) as conn:
        # The table keeps the union; each cohort records the set it was built with.
        columns = {row[0] for row in conn.execute("DESCRIBE features").fetchall()}
        assert {DROPPED, ADDED} <= columns
        recorded = conn.execute(
            "SELECT count(*) FILTER (column_name = ?), count(*) FILTER (column_name = ?) "
            "FROM feature_sets",
            [DROPPED, ADDED],
        ).fetchone()
        assert recorded == (0, len(FEATURE_COHORTS))

    # The champion needs the dropped feature: scoring fails and says which column is missing.
    failed = _score_newest()
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert DROPPED in failure.step_failure_data.error.message

    # A retrain learns the new feature set; the old champion cannot be scored on the validation
    # cohort any more, so the new version takes over and scoring works again.
    retrained = _train()
    assert retrained.success
    v2 = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    assert v2.version != v1.version
    learnt = json.loads(version_facts(client, v2)["feature_columns"])
    assert ADDED in learnt and DROPPED not in learnt
    signature = mlflow.models.get_model_info(v2.source).signature
    assert ADDED in signature.inputs.input_names()
    assert DROPPED not in signature.inputs.input_names()
    assert _score_newest().success
