import pytest

from retail_clv.api.errors import status_for
from retail_clv.errors import (
    InputFileError,
    ModelMismatchError,
    ModelNotFoundError,
    NotEnoughDataError,
    RetailClvError,
    SchemaError,
    StoreError,
    TrainingDivergedError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputFileError("x"), 422),
        (SchemaError("x"), 422),
        (NotEnoughDataError("x"), 422),
        (TrainingDivergedError("x"), 422),  # e.g. /predict rows far beyond the training data
        (ModelNotFoundError("x"), 503),
        (ModelMismatchError("x"), 503),
        (StoreError("x"), 503),
        (RetailClvError("x"), 400),
    ],
)
def test_domain_errors_map_to_documented_status(error: RetailClvError, status: int) -> None:
    assert status_for(error) == status


def test_subclass_of_a_mapped_error_inherits_its_status() -> None:
    class Damaged(InputFileError):
        pass

    assert status_for(Damaged("x")) == 422


def test_domain_error_becomes_detail_json(empty_client, monkeypatch) -> None:
    from retail_clv.api import services

    def refuse(*args, **kwargs):
        raise SchemaError("missing column 'Customer ID'; map it with --column")

    monkeypatch.setattr(services, "list_runs", refuse)
    response = empty_client.get("/models")
    assert response.status_code == 422
    assert response.json() == {"detail": "missing column 'Customer ID'; map it with --column"}


def test_an_unreachable_store_is_503_not_500(client, api_data, monkeypatch) -> None:
    import sqlalchemy as sa

    state = client.app.state.clv

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(state.store, "get", down)
    response = client.get(f"/customers/{api_data.scored_ids[0]}")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("The store is unavailable (Exception); retry once")
    assert "connection refused" not in detail  # driver text stays in the server log


def test_a_nul_character_in_a_customer_id_is_422(client) -> None:
    assert client.get("/customers/a%00b/prediction").status_code == 422
    assert client.post("/predict", json={"customer_ids": ["a\u0000b"]}).status_code == 422
