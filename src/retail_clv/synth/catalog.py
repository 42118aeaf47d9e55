"""Product catalog, countries and the calendar of the synthetic retailer.

Everything here is deterministic for a seed and small (a few thousand products), so it is built
once per generation and shared by every block of customers.

Descriptions imitate the Online Retail II style (``"WHITE HANGING HEART T-LIGHT HOLDER"``):
``[COLOUR] [MOTIF] HEAD`` where the *head* carries the category keyword (LIGHT, BAG, MUG,
CANDLE, CHRISTMAS, CARD, WRAP, TOY, CLOCK, SIGN, GARDEN, NECKLACE, BOX, CUSHION...), so a keyword
categoriser can recover the category from the text alone. Colours and motifs never contain a
category keyword.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CATEGORIES",
    "COUNTRIES",
    "NON_PRODUCT",
    "Calendar",
    "Catalog",
    "build_calendar",
    "build_catalog",
]

#: category -> (head nouns carrying the keyword, median list price in GBP)
CATEGORIES: dict[str, tuple[tuple[str, ...], float]] = {
    "Lighting": (("T-LIGHT HOLDER", "LIGHT GARLAND", "NIGHT LIGHT", "STRING LIGHTS"), 2.95),
    "Candles": (("CANDLE", "SCENTED CANDLE", "CANDLE POT", "PILLAR CANDLE"), 1.65),
    "Bags": (("JUMBO BAG", "LUNCH BAG", "SHOPPER BAG", "CHARLOTTE BAG"), 1.95),
    "Kitchen": (("MUG", "TEA CUP AND SAUCER", "CAKE STAND", "PLATE"), 1.65),
    "Christmas": (("CHRISTMAS DECORATION", "CHRISTMAS BAUBLE", "CHRISTMAS STOCKING"), 1.25),
    "Cards & wrap": (("GREETING CARD", "GIFT WRAP", "WRAPPING PAPER", "BIRTHDAY CARD"), 0.42),
    "Toys": (("TOY", "WOODEN TOY", "SOFT TOY", "TOY CAR"), 3.75),
    "Clocks": (("ALARM CLOCK", "WALL CLOCK", "KITCHEN CLOCK"), 3.75),
    "Signs": (("METAL SIGN", "DOOR SIGN", "WOODEN SIGN"), 2.1),
    "Garden": (("GARDEN MARKER", "GARDEN TOOL SET", "GARDEN PLANTER"), 4.95),
    "Jewellery": (("NECKLACE", "BEAD NECKLACE", "BRACELET", "EARRINGS"), 1.65),
    "Storage": (("STORAGE BOX", "TRINKET BOX", "LUNCH BOX", "GIFT BOX"), 2.55),
    "Home textiles": (("CUSHION COVER", "CUSHION", "TEA TOWEL", "APRON"), 3.75),
}

_COLOURS = (
    "",
    "WHITE",
    "RED",
    "PINK",
    "BLUE",
    "GREEN",
    "IVORY",
    "BLACK",
    "CREAM",
    "ANTIQUE SILVER",
    "GOLD",
    "PASTEL",
)
_MOTIFS = (
    "",
    "HANGING HEART",
    "VINTAGE",
    "REGENCY",
    "RETROSPOT",
    "PAISLEY",
    "DOLLY GIRL",
    "SPACEBOY",
    "BIRD",
    "FLORAL",
    "STAR",
    "POLKADOT",
    "ENGLISH ROSE",
    "WOODLAND",
    "SKULL",
    "ZINC",
    "ROUND",
    "GLASS",
    "ENAMEL",
    "FELT",
)

#: non-product stock codes written by the generator: code -> description
NON_PRODUCT: dict[str, str] = {
    "POST": "POSTAGE",
    "DOT": "DOTCOM POSTAGE",
    "M": "Manual",
    "B": "Adjust bad debt",
}

#: (country, share of customers, postage price of a POST line; 0 = no postage)
COUNTRIES: tuple[tuple[str, float, float], ...] = (
    ("United Kingdom", 0.88, 0.0),
    ("Germany", 0.025, 18.0),
    ("France", 0.02, 18.0),
    ("EIRE", 0.012, 0.0),
    ("Spain", 0.008, 28.0),
    ("Netherlands", 0.008, 15.0),
    ("Belgium", 0.007, 15.0),
    ("Switzerland", 0.006, 40.0),
    ("Portugal", 0.006, 28.0),
    ("Australia", 0.005, 40.0),
    ("Italy", 0.005, 28.0),
    ("Sweden", 0.004, 40.0),
    ("Norway", 0.004, 40.0),
    ("USA", 0.003, 40.0),
    ("Japan", 0.003, 40.0),
    ("Denmark", 0.004, 28.0),
)


@dataclass(frozen=True)
class Catalog:
    """Products of the synthetic retailer (arrays indexed by product number).

    Attributes
    ----------
    stock_code, description, category : numpy.ndarray
        Text of each product (object arrays). Some descriptions carry a trailing space, as in the
        real export.
    list_price : numpy.ndarray
        List price in GBP (float64, 2 decimals).
    popularity : numpy.ndarray
        Zipf-like choice probabilities (sum to 1), used for repertoires and guest baskets.
    """

    stock_code: np.ndarray
    description: np.ndarray
    category: np.ndarray
    list_price: np.ndarray
    popularity: np.ndarray

    @property
    def size(self) -> int:
        """Number of products."""
        return int(self.list_price.shape[0])


def build_catalog(
    rng: np.random.Generator, n_products: int = 3000, zipf_s: float = 1.05
) -> Catalog:
    """Draw a product catalog: codes, descriptions, categories, list prices, popularity.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the caller derives it from the seed).
    n_products : int
        Number of distinct products.
    zipf_s : float
        Popularity of the product of rank ``k`` is proportional to ``k ** -zipf_s``.

    Returns
    -------
    Catalog
        The catalog.
    """
    names = list(CATEGORIES)
    combos: list[tuple[str, str]] = []
    for cat in names:
        heads, _ = CATEGORIES[cat]
        for colour in _COLOURS:
            for motif in _MOTIFS:
                for head in heads:
                    text = " ".join(w for w in (colour, motif, head) if w)
                    combos.append((cat, text))
    if n_products > len(combos):
        raise ValueError(f"n_products must be <= {len(combos)}")
    pick = rng.choice(len(combos), size=n_products, replace=False)
    category = np.array([combos[i][0] for i in pick], dtype=object)
    description = np.array([combos[i][1] for i in pick], dtype=object)
    # 10% of descriptions end with a space, as ~20% do in the real export.
    trailing = rng.random(n_products) < 0.10
    description[trailing] = description[trailing] + " "
    numbers = rng.choice(np.arange(10002, 90000), size=n_products, replace=False)
    suffix = np.where(
        rng.random(n_products) < 0.15, rng.choice(list("ABCDEFGLNPSW"), n_products), ""
    )
    stock_code = np.array([f"{n}{s}" for n, s in zip(numbers, suffix, strict=True)], dtype=object)
    median = np.array([CATEGORIES[c][1] for c in category])
    list_price = np.round(np.maximum(0.1, median * rng.lognormal(0.0, 0.55, n_products)), 2)
    ranks = rng.permutation(n_products) + 1.0
    weight = ranks**-zipf_s
    return Catalog(
        stock_code=stock_code,
        description=description,
        category=category,
        list_price=list_price,
        popularity=weight / weight.sum(),
    )


# ---------------------------------------------------------------------------------------------
# Calendar: daily purchase intensity s(d) and the minute-of-day distribution.
# ---------------------------------------------------------------------------------------------

#: Monday..Sunday factors (no trading on Saturday, as in Online Retail II)
WEEKDAY_FACTOR = np.array([1.05, 1.1, 1.1, 1.25, 0.85, 0.0, 0.65])
#: January..December factors (Q4 peak)
MONTH_FACTOR = np.array([0.75, 0.75, 0.9, 0.85, 0.95, 0.95, 0.95, 0.95, 1.2, 1.3, 1.55, 1.0])
#: trading minutes: 07:00 to 19:59, bell-shaped around 12:30
_MINUTES = np.arange(7 * 60, 20 * 60)
_MINUTE_W = np.exp(-0.5 * ((_MINUTES / 60.0 - 12.5) / 2.4) ** 2)
MINUTE_CDF = np.cumsum(_MINUTE_W) / _MINUTE_W.sum()


def _raw_intensity(days: np.ndarray) -> np.ndarray:
    """Unnormalised seasonal intensity of the given ``datetime64[D]`` days."""
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday (3)
    month = days.astype("datetime64[M]").astype("int64") % 12
    s = WEEKDAY_FACTOR[weekday] * MONTH_FACTOR[month]
    # closed between Christmas and New Year (23 Dec - 3 Jan), like the real shop
    doy_month = month
    dom = (days - days.astype("datetime64[M]")).astype("int64") + 1
    closed = ((doy_month == 11) & (dom >= 23)) | ((doy_month == 0) & (dom <= 3))
    return np.where(closed, 0.0, s)


_REFERENCE_DAYS = np.arange(np.datetime64("2010-01-01"), np.datetime64("2014-01-01"))
_SEASONAL_NORM = float(_raw_intensity(_REFERENCE_DAYS).mean())


@dataclass(frozen=True)
class Calendar:
    """Daily intensity grid from ``start`` for ``n_days`` days and its cumulative sum.

    ``cum[d]`` is the operational time at midnight starting day ``d`` (``cum[0] == 0``);
    operational time runs at rate ``s(d)`` during day ``d``. With ``seasonal=False`` every
    ``s(d) == 1`` and operational time equals time in days.
    """

    start: dt.date
    s: np.ndarray
    cum: np.ndarray

    @property
    def n_days(self) -> int:
        """Number of days on the grid."""
        return int(self.s.shape[0])

    def to_clock(self, op: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map operational times to ``(day offset, minute of day)`` (monotone).

        The fraction of the day's operational mass already elapsed is mapped through the
        quantile function of the trading-minute distribution, so event order is preserved and
        day boundaries are exact.
        """
        op = np.asarray(op, dtype=np.float64)
        day = np.searchsorted(self.cum, op, side="right") - 1
        day = np.clip(day, 0, self.n_days - 1)
        # the (rare) event exactly on a zero-intensity day boundary goes to the next open day
        s_day = self.s[day]
        frac = np.where(s_day > 0, (op - self.cum[day]) / np.where(s_day > 0, s_day, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0 - 1e-12)
        minute = _MINUTES[np.searchsorted(MINUTE_CDF, frac, side="right")]
        return day.astype(np.int64), minute.astype(np.int64)


def build_calendar(start: dt.date, n_days: int, seasonal: bool) -> Calendar:
    """Build the intensity grid (normalised so a year of days averages 1).

    Parameters
    ----------
    start : datetime.date
        First simulated day.
    n_days : int
        Length of the grid (simulated period plus any truth window beyond it).
    seasonal : bool
        Weekly, Q4 and holiday seasonality (``realistic`` process) or constant 1 (``bgnbd``).

    Returns
    -------
    Calendar
        The grid.
    """
    days = np.datetime64(start, "D") + np.arange(n_days)
    s = _raw_intensity(days) / _SEASONAL_NORM if seasonal else np.ones(n_days)
    cum = np.concatenate([[0.0], np.cumsum(s)])
    return Calendar(start=start, s=s, cum=cum)
