"""Every name that ties the project's parts together, spelt once: asset keys, check names, run
tags and model-version tags.

An asset, a sensor that watches it and a report that reads its checks all import the name from
here, so renaming one is a change of one line, and a typo is an import error rather than a
sensor that silently never fires.
"""

import dagster as dg

# Assets, in the order of the flow (DESIGN §5 names the tables most of them write).
MEMBERS = dg.AssetKey("members")
TRANSACTIONS = dg.AssetKey("transactions")
USER_LOGS = dg.AssetKey("user_logs")
LABELS = dg.AssetKey("labels")
FEATURES = dg.AssetKey("features")
CHURN_MODEL = dg.AssetKey("churn_model")
PREDICTIONS = dg.AssetKey("predictions")
ONLINE_FEATURES = dg.AssetKey("online_features")  # what `churn-assets serve` looks users up in
PERFORMANCE_ESTIMATE = dg.AssetKey("performance_estimate")
DRIFT_REPORT = dg.AssetKey("drift_report")
MODEL_PERFORMANCE = dg.AssetKey("model_performance")
RETENTION_OUTCOME = dg.AssetKey("retention_outcome")
AT_RISK_LIST = dg.AssetKey("at_risk_list")
MODEL_HEALTH_REPORT = dg.AssetKey("model_health_report")  # the monthly health page

# Who answers for every asset (Dagster's owners: a team or an e-mail address).
TEAM_OWNER = "team:churn"

# Jobs, one per moment of the monthly loop, and the champion's lifecycle.
LOAD_JOB = "load_job"
COHORT_JOB = "cohort_job"
TRAINING_JOB = "training_job"
PROMOTION_JOB = "promotion_job"
RETENTION_JOB = "retention_job"
AT_RISK_JOB = "at_risk_job"  # the weekly list

# Checks of the raw tables (each raw asset carries all that apply to it).
SCHEMA_CHECK = "schema"
NULLS_CHECK = "nulls"
RANGES_CHECK = "ranges"
DUPLICATES_CHECK = "duplicates"
REFERENTIAL_CHECK = "referential"
VOLUME_CHECK = "volume"

# Checks of the features.
COHORT_NOT_EMPTY_CHECK = "cohort_not_empty"
COVERAGE_CHECK = "window_complete"

# Checks of drift_report.
DRIFT_CHECK = "feature_drift"
PREDICTION_CHECK = "prediction_drift"
DRIFT_CHECK_KEY = dg.AssetCheckKey(DRIFT_REPORT, DRIFT_CHECK)

# Checks of model_performance: the champion against the as-is rule, and against its own level.
RULE_CHECK = "champion_beats_rule"
CHAMPION_PERFORMANCE_CHECK = "champion_performance"
RULE_CHECK_KEY = dg.AssetCheckKey(MODEL_PERFORMANCE, RULE_CHECK)
CHAMPION_PERFORMANCE_CHECK_KEY = dg.AssetCheckKey(MODEL_PERFORMANCE, CHAMPION_PERFORMANCE_CHECK)
# And whether the champion's scores still mean the churn they announce.
CALIBRATION_CHECK = "champion_calibration"
CALIBRATION_CHECK_KEY = dg.AssetCheckKey(MODEL_PERFORMANCE, CALIBRATION_CHECK)

# Check of performance_estimate: the champion's performance estimated from its scores, before the
# cohort's labels land, against its expected level.
ESTIMATED_PERFORMANCE_CHECK = "estimated_performance"
ESTIMATED_PERFORMANCE_CHECK_KEY = dg.AssetCheckKey(
    PERFORMANCE_ESTIMATE, ESTIMATED_PERFORMANCE_CHECK
)

# Run tags the sensors write and read back.
REQUEST_TAG = "churn/request"  # one logical request, retried under several runs
ATTEMPT_TAG = "churn/attempt"
TRIGGER_TAG = "churn/trigger"  # why a run was launched
LABELS_TAG = "churn/labels"  # the newest labelled cohort a training run could learn from
LAUNCHED_BY_TAG = "churn/launched_by"
# On a failed run, once judged: "input" (the data or the request said no: counts as an attempt)
# or "environment" (a crash, a service, a kill: forgiven, retried as if it had not happened).
FAULT_TAG = "churn/fault"
ALERTED_TAG_PREFIX = "churn/alerted/"  # + the event: a run alerted once per event
PARTITION_TAG = "dagster/partition"  # Dagster's own

# MLflow run tags.
DAGSTER_RUN_TAG = "dagster_run_id"  # the Dagster run an MLflow run belongs to
RUN_KIND_TAG = "churn/kind"
# What a training run was for, in a word or two ("first model", "drift"): its MLflow run's name.
TRAINING_CAUSE_TAG = "churn/cause"

# Model-version tags the registry keeps beside the aliases.
BEST_CONFIG_TAG = "best_config"  # FLAML's best configuration: the next search's warm start
HELD_OUT_TAG = "tuning_held_out_share"  # share of its validation cohort it was not tuned on
# A version that is its champion's booster with a new calibration names that champion here.
RECALIBRATED_FROM_TAG = "recalibrated_from"
# The mapping from the booster's raw score to the probability every consumer reads (JSON).
CALIBRATION_TAG = "calibration"
# Written last when a version is registered: a version without it was cut off mid-registration.
PROMOTED_TAG = "promoted"
