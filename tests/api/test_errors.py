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
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputFileError("x"), 422),
        (SchemaError("x"), 422),
        (NotEnoughDataError("x"), 422),
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
