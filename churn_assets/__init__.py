"""churn_assets: churn prediction as Dagster software-defined assets.

Raw KKBox-format subscription logs become a point-in-time feature table in DuckDB, a FLAML-tuned
LightGBM model registered in MLflow, scored cohorts with action buckets and reasons, and Evidently
drift reports whose failing checks trigger retraining.
"""

from churn_assets.quiet import quiet_dagster_notes

__version__ = "0.1.0"

# Before any submodule defines an asset: `dagster dev` imports the definitions through here.
quiet_dagster_notes()
