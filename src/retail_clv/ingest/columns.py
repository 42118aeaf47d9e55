"""Map the columns of a raw file onto the canonical fields of retail-clv.

A raw export names its columns in many ways (``Invoice`` / ``InvoiceNo`` / ``Order ID``...).
:func:`resolve_columns` matches them case- and punctuation-insensitively against a table of
known aliases, applies an explicit user mapping first (``--column customer_id="Cust No"``),
and raises :class:`~retail_clv.errors.SchemaError` naming the missing field, listing the
columns found and suggesting the closest one.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence

from retail_clv.errors import SchemaError

#: Canonical fields in the order used for the row hash and the ``raw_*`` columns.
FIELDS: tuple[str, ...] = (
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
)

#: Fields a file must provide (``description`` and ``country`` may be absent).
REQUIRED_FIELDS: tuple[str, ...] = (
    "invoice",
    "stock_code",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
)

#: Optional field holding a real store / shop name; without it there is one store per country.
STORE_FIELD = "store"

#: Known spellings of each field, compared after :func:`normalise_name`.
ALIASES: dict[str, tuple[str, ...]] = {
    "invoice": (
        "invoice",
        "invoiceno",
        "invoicenumber",
        "invoiceid",
        "invoicenum",
        "orderid",
        "orderno",
        "ordernumber",
        "orderref",
        "orderreference",
        "order",
        "transactionid",
        "receiptno",
        "receiptid",
        "receiptnumber",
        "transactionno",
        "transactionnumber",
        "billno",
        "billnumber",
        # German, French, Spanish, Dutch, Italian exports
        "rechnungsnummer",
        "rechnungsnr",
        "rechnung",
        "belegnummer",
        "belegnr",
        "bestellnummer",
        "bestellnr",
        "auftragsnummer",
        "auftragsnr",
        "facture",
        "numerofacture",
        "numerodefacture",
        "nfacture",
        "commande",
        "numerocommande",
        "numerodecommande",
        "ncommande",
        "factura",
        "numerofactura",
        "pedido",
        "factuurnummer",
        "bestelnummer",
        "fattura",
        "numerofattura",
    ),
    "stock_code": (
        "stockcode",
        "stockid",
        "sku",
        "productcode",
        "productid",
        "itemcode",
        "itemid",
        "articlecode",
        "articleno",
        "articlenumber",
        "articleid",
        "productnumber",
        "itemnumber",
        "variantsku",
        "lineitemsku",
        "productsku",
        "itemsku",
        "artikelnummer",
        "artikelnr",
        "referenceproduit",
        "referencearticle",
        "codearticle",
        "codeproduit",
        "referencia",
        "codigo",
        "codigoproducto",
        "artikelcode",
        "codicearticolo",
        "codiceprodotto",
    ),
    "description": (
        "description",
        "productdescription",
        "productname",
        "itemdescription",
        "itemname",
        "product",
        "producttitle",
        "itemtitle",
        "lineitemname",
        "articlename",
        "articledescription",
        "beschreibung",
        "bezeichnung",
        "artikelbezeichnung",
        "artikelname",
        "produktname",
        "designation",
        "libelle",
        "nomproduit",
        "descripcion",
        "producto",
        "omschrijving",
        "descrizione",
    ),
    "quantity": (
        "quantity",
        "qty",
        "units",
        "unitssold",
        "quantitysold",
        "qtysold",
        "quantityordered",
        "qtyordered",
        "lineitemquantity",
        "menge",
        "anzahl",
        "stuckzahl",
        "quantite",
        "qte",
        "cantidad",
        "aantal",
        "quantita",
    ),
    "invoice_date": (
        "invoicedate",
        "invoicedatetime",
        "date",
        "datetime",
        "orderdate",
        "transactiondate",
        "timestamp",
        "invoicetime",
        "orderdatetime",
        "transactiondatetime",
        "transactiontime",
        "purchasedate",
        "saledate",
        "salesdate",
        "createdat",
        "orderedat",
        "datum",
        "rechnungsdatum",
        "belegdatum",
        "bestelldatum",
        "datefacture",
        "datedefacture",
        "datecommande",
        "fecha",
        "fechafactura",
        "factuurdatum",
        "datafattura",
    ),
    "price": (
        "price",
        "unitprice",
        "priceperunit",
        "unitcost",
        "itemprice",
        "salesprice",
        "sellingprice",
        "priceeach",
        "lineitemprice",
        "preis",
        "einzelpreis",
        "stuckpreis",
        "verkaufspreis",
        "prix",
        "prixunitaire",
        "precio",
        "preciounitario",
        "prijs",
        "prezzo",
        "prezzounitario",
    ),
    "customer_id": (
        # ids first, then e-mail addresses, then bare words such as "Customer" that often hold
        # a display name: two people with one name would merge into one customer
        "customerid",
        "customerno",
        "customernumber",
        "custid",
        "custno",
        "clientid",
        "customercode",
        "clientno",
        "clientnumber",
        "accountid",
        "accountno",
        "memberid",
        "buyerid",
        "kundennummer",
        "kundennr",
        "kundenid",
        "numeroclient",
        "nclient",
        "codeclient",
        "idcliente",
        "klantnummer",
        "customeremail",
        "email",
        "emailaddress",
        "customer",
        "kunde",
        "client",
        "cliente",
        "klant",
    ),
    "country": (
        "country",
        "countryname",
        "customercountry",
        "billingcountry",
        "shippingcountry",
        "countrycode",
        "land",
        "pays",
        "pais",
        "paese",
    ),
    "store": (
        "store",
        "storeid",
        "storename",
        "shop",
        "shopid",
        "branch",
        "outlet",
        "filiale",
        "magasin",
        "boutique",
        "tienda",
        "winkel",
        "negozio",
    ),
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Return ``name`` lower-cased with everything but letters and digits removed.

    Parameters
    ----------
    name : str
        A column name as found in a file or given by the user.

    Returns
    -------
    str
        The comparison key, e.g. ``"Customer ID"`` -> ``"customerid"``; accents are dropped
        first (``"Quantité"`` -> ``"quantite"``, ``"Stückzahl"`` -> ``"stuckzahl"``).
    """
    folded = unicodedata.normalize("NFKD", name.strip().lower())
    return _NON_ALNUM.sub("", "".join(c for c in folded if not unicodedata.combining(c)))


def parse_column_options(options: Sequence[str]) -> dict[str, str]:
    """Parse CLI ``--column field=Name`` options into a mapping.

    Parameters
    ----------
    options : sequence of str
        Items of the form ``customer_id=Cust No`` (quotes already removed by the shell).

    Returns
    -------
    dict of str to str
        Canonical field -> source column name.

    Raises
    ------
    SchemaError
        When an item has no ``=``, names an unknown field or names a field already mapped.
    """
    mapping: dict[str, str] = {}
    for option in options:
        field, sep, column = option.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise SchemaError(
                f"invalid --column {option!r}: expected FIELD=COLUMN, "
                'e.g. --column customer_id="Cust No"'
            )
        field, column = field.strip(), column.strip().strip("\"'")
        if field in mapping and mapping[field] != column:
            raise SchemaError(
                f"--column {field} is given twice ({mapping[field]!r} and {column!r}); keep one"
            )
        mapping[field] = column
    _check_fields(mapping)
    return mapping


def _check_fields(column_map: Mapping[str, str]) -> None:
    known = (*FIELDS, STORE_FIELD)
    for field in column_map:
        if field not in known:
            hint = difflib.get_close_matches(field, known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SchemaError(
                f"unknown field {field!r} in column mapping{suggestion}; "
                f"known fields: {', '.join(known)}"
            )


def resolve_columns(
    found: Sequence[str],
    column_map: Mapping[str, str] | None = None,
    *,
    where: str = "the file",
) -> dict[str, str]:
    """Match the columns of a file to the canonical fields.

    Parameters
    ----------
    found : sequence of str
        Column names as read from the file (header row).
    column_map : mapping of str to str, optional
        Explicit ``field -> column name`` choices; they win over the aliases. The column name
        is matched exactly first, then case- and punctuation-insensitively.
    where : str
        Name of the file (and sheet) for error messages.

    Returns
    -------
    dict of str to str
        Canonical field -> source column name, for every field found (required fields always).

    Raises
    ------
    SchemaError
        When a mapped column does not exist, a required field has no column, one column is
        claimed by two fields, or two columns match one field by name (``Price``, ``price``).
    """
    column_map = dict(column_map or {})
    _check_fields(column_map)
    by_key: dict[str, str] = {}
    for name in found:
        by_key.setdefault(normalise_name(name), name)

    resolved: dict[str, str] = {}
    for field, wanted in column_map.items():
        if wanted in found:
            resolved[field] = wanted
        elif normalise_name(wanted) in by_key:
            resolved[field] = by_key[normalise_name(wanted)]
        else:
            raise SchemaError(
                f"column {wanted!r} given for field {field!r} is not in {where}; "
                f"columns found: {_listing(found)}{_suggest(wanted, found)}"
            )

    taken = set(resolved.values())
    for field in (*FIELDS, STORE_FIELD):
        if field in resolved:
            continue
        for alias in ALIASES[field]:
            match = by_key.get(alias)
            if match is not None and match not in taken:
                _check_single(field, alias, found, where)
                resolved[field] = match
                taken.add(match)
                break

    owner = {name: field for field, name in resolved.items()}
    missing = [field for field in REQUIRED_FIELDS if field not in resolved]
    for field in missing:
        for alias in ALIASES[field]:
            match = by_key.get(alias)
            if match is not None and match in owner:
                raise SchemaError(
                    f"required column {field!r}: the column {match!r} in {where} is already "
                    f"mapped to {owner[match]!r}; map {field} to another column with "
                    f'--column {field}="<column name>", or change the other mapping'
                )
    free = [name for name in found if name not in owner]
    if len(missing) == 1:
        [field] = missing
        raise SchemaError(
            f"required column {field!r} is missing in {where}; "
            f"columns found: {_listing(found)}{_suggest(field, free)}. "
            f'Map it explicitly with --column {field}="<column name>"'
        )
    if missing:  # all of them at once: one run of the command per field is tedious
        hints = [f"{field}{hint}" for field in missing if (hint := _suggest(field, free))]
        closest = f" {'; '.join(hints)}." if hints else ""
        fixes = " ".join(f'--column {field}="<column name>"' for field in missing)
        raise SchemaError(
            f"required columns {_listing(missing)} are missing in {where}; columns found: "
            f"{_listing(found)}.{closest} Map each explicitly: {fixes}"
        )

    claimed: dict[str, str] = {}
    for field, name in resolved.items():
        if name in claimed:
            raise SchemaError(
                f"column {name!r} is mapped to both {claimed[name]!r} and {field!r} in {where}"
            )
        claimed[name] = field
    return resolved


def required_fields_named(
    found: Sequence[str], column_map: Mapping[str, str] | None = None
) -> set[str]:
    """Return the required fields that columns ``found`` name, by alias or by ``column_map``.

    Unlike :func:`resolve_columns` it never fails: it tells how much of a transaction table a
    header looks like (a summary sheet names few fields), before any column is chosen.
    """
    keys = {normalise_name(name) for name in found}
    mapping = dict(column_map or {})
    return {
        field
        for field in REQUIRED_FIELDS
        if keys & set(ALIASES[field])
        or (field in mapping and normalise_name(mapping[field]) in keys)
    }


def _check_single(field: str, key: str, found: Sequence[str], where: str) -> None:
    """Refuse two columns that both match ``field`` by name (``Price`` and ``price``)."""
    names = [name for name in found if normalise_name(name) == key]
    if len(names) > 1:
        raise SchemaError(
            f"columns {_listing(names)} in {where} all look like the field {field!r}; keep one, "
            f'or choose with --column {field}="<column name>"'
        )


#: Column names an error message lists before it says how many more there are.
LISTED_NAMES = 20


def list_names(names: Sequence[str], limit: int = LISTED_NAMES) -> str:
    """Return ``'A', 'B', 'C'`` for an error message; past ``limit`` names, ``… and N more``."""
    if not names:
        return "(none)"
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} … and {len(names) - limit:,} more"


def _listing(found: Sequence[str]) -> str:
    return list_names(found)


def _suggest(wanted: str, found: Sequence[str]) -> str:
    """Return ``" (closest match: 'X')"`` for the most similar column, or ``""``.

    A column's comparison key is prepared once for all candidates, and the cheap upper bounds
    of the similarity skip the full comparison where it cannot win.
    """
    if not found:
        return ""
    keys = {normalise_name(name): name for name in found}
    candidates = [normalise_name(wanted), *ALIASES.get(wanted, ())]
    # the best score wins; a tie goes to the earlier candidate, then the earlier column
    best: tuple[float, int, int] | None = None
    matcher = difflib.SequenceMatcher(None)
    for k, key in enumerate(keys):
        matcher.set_seq2(key)
        for c, candidate in enumerate(candidates):
            matcher.set_seq1(candidate)
            floor = 0.5 if best is None else best[0]  # below 0.5 nothing is suggested
            if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
                continue
            score = matcher.ratio()
            if score >= floor and (best is None or (-score, c, k) < (-best[0], best[1], best[2])):
                best = (score, c, k)
    if best is None:
        return ""
    return f" (closest match: {list(keys.values())[best[2]]!r})"
