"""What the API takes and gives (DESIGN §7), as pydantic models: a bad request is answered 422
naming its field, and nothing but JSON is ever parsed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A feature value: a finite number, or null for "unknown" (LightGBM's missing value).
FeatureValue = Annotated[float, Field(allow_inf_nan=False)] | None
FeatureName = Annotated[str, Field(min_length=1, max_length=100)]
MAX_FEATURES = 500


# "Exactly one of msno or features", said in the schema too, so a client or a schema-driven
# test (schemathesis) knows the two shapes a request takes; the validator below enforces it.
ONE_OF_MSNO_OR_FEATURES = {
    "oneOf": [
        {"required": ["msno"], "properties": {"msno": {"type": "string"}}},
        {"required": ["features"], "properties": {"features": {"type": "object"}}},
    ]
}


# How long an msno may be, in characters (the lean path of serving/lean.py holds to it too).
MSNO_LENGTH = (1, 200)
Msno = Annotated[str, Field(min_length=MSNO_LENGTH[0], max_length=MSNO_LENGTH[1])]


class ScoreRequest(BaseModel):
    """A user to look up in the online store, or a user's features to score as given."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_OF_MSNO_OR_FEATURES)

    msno: Msno | None = Field(
        default=None, description="A user of a published cohort: scored from its stored features."
    )
    features: dict[FeatureName, FeatureValue] | None = Field(
        default=None,
        max_length=MAX_FEATURES,
        description="Every feature the serving model reads (GET /v1/model lists them).",
    )

    @model_validator(mode="after")
    def one_of_msno_or_features(self) -> ScoreRequest:
        if (self.msno is None) == (self.features is None):
            raise ValueError("give exactly one of 'msno' or 'features'")
        return self


class ScoreResponse(BaseModel):
    msno: str | None = Field(description="The user looked up (null when features were given).")
    cohort_month: date | None = Field(description="The cohort the features were looked up in.")
    churn_probability: float
    bucket: Literal["A", "B", "C"]
    model_version: str
    top_reasons: str = Field(description="Three reasons, '; '-separated, as in predictions.")
    reasons_from: Literal["batch", "publication", "on_demand"] = Field(
        description="Where the version that scored the cohort serves: 'batch' (the predictions "
        "table's, buckets A and B) or 'publication' (computed by that version when the cohort "
        "was published to the online store); else 'on_demand', computed now. All read the same."
    )
    bucket_policy: str = Field(
        description="What drew the bucket: the batch's policy (predictions.bucket_policy) where "
        "the version that scored the cohort serves, else the cut-offs."
    )


class ModelResponse(BaseModel):
    model_name: str
    alias: str
    version: str
    training_cohorts: list[str] = Field(description="The cohorts the version learnt from.")
    validation_cohort: str | None = Field(description="The cohort it was validated on.")
    features: list[str] = Field(description="What POST /v1/score with 'features' must give.")
    loaded_at: datetime


class HealthResponse(BaseModel):
    status: Literal["ok", "no model"]
    model_version: str | None
    online_store: str
    published_cohorts: list[date]
