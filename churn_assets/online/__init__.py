"""The online store: each cohort's latest features and batch scores, for lookups by msno.

Publishing writes a whole new version of a cohort, then flips one pointer to it, so a reader
(``churn-assets serve``) never sees a half-written refresh. Redis when ``CHURN_REDIS_URL`` is set,
otherwise one small SQLite file per published version under ``$CHURN_HOME/online/``: the DuckDB
warehouse takes no reader beside its writer, and the pipeline writes it during every run.
"""

from churn_assets.online.store import (
    OnlineRecord,
    OnlineStore,
    Publication,
    StoreUnavailable,
    encode_payload,
)

__all__ = ["OnlineRecord", "OnlineStore", "Publication", "StoreUnavailable", "encode_payload"]
