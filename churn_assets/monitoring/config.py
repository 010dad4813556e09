"""The knobs of drift_report, each with its one default."""

import dagster as dg
from pydantic import Field

from churn_assets.monitoring import psi, segments


class DriftConfig(dg.Config):
    moderate_psi: float = Field(
        default=psi.MODERATE_PSI,
        description="PSI (beyond sampling noise) from which a column, the weighted score or the "
        "prediction score warns: the credit-scoring convention for a moderate shift.",
    )
    major_psi: float = Field(
        default=psi.MAJOR_PSI,
        description="PSI from which they are an error: the convention for a major shift.",
    )
    new_member_days: int = Field(
        default=90,
        ge=0,
        description="Also compare the members registered within this many days of their "
        "cut-off (the first three months, where a change in who joins shows first); 0: never.",
    )
    max_segments: int = Field(
        default=segments.MAX_SEGMENTS,
        ge=0,
        description="Segments judged per segment column (city, channel, payment method, plan): "
        "the largest in the cohort with 50 rows a side; 0: no segment drift.",
    )
    max_segment_rows: int = Field(
        default=segments.MAX_SEGMENT_ROWS,
        description="Rows of each side the segment statistics read at most (a hash sample): "
        "a grouped pass costs about its rows times the segment columns and the columns.",
    )
    max_reference_rows: int = Field(
        default=psi.MAX_REFERENCE_ROWS,
        description="Reference rows the feature statistics read at most (a hash sample of users).",
    )
    max_scored_rows: int = Field(
        default=200_000,
        description="Rows of each side the champion scores for prediction drift, at most.",
    )
    html_report: bool | None = Field(
        default=None,
        description="Build Evidently's HTML report (about 10 s a cohort whatever its size); "
        "unset: as the reports resource says (CHURN_DRIFT_HTML). The verdicts never depend on it.",
    )
    html_rows: int = Field(default=5_000, description="Rows of each side in the HTML report.")
    html_columns: int = Field(
        default=25, description="Columns in the HTML report: the largest contributions first."
    )
    log_to_mlflow: bool = Field(
        default=True, description="Log the HTML and the scores as an MLflow run drift-YYYY-MM."
    )
