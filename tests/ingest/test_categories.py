import polars as pl
import pytest

from retail_clv.ingest.categories import (
    CATEGORIES,
    CATEGORY_RULES,
    NON_PRODUCT,
    UNCATEGORISED,
    categorise,
)


def category(description: str | None, stock_code: str = "12345") -> str:
    frame = pl.DataFrame(
        {"code": [stock_code], "text": [description]}, schema={"code": pl.Utf8, "text": pl.Utf8}
    )
    return frame.select(categorise(pl.col("code"), pl.col("text")))[0, 0]


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "Candles & Holders"),
        ("PINK CHERRY LIGHTS", "Lighting"),
        ("JUMBO BAG RED RETROSPOT", "Bags"),
        ("LUNCH BAG RED RETROSPOT", "Bags"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "Kitchen & Dining"),
        ("REGENCY CAKESTAND 3 TIER", "Kitchen & Dining"),
        ("PAPER CHAIN KIT 50'S CHRISTMAS", "Christmas"),
        ("CHRISTMAS LIGHTS 10 REINDEER", "Christmas"),  # the season beats the object
        ("WRAP RED APPLES", "Cards & Wrap"),
        ("SPACEBOY BIRTHDAY CARD", "Party"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "Party"),
        ("RED RETROSPOT NOTEBOOK", "Stationery"),
        ("SPACEBOY CHILDRENS EGG CUP", "Kitchen & Dining"),
        ("JIGSAW TREE WITH BIRDHOUSE", "Toys & Games"),
        ("ASSORTED COLOUR BIRD ORNAMENT", "Garden"),
        ("DIAMANTE NECKLACE BLACK", "Jewellery & Accessories"),
        ("STORAGE TIN VINTAGE LEAF", "Storage"),
        ("RED WOOLLY HOTTIE WHITE HEART.", "Home Decor"),
        ("CHOCOLATE HOT WATER BOTTLE", "Kitchen & Dining"),  # first rule wins: CHOCOLATE
        ("KNITTED UNION FLAG HOT WATER BOTTLE", "Textiles"),
        ("RETRO COFFEE MUGS ASSORTED", "Kitchen & Dining"),
        ("IVORY KITCHEN SCALES", "Kitchen & Dining"),
        ("ALARM CLOCK BAKELIKE RED", "Clocks"),
        ("PLEASE ONE PERSON METAL SIGN", "Signs & Plaques"),
        ("WHITE HANGING HEART", "Home Decor"),
        ("HAPPY EASTER HANGING DECORATION", "Easter"),
        ("BATH BUILDING BLOCK WORD", "Bath & Beauty"),
        ("  white cherry lights ", "Lighting"),  # case and spaces do not matter
    ],
)
def test_descriptions_map_to_categories(description: str, expected: str) -> None:
    assert category(description) == expected


@pytest.mark.parametrize(
    "code",
    [
        "POST",
        "DOT",
        "M",
        "m",
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST2",
        "C2",
        "TEST001",
        "gift_0001_20",
        "PADS",
        "DCGS0058",
        "CRUK",
    ],
)
def test_non_product_stock_codes(code: str) -> None:
    assert category("ANYTHING AT ALL", code) == NON_PRODUCT


def test_unknown_or_missing_description_is_uncategorised() -> None:
    assert category("XYZZY FROBNICATOR") == UNCATEGORISED
    assert category(None) == UNCATEGORISED


def test_words_match_whole_words_only() -> None:
    # "CARD" must not match inside "CARDIGAN"; "TIN" not inside "TINY"
    assert category("CARDIGAN") == UNCATEGORISED
    assert category("TINY FROBNICATOR") == UNCATEGORISED


def test_taxonomy_is_a_manageable_closed_list() -> None:
    assert 15 <= len(CATEGORIES) <= 25
    assert CATEGORIES[-1] == UNCATEGORISED and NON_PRODUCT in CATEGORIES
    assert len({name for name, _ in CATEGORY_RULES}) == len(CATEGORY_RULES)
