"""The ``churn_model`` asset: train, judge against baselines, register, and decide the champion.

A candidate is registered only when it clears the hurdle: its validation AUC beats the best
baseline (the as-is rule, a logistic regression) by ``hurdle_margin``; or, when the champion is
provisional or in question, when it ties it (below, but not beyond doubt:
:mod:`churn_assets.training.hurdle`). A rejected candidate keeps its MLflow run (metrics, model,
reason) for the record. The one exception is the very first model
(``first_model_skips_hurdle``): with no champion nothing is scored at all, so it is registered,
tagged ``cleared_hurdle=false``, and the monthly backtests hold it against the rule from then on.

Every registered version becomes ``challenger``; it also becomes ``champion`` when there is none
yet, or, with ``auto_promote``, when it beats the current champion on users neither was tuned on:
half of the validation cohort's users are held out of the search, both models are scored there,
and a paired bootstrap must put the AUC gain's lower bound above ``promotion_margin``
(:mod:`churn_assets.training.promotion` decides, and says why and what is recorded).

The steps live in modules named for them: ``window`` (the labelled cohorts), ``candidate`` (the
search and the hurdle), ``window_choice`` (after a persistent performance failure, which cohorts
to learn from), ``promotion`` (registration and champion rules), ``tracking`` (MLflow and
metadata) and ``registration`` (tags and aliases, all or nothing).
"""

import math
from datetime import date

import dagster as dg
from mlflow.entities.model_registry import ModelVersion

from churn_assets import keys
from churn_assets.features.feature_sets import feature_columns_of
from churn_assets.modeling.frame import LABEL
from churn_assets.partitions import month_start
from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource, ReportsResource
from churn_assets.settings import REGISTERED_MODEL_NAME
from churn_assets.training.candidate import Candidate, tune_and_judge
from churn_assets.training.config import TrainingConfig
from churn_assets.training.promotion import (
    ChampionComparison,
    compare_with_champion,
    decide_promotion,
    registers,
)
from churn_assets.training.recalibration import (
    recalibrate,
    recalibration_wanted,
    register_recalibrated,
)
from churn_assets.training.registration import tag_and_promote
from churn_assets.training.split import split_by_time
from churn_assets.training.tracking import (
    candidate_metadata,
    log_booster,
    log_candidate_run,
    name_training_run,
)
from churn_assets.training.window import LabelledWindow, load_labelled_window


@dg.asset(
    group_name="training",
    kinds={"mlflow", "lightgbm"},
    deps=[keys.FEATURES, keys.LABELS],
    # dagster-mlflow's tracking resource is old-style, so every resource is asked for by key.
    required_resource_keys={"mlflow", "warehouse", "registry", "reports"},
)
def churn_model(context: dg.AssetExecutionContext, config: TrainingConfig) -> dg.MaterializeResult:
    """A FLAML-tuned LightGBM churn classifier, registered in MLflow as ``churn-model``."""
    try:
        return _train_candidate(context, config)
    except BaseException:
        # dagster-mlflow leaves its run active when the step fails: end it as FAILED, or the
        # next training in this process would log into a run of a finished step.
        context.resources.mlflow.end_run(status="FAILED")
        raise


def _train_candidate(
    context: dg.AssetExecutionContext, config: TrainingConfig
) -> dg.MaterializeResult:
    """Train, judge against the baselines and the champion, log, and register if it clears."""
    registry: ModelRegistryResource = context.resources.registry
    as_of = month_start(config.as_of_month) if config.as_of_month else month_start(date.today())
    name_training_run(registry.client, context.run.tags, as_of)
    window = _labelled_window(context, config, as_of)
    try:
        split = split_by_time(
            window.frame,
            feature_columns_of([c for c in window.frame.columns if c != LABEL]),
            config.comparison_held_out_share,
        )
    except ValueError as exc:
        return _not_trained(context, str(exc))
    # One look at the registry: warm start, hurdle and comparison judge the same champion.
    champion = registry.champion()
    candidate = tune_and_judge(context, config, window, split, champion)
    register = registers(config, champion, candidate.hurdle)
    log_candidate_run(context.resources.mlflow, config, as_of, candidate, register)
    # Compared before anything is registered, so a champion that cannot be loaded leaves no
    # half-registered version behind.
    comparison = (
        compare_with_champion(registry, champion, candidate.model(), candidate.split, config)
        if register and champion is not None
        else None
    )
    _log_comparison(context, comparison)
    context.log.info(
        "logging the booster to MLflow" + (" and registering it" if register else " (rejected)")
    )
    model_info = log_booster(candidate, register)
    common = candidate_metadata(as_of, candidate, register, model_info.run_id)
    common |= _links(context, model_info.run_id, None)
    if not register:
        result = _rejected(context, candidate, champion, common)
    else:
        version = str(model_info.registered_model_version)
        result = _registered(
            context, config, as_of, candidate, version, champion, comparison, common
        )
    if recalibration_wanted(config, champion) and not result.metadata["promoted_to_champion"]:
        result = _recalibrated(context, config, as_of, candidate, champion, result)
    return result


def _recalibrated(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    as_of: date,
    candidate: Candidate,
    champion: ModelVersion,
    result: dg.MaterializeResult,
) -> dg.MaterializeResult:
    """The champion kept its place against the candidate: refit its map on this validation
    cohort, and make the recalibrated version champion when it beats the current map."""
    recalibration = recalibrate(context.resources.registry, champion, candidate.split, config)
    if recalibration is None:
        return result
    context.log.info(recalibration.reason)
    extra: dict[str, object] = recalibration.metadata()
    if recalibration.promotes:
        version = register_recalibrated(context, recalibration, champion, as_of, candidate.split)
        extra |= {
            "champion_recalibrated": True,
            "recalibrated_version": version,
            "champion_version": version,
            **_links(context, "", version),
        }
    return dg.MaterializeResult(metadata={**(result.metadata or {}), **readable(extra)})


def _labelled_window(
    context: dg.AssetExecutionContext, config: TrainingConfig, as_of: date
) -> LabelledWindow:
    """The window to learn from; a run with no labelled rows at all fails, naming the month."""
    window = load_labelled_window(
        context.resources.warehouse, as_of, config.window_cohorts, config.include_incomplete_cohorts
    )
    if window.frame.empty:
        raise dg.Failure(f"no labelled feature rows with labels known by {as_of:%Y-%m}")
    if window.used_incomplete:
        context.log.warning(
            "fewer than two complete labelled cohorts: training on incomplete ones too ("
            + ", ".join(f"{c:%Y-%m}" for c in window.incomplete_cohorts)
            + ")"
        )
    return window


def _links(
    context: dg.AssetExecutionContext, run_id: str, version: str | None
) -> dict[str, dg.MetadataValue]:
    """One click from the materialization: the run, and a registered version's page in the
    MLflow UI and its model card (served by ``churn-assets serve``; the health report of the
    same run writes it)."""
    reports: ReportsResource = context.resources.reports
    links = {}
    if run_id:
        run = context.resources.registry.client.get_run(run_id)
        links["mlflow_run"] = reports.run_url(run.info.experiment_id, run_id)
    if version is not None:
        links["mlflow_model_version"] = reports.version_url(version)
        links["model_card"] = reports.url(reports.card_path(version))
    return {label: dg.MetadataValue.url(url) for label, url in links.items()}


def _not_trained(context: dg.AssetExecutionContext, reason: str) -> dg.MaterializeResult:
    """No candidate can be fitted on this window (e.g. a single class): say so, change nothing."""
    context.log.warning(f"no candidate trained: {reason}")
    context.resources.mlflow.set_tags({"candidate_status": "not_trained", "reason": reason})
    context.resources.mlflow.end_run()
    return dg.MaterializeResult(
        metadata=readable({"registered": False, "model_version": "", "not_trained_because": reason})
    )


def _log_comparison(
    context: dg.AssetExecutionContext, comparison: ChampionComparison | None
) -> None:
    """The champion comparison's figures as metrics of the candidate's MLflow run."""
    if comparison is None or comparison.champion_unscorable:
        return
    context.resources.mlflow.log_metrics(
        {
            k: float(v)
            for k, v in comparison.metadata().items()
            if isinstance(v, float) and not math.isnan(v)
        }
    )


def _rejected(
    context: dg.AssetExecutionContext,
    candidate: Candidate,
    champion: ModelVersion | None,
    common: dict[str, object],
) -> dg.MaterializeResult:
    """A candidate below the hurdle: its run stays for the record, the registry is unchanged."""
    verdict = candidate.hurdle.verdict()
    context.log.warning(f"candidate not registered: it does not beat the baseline ({verdict})")
    context.resources.mlflow.end_run()
    return dg.MaterializeResult(
        metadata=readable(
            {
                **common,
                "model_version": "",
                "champion_version": str(champion.version) if champion else "",
                "promoted_to_champion": False,
            }
        )
    )


def _registered(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    as_of: date,
    candidate: Candidate,
    version: str,
    champion: ModelVersion | None,
    comparison: ChampionComparison | None,
    common: dict[str, object],
) -> dg.MaterializeResult:
    """A registered version: tagged, challenger, and champion when the promotion rule says so."""
    decision = decide_promotion(
        config,
        champion,
        comparison,
        candidate.hurdle.good_enough_for_a_doubtful_champion,
        candidate.window.used_incomplete,
    )
    tag_and_promote(context, as_of, candidate, version, comparison, decision)
    champion_version = comparison.champion_version if comparison is not None else None
    context.log.info(
        f"registered {REGISTERED_MODEL_NAME} v{version} (val AUC {candidate.metrics['auc']:.4f}); "
        f"champion is now v{version if decision.promote else champion_version}"
    )
    context.resources.mlflow.end_run()
    return dg.MaterializeResult(
        metadata=readable(
            {
                **common,
                "model_version": version,
                "champion_version": version if decision.promote else str(champion_version),
                "promoted_to_champion": decision.promote,
                "beats_champion": decision.beats_champion,
                "comparison": decision.reason,
                **(comparison.metadata() if comparison is not None else {}),
                "model_uri": f"models:/{REGISTERED_MODEL_NAME}/{version}",
                **_links(context, "", version),
            }
        )
    )
