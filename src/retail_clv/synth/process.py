r"""The customer process of the synthetic retailer: buy-till-you-die with heterogeneity.

Time is measured in *operational days* :math:`u`. In the ``bgnbd`` process operational time is
calendar time in days. In the ``realistic`` process calendar day :math:`d` carries intensity
:math:`s(d)` (weekday x month factors, no Saturday trading, closed 23 Dec - 3 Jan, normalised so
that a year averages 1) and :math:`u(t)=\int_0^t s`; a homogeneous process in :math:`u` is then
an inhomogeneous one in calendar time with weekly and Q4 seasonality.

Customer :math:`i` (all draws independent across customers):

.. math::

    \lambda_i &\sim \mathrm{Gamma}(r, \alpha)
        && \text{purchase rate per operational day (}\alpha\text{ is a rate)} \\
    p_i &\sim \mathrm{Beta}(a, b)
        && \text{dropout probability after each repeat purchase} \\
    \nu_i &\sim \mathrm{Gamma}(q, \gamma)
        && \text{spend scale (}\gamma\text{ is a rate)} \\
    z_{ij} \mid \nu_i &\sim \mathrm{Gamma}(p_{gg}, \nu_i)
        && \text{value of order } j,\ E[z\mid\nu]=p_{gg}/\nu_i \\
    A_i &\sim \text{arrival}
        && \text{first purchase: a share in the first 30 days, else uniform in } u

After the first purchase at :math:`A_i`, repeat purchases follow a Poisson process of rate
:math:`\lambda_i` in operational time; right after each repeat purchase the customer dies with
probability :math:`p_i` (so the number of repeat purchases before death is
:math:`K_i\sim\mathrm{Geometric}(p_i)` on :math:`\{1,2,\dots\}`, and a customer with no repeat
purchase is alive). This is exactly the BG/NBD model of Fader, Hardie & Lee (2005) and the
Gamma-Gamma spend model of Fader, Hardie & Lee (2005b) when the ``bgnbd`` process is chosen.

Simulation without per-event loops: the number of potential events in the remaining horizon
:math:`H_i` is :math:`n_i\sim\mathrm{Poisson}(\lambda_i H_i)`; the customer makes
:math:`m_i=\min(n_i,K_i)` repeat purchases, the :math:`m`-th one at
:math:`H_i\,U_{(m)}` with :math:`U_{(m)}\sim\mathrm{Beta}(m, n-m+1)` (the :math:`m`-th order
statistic of :math:`n` uniforms) and the first :math:`m-1` uniform on :math:`[0, H_i U_{(m)}]`.

The ``realistic`` process adds: a share of *wholesale* customers (rate x4, order value x6,
baskets x2.5 — a heavy tail), countries (mostly United Kingdom) with a POST line on a share of
foreign orders, and seasonality. Products: customer :math:`i` has a repertoire of :math:`R_i`
distinct products (drawn from the Zipf-like catalog popularity); an order of basket size
:math:`k\sim 1+\mathrm{Poisson}(\beta_i-1)` draws :math:`k` repertoire items uniformly *with*
replacement and keeps the distinct ones, so each repertoire item is in a given order with
probability :math:`1-\psi_i`, :math:`\psi_i=u_i e^{(\beta_i-1)(u_i-1)}`, :math:`u_i=1-1/R_i`.
The order value :math:`z` is split over its lines (Dirichlet(1) weights, quantities
:math:`\max(1, \mathrm{round}(w z / \text{list price}))`, then unit prices rescaled so the lines
sum to :math:`z` up to rounding prices to the penny): the realised order total is :math:`z`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retail_clv.synth.catalog import COUNTRIES, Calendar, Catalog

__all__ = ["Block", "ProcessParams", "simulate_block", "sorted_unique"]


@dataclass(frozen=True)
class ProcessParams:
    """Population parameters of the customer process (time unit: operational day).

    The defaults give a retailer that looks like Online Retail II in scale: about 140 lines per
    customer over two years, ~20 lines per order, average order value ~£370.
    """

    r: float = 0.75
    alpha: float = 35.0
    a: float = 1.3
    b: float = 4.0
    p_gg: float = 4.0
    q_gg: float = 3.5
    gamma_gg: float = 230.0
    basket_mean: float = 22.0
    basket_shape: float = 2.0
    repertoire_factor_shape: float = 2.0
    repertoire_factor_scale: float = 1.5
    initial_share: float = 0.3
    initial_days: int = 30
    wholesale_share: float = 0.0
    wholesale_rate_mult: float = 4.0
    wholesale_value_mult: float = 6.0
    wholesale_basket_mult: float = 2.5
    post_prob: float = 0.6
    manual_prob: float = 0.003
    countries: tuple[tuple[str, float, float], ...] = field(default=COUNTRIES)

    @classmethod
    def for_process(cls, process: str) -> ProcessParams:
        """Default parameters of a named process (``realistic`` or ``bgnbd``)."""
        if process == "realistic":
            return cls(wholesale_share=0.03)
        if process == "bgnbd":
            return cls()
        raise ValueError(f"unknown process {process!r}: use 'realistic' or 'bgnbd'")


@dataclass
class Block:
    """One block of simulated customers: per-customer latent values and their purchase lines.

    Customer arrays have one entry per customer of the block; order arrays one per order
    (sorted by customer then time); line arrays one per clean purchase line.
    """

    # customers
    customer_index: np.ndarray
    country: np.ndarray  # int index into params.countries
    wholesale: np.ndarray
    lam: np.ndarray
    p: np.ndarray
    nu: np.ndarray
    beta: np.ndarray
    repertoire_size: np.ndarray
    arrival_op: np.ndarray
    death_op: np.ndarray  # inf when alive at the end of the horizon
    post_prob: np.ndarray
    # orders
    order_customer: np.ndarray  # local customer index
    order_op: np.ndarray
    order_day: np.ndarray
    order_minute: np.ndarray
    order_value: np.ndarray
    # lines
    line_order: np.ndarray
    line_product: np.ndarray  # catalog index, or -1 POST, -2 M
    line_quantity: np.ndarray
    line_price: np.ndarray


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort + mask; faster than ``np.unique`` on large int arrays)."""
    s = np.sort(values)
    if s.size == 0:
        return s
    keep = np.empty(s.size, bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (segment id, position within segment) of a flat array with given segment lengths."""
    lengths = lengths.astype(np.int64)
    seg = np.repeat(np.arange(lengths.size), lengths)
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(seg.size) - starts[seg]
    return seg, pos


def simulate_block(
    rng: np.random.Generator,
    first_customer: int,
    n_customers: int,
    params: ProcessParams,
    calendar: Calendar,
    horizon_days: int,
    catalog: Catalog,
) -> Block:
    """Simulate the customers ``first_customer .. first_customer + n_customers - 1``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Generator dedicated to this block (so output does not depend on the write chunk size).
    first_customer, n_customers : int
        Global index of the block's first customer and number of customers.
    params : ProcessParams
        Population parameters.
    calendar : Calendar
        Intensity grid; purchases happen on days ``0 .. horizon_days - 1``.
    horizon_days : int
        Length of the simulated period in days.
    catalog : Catalog
        Products.

    Returns
    -------
    Block
        Latent values, orders and clean purchase lines.
    """
    n = n_customers
    end_op = float(calendar.cum[horizon_days])
    # ---- latent values
    wholesale = rng.random(n) < params.wholesale_share
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    lam = np.where(wholesale, lam * params.wholesale_rate_mult, lam)
    p = rng.beta(params.a, params.b, n)
    nu = rng.gamma(params.q_gg, 1.0 / params.gamma_gg, n)
    nu = np.where(wholesale, nu / params.wholesale_value_mult, nu)
    beta = 1.0 + rng.gamma(params.basket_shape, (params.basket_mean - 1.0) / params.basket_shape, n)
    beta = np.where(wholesale, beta * params.wholesale_basket_mult, beta)
    shares = np.array([c[1] for c in params.countries])
    country = rng.choice(len(shares), size=n, p=shares / shares.sum())
    postage = np.array([c[2] for c in params.countries])[country]
    post_prob = np.where(postage > 0, params.post_prob, 0.0)
    initial = rng.random(n) < params.initial_share
    initial_op = float(calendar.cum[min(params.initial_days, horizon_days)])
    arrival_op = np.where(initial, rng.random(n) * initial_op, rng.random(n) * end_op)
    # ---- repeat purchases (BG/NBD), see the module docstring
    horizon = end_op - arrival_op
    k_death = rng.geometric(p)
    n_events = rng.poisson(lam * horizon)
    m = np.minimum(n_events, k_death)
    has = m > 0
    u_m = np.zeros(n)
    u_m[has] = rng.beta(m[has], (n_events - m + 1)[has])
    dead = has & (k_death <= n_events)
    death_op = np.where(dead, arrival_op + horizon * u_m, np.inf)
    seg, pos = _segments(np.maximum(m - 1, 0))
    inner = rng.random(seg.size)
    # sort the m-1 uniforms within each customer: key = segment + value in [0, 1)
    inner = np.sort(seg + inner * 0.999999) - seg
    inner = inner / 0.999999
    # orders: first purchase, then the m-1 inner repeats, then the m-th repeat
    n_orders_c = 1 + m
    o_seg, o_pos = _segments(n_orders_c)
    order_u = np.zeros(o_seg.size)  # fraction of the horizon
    inner_flat_start = np.cumsum(np.maximum(m - 1, 0)) - np.maximum(m - 1, 0)
    is_inner = (o_pos >= 1) & (o_pos < n_orders_c[o_seg] - 1)
    order_u[is_inner] = (
        inner[inner_flat_start[o_seg[is_inner]] + o_pos[is_inner] - 1] * u_m[o_seg[is_inner]]
    )
    is_last = (o_pos == n_orders_c[o_seg] - 1) & (o_pos >= 1)
    order_u[is_last] = u_m[o_seg[is_last]]
    order_op = arrival_op[o_seg] + order_u * horizon[o_seg]
    order_op = np.minimum(order_op, np.nextafter(end_op, 0.0))
    order_day, order_minute = calendar.to_clock(order_op)
    # ---- order values (Gamma-Gamma)
    order_value = rng.gamma(params.p_gg, 1.0 / nu[o_seg])
    # ---- repertoires: distinct products drawn from the catalog popularity
    rep_draws = np.maximum(
        1,
        np.round(
            beta
            * (1.0 + rng.gamma(params.repertoire_factor_shape, params.repertoire_factor_scale, n))
        ).astype(np.int64),
    )
    r_seg, _ = _segments(rep_draws)
    cdf = np.cumsum(catalog.popularity)
    prod = np.minimum(np.searchsorted(cdf, rng.random(r_seg.size) * cdf[-1]), catalog.size - 1)
    key = sorted_unique(r_seg.astype(np.int64) * catalog.size + prod)
    rep_cust = key // catalog.size
    rep_prod = key % catalog.size
    repertoire_size = np.bincount(rep_cust, minlength=n)
    rep_start = np.cumsum(repertoire_size) - repertoire_size
    # ---- baskets: k ~ 1 + Poisson(beta - 1) uniform draws from the repertoire, distinct kept
    k = 1 + rng.poisson(beta[o_seg] - 1.0)
    l_ord, _ = _segments(k)
    l_cust = o_seg[l_ord]
    pick = (rng.random(l_ord.size) * repertoire_size[l_cust]).astype(np.int64)
    pick = np.minimum(pick, repertoire_size[l_cust] - 1)
    product = rep_prod[rep_start[l_cust] + pick]
    key2 = sorted_unique(l_ord.astype(np.int64) * catalog.size + product)
    line_order = key2 // catalog.size
    line_product = key2 % catalog.size
    # ---- non-product lines: POST (foreign orders) and M (manual), part of the order value
    n_ord = o_seg.size
    post = rng.random(n_ord) < post_prob[o_seg]
    manual = rng.random(n_ord) < params.manual_prob
    post_amount = np.where(post, np.minimum(postage[o_seg], np.round(order_value / 2, 2)), 0.0)
    manual_amount = np.where(manual, np.round(order_value * rng.uniform(0.02, 0.2, n_ord), 2), 0.0)
    goods_value = order_value - post_amount - manual_amount
    # ---- split the goods value over the product lines
    w = rng.exponential(1.0, line_order.size)
    w_sum = np.bincount(line_order, weights=w, minlength=n_ord)
    target = goods_value[line_order] * w / w_sum[line_order]
    lp = catalog.list_price[line_product]
    qty = np.maximum(1, np.round(target / lp)).astype(np.int64)
    list_total = np.bincount(line_order, weights=qty * lp, minlength=n_ord)
    scale = goods_value / list_total
    price = np.maximum(0.01, np.round(lp * scale[line_order], 2))
    # ---- assemble lines: products, then POST and M lines
    post_idx = np.flatnonzero(post)
    man_idx = np.flatnonzero(manual)
    line_order = np.concatenate([line_order, post_idx, man_idx])
    line_product = np.concatenate(
        [line_product, np.full(post_idx.size, -1), np.full(man_idx.size, -2)]
    )
    line_quantity = np.concatenate(
        [qty, np.ones(post_idx.size, np.int64), np.ones(man_idx.size, np.int64)]
    )
    line_price = np.concatenate([price, post_amount[post_idx], manual_amount[man_idx]])
    order = np.argsort(line_order, kind="stable")
    return Block(
        customer_index=first_customer + np.arange(n),
        country=country,
        wholesale=wholesale,
        lam=lam,
        p=p,
        nu=nu,
        beta=beta,
        repertoire_size=repertoire_size,
        arrival_op=arrival_op,
        death_op=death_op,
        post_prob=post_prob,
        order_customer=o_seg,
        order_op=order_op,
        order_day=order_day,
        order_minute=order_minute,
        order_value=order_value,
        line_order=line_order[order],
        line_product=line_product[order],
        line_quantity=line_quantity[order],
        line_price=line_price[order],
    )
