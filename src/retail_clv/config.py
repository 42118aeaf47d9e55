"""One typed settings object, read from the environment and an optional ``.env`` file.

Every variable is prefixed ``CLV_``; see ``.env.example`` for the documented list.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings of retail-clv."""

    model_config = SettingsConfigDict(
        env_prefix="CLV_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///data/retail_clv.db",
        description="SQLAlchemy URL of the store: SQLite file or postgresql+psycopg://...",
    )
    models_dir: Path = Field(default=Path("models"), description="Where model runs are written.")
    output_dir: Path = Field(default=Path("output"), description="Where predictions CSVs go.")
    horizon_days: int = Field(default=30, ge=1, le=366, description="Prediction horizon in days.")
    max_train_cutoffs: int | None = Field(
        default=None,
        ge=1,
        description="Train on at most this many cutoffs, the newest (clv train, backtest, "
        "POST /train); unset trains on all history, which validated best on Online Retail II. "
        "A cap bounds training time and memory on a big shop.",
    )
    n_jobs: int = Field(
        default=2,
        ge=1,
        le=512,
        description="CPU threads for training the forest and XGBoost (clv train, backtest, "
        "demo, POST /train). Results do not depend on it beyond floating-point rounding.",
    )
    api_key: str | None = Field(
        default=None, description="When set, mutating API endpoints require this key."
    )
    max_upload_mb: int = Field(default=200, ge=1, description="Upload size limit of the API.")
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8501"], description="Allowed CORS origins."
    )
    api_url: str = Field(default="http://localhost:8000", description="API used by the dashboard.")
    currency_symbol: str = Field(default="£", description="Currency symbol shown by the dashboard.")

    @field_validator("max_train_cutoffs", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """``CLV_MAX_TRAIN_CUTOFFS=`` (an uncommented example line) means all history."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key")
    @classmethod
    def _refuse_placeholder_key(cls, value: str | None) -> str | None:
        """Refuse the placeholder key shipped in ``.env.example``."""
        if value is not None and value.strip() in {"", "change-me", "changeme"}:
            raise ValueError(
                "CLV_API_KEY is set to a placeholder; choose a real secret or unset it"
            )
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
