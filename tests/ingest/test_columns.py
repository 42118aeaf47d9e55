import pytest

from retail_clv.errors import SchemaError
from retail_clv.ingest.columns import normalise_name, parse_column_options, resolve_columns

ONLINE_RETAIL_II = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]
UCI_ONLINE_RETAIL = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def test_online_retail_ii_header_maps_every_field() -> None:
    assert resolve_columns(ONLINE_RETAIL_II) == {
        "invoice": "Invoice",
        "stock_code": "StockCode",
        "description": "Description",
        "quantity": "Quantity",
        "invoice_date": "InvoiceDate",
        "price": "Price",
        "customer_id": "Customer ID",
        "country": "Country",
    }


def test_uci_online_retail_header_maps_every_field() -> None:
    mapping = resolve_columns(UCI_ONLINE_RETAIL)
    assert mapping["invoice"] == "InvoiceNo"
    assert mapping["price"] == "UnitPrice"
    assert mapping["customer_id"] == "CustomerID"


@pytest.mark.parametrize(
    "header",
    [
        # German, French, Spanish shop exports
        [
            "Rechnungsnr.",
            "Artikelnummer",
            "Bezeichnung",
            "Menge",
            "Datum",
            "Einzelpreis",
            "Kundennummer",
            "Land",
        ],
        [
            "N° facture",
            "Référence article",
            "Désignation",
            "Qté",
            "Date",
            "Prix unitaire",
            "Client",
            "Pays",
        ],
        [
            "Número factura",
            "Código",
            "Descripción",
            "Cantidad",
            "Fecha",
            "Precio",
            "Cliente",
            "País",
        ],
    ],
)
def test_common_european_headers_map_every_field(header: list[str]) -> None:
    mapping = resolve_columns(header)
    assert list(mapping) == [
        "invoice",
        "stock_code",
        "description",
        "quantity",
        "invoice_date",
        "price",
        "customer_id",
        "country",
    ]
    assert list(mapping.values()) == header


def test_variants_are_case_space_and_punctuation_insensitive() -> None:
    found = ["order_id", "SKU", "qty", "Order Date", "unit price", "customer-id", " COUNTRY "]
    mapping = resolve_columns(found)
    assert mapping == {
        "invoice": "order_id",
        "stock_code": "SKU",
        "quantity": "qty",
        "invoice_date": "Order Date",
        "price": "unit price",
        "customer_id": "customer-id",
        "country": " COUNTRY ",
    }


def test_user_mapping_wins_and_matches_loosely() -> None:
    found = [*ONLINE_RETAIL_II[:6], "Cust No", "Customer ID", "Country"]
    mapping = resolve_columns(found, {"customer_id": "cust no"})
    assert mapping["customer_id"] == "Cust No"


def test_missing_required_column_names_it_lists_found_and_suggests() -> None:
    found = ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Country", "Custmer"]
    with pytest.raises(SchemaError) as info:
        resolve_columns(found, where="x.csv")
    message = str(info.value)
    assert "required column 'customer_id' is missing in x.csv" in message
    assert "'Invoice', 'StockCode'" in message
    assert "closest match: 'Custmer'" in message
    assert '--column customer_id="<column name>"' in message


def test_every_missing_required_column_is_named_at_once() -> None:
    with pytest.raises(SchemaError) as caught:
        resolve_columns(["Order X", "Bar", "Qty", "Unit Cost"], where="x.csv")
    message = str(caught.value)
    assert message.startswith(
        "required columns 'invoice', 'stock_code', 'invoice_date', 'customer_id' are missing in "
        "x.csv; columns found: 'Order X', 'Bar', 'Qty', 'Unit Cost'. invoice (closest match: "
        "'Order X');"
    )
    assert message.endswith(
        'Map each explicitly: --column invoice="<column name>" --column stock_code="<column '
        'name>" --column invoice_date="<column name>" --column customer_id="<column name>"'
    )


def test_a_shop_platform_order_export_needs_only_the_order_number_mapped() -> None:
    header = ["Name", "Email", "Created at", "Lineitem quantity", "Lineitem name"]
    header += ["Lineitem price", "Lineitem sku", "Billing Country"]
    with pytest.raises(SchemaError, match="required column 'invoice' is missing"):
        resolve_columns(header)  # "Name" (#1001) is too generic to guess
    assert resolve_columns(header, {"invoice": "Name"}) == {
        "invoice": "Name",
        "stock_code": "Lineitem sku",
        "description": "Lineitem name",
        "quantity": "Lineitem quantity",
        "invoice_date": "Created at",
        "price": "Lineitem price",
        "customer_id": "Email",
        "country": "Billing Country",
    }


def test_a_required_column_taken_by_another_mapping_is_named_as_such() -> None:
    with pytest.raises(SchemaError) as info:
        resolve_columns(ONLINE_RETAIL_II, {"price": "Quantity"}, where="x.csv")
    message = str(info.value)
    assert "required column 'quantity': the column 'Quantity' in x.csv is already mapped to " in (
        message
    )
    assert "'price'" in message and "is missing" not in message


def test_the_suggestion_skips_columns_already_matched_to_other_fields() -> None:
    found = [c for c in ONLINE_RETAIL_II if c != "Customer ID"]
    with pytest.raises(SchemaError) as info:
        resolve_columns(found, where="x.csv")
    message = str(info.value)
    assert "required column 'customer_id' is missing in x.csv" in message
    assert "closest match" not in message  # was 'StockCode', already the stock code


def test_mapping_to_absent_column_fails_with_suggestion() -> None:
    with pytest.raises(SchemaError, match=r"'Cust Num' given for field 'customer_id'.*closest"):
        resolve_columns(ONLINE_RETAIL_II, {"customer_id": "Cust Num"})


def test_unknown_field_in_mapping_suggests_the_right_one() -> None:
    with pytest.raises(
        SchemaError, match=r"unknown field 'customerid'.*did you mean 'customer_id'"
    ):
        resolve_columns(ONLINE_RETAIL_II, {"customerid": "Customer ID"})


def test_one_column_cannot_serve_two_fields() -> None:
    with pytest.raises(SchemaError, match="mapped to both"):
        resolve_columns(ONLINE_RETAIL_II, {"invoice": "Invoice", "stock_code": "Invoice"})


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("customer_id=Cust No", {"customer_id": "Cust No"}),
        ('price="Unit Price"', {"price": "Unit Price"}),
    ],
)
def test_parse_column_options(option: str, expected: dict[str, str]) -> None:
    assert parse_column_options([option]) == expected


@pytest.mark.parametrize("option", ["customer_id", "=x", "customer_id="])
def test_parse_column_options_rejects_malformed(option: str) -> None:
    with pytest.raises(SchemaError, match="expected FIELD=COLUMN"):
        parse_column_options([option])


def test_parse_column_options_refuses_a_field_given_twice() -> None:
    with pytest.raises(SchemaError, match="customer_id is given twice"):
        parse_column_options(["customer_id=Email", "customer_id=Country"])
    # the same mapping repeated is harmless
    assert parse_column_options(["price=P", 'price="P"']) == {"price": "P"}


def test_normalise_name() -> None:
    assert normalise_name(" Customer ID ") == "customerid"
    assert normalise_name("Invoice_No.") == "invoiceno"


def test_two_columns_matching_one_field_are_refused() -> None:
    found = ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "price", "Customer ID"]
    with pytest.raises(
        SchemaError, match=r"columns 'Price', 'price' .* all look like the field 'price'"
    ):
        resolve_columns(found)
    assert resolve_columns(found, {"price": "price"})["price"] == "price"
