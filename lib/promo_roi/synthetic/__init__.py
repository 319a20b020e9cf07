"""Semi-synthetic campaign benchmarks with known truth (in the spirit of RealCause / ACIC).

The generator keeps the REAL Complete Journey households, products, baseline
transactions, promotions, demographics, coupons (coupon -> product) and
campaign calendar, and draws SYNTHETIC target lists (``campaigns``), campaign
effects (extra or removed transaction lines) and coupon redemptions on top, so
that the true effect is known for every (household, campaign) pair, targeted
or not, and for every campaign.

    jobs/simulate.py --scenario selective_large --out /tmp/bench/selective_large

The model of the world
----------------------
Households are those with at least one transaction line that ingest keeps
(known product, valid quantity, date and week inside the calendar): a target
list or redemption of any other household would be quarantined as
``unknown_household``. For every campaign c, its window is
[start_date, end_date] clipped to the calendar (``source`` in conf/base.yaml);
injected lines only go to days whose week (after the Monday 05:00 boundary)
is inside [first_week, last_week].

Covariates (``world.py``), from the REAL lines of the ``pre_period_weeks``
before c's start, for every household (0 if it bought nothing), standardised
within the campaign and clipped to +-3:
  affinity           share of spend in the product categories of c's coupon products
  coupon_history     log1p(lines with coupon_disc > 0)
  price_sensitivity  share of spend on lines with retail_disc > 0
  visit_frequency    distinct baskets per observed week
  log_spend          log1p(spend)
Campaigns 24-26 start before the data: their pre-period is empty, every
covariate is 0, so their targeting is random whatever the selectivity.

Targeting (``assignment.py``): logit e(h,c) = alpha_c + selectivity x 3.5 x s(h,c),
s the unit-variance score 0.7 log_spend + 0.2 affinity + 0.1 visit_frequency.
alpha_c is solved by bisection so that sum_h e(h,c) = the real list size of c
in the input ``campaigns`` (at least ``min_audience``); targeted ~ Bernoulli(e).
Selectivity 0 is random targeting; selectivity 1 gives a propensity AUC of
about 0.9 (full data, the 24 campaigns with a pre-period: 0.86-0.92, median
0.89; pre-period spend alone: 0.84-0.90); selectivity 0.3 about 0.70.

Effects (``effects.py``): a random ``share_null_campaigns`` of the campaigns
has m_c = 0, a random ``share_negative_campaigns`` m_c < 0, the rest m_c > 0;
|m_c| ~ lognormal with mean 1 and sigma ``effect_spread``. Per household,
  rate(h,c) = effect_scale |m_c| exp(heterogeneity g(h,c) + u_h) / mean_h(...)
with g the unit-variance score 0.5 affinity + 0.3 coupon_history
+ 0.3 price_sensitivity - 0.2 log_spend and u_h ~ N(0, noise_sd) unobserved and
fixed per household; so effect_scale x |m_c| is the mean rate over households.
- positive: if targeted, N ~ Poisson(rate) incremental lines inside the
  window. Each line's product is one of h's own pre-period lines of c's coupon
  products with probability own/(own + 1), else a coupon product drawn by
  popularity (pre-period lines + 0.1); only products with a real price can be
  drawn. Price: the product's median real unit price; quantity 1; its own new
  basket (ids above every real one); h's most used store; a uniform day of the
  window and time in [10:00, 23:00); the week the real data gives that day.
  Truth: rate x E[line value] under that product distribution (exact).
  The rate is per campaign, not per day: a clipped window gets all of it.
- negative: if targeted, each REAL line of c's coupon products bought by h in
  the window is removed with probability p = min(0.9, 1 - exp(-rate)).
  Truth: -p x h's real coupon-product spend in the window.
- null: nothing changes; truth 0 (its redemptions are pure cost).
Untargeted households get nothing (no spillover); their truth is what
targeting them would have done.

Redemptions: if targeted, each incremental line is redeemed with probability
``incremental_redemption_rate``; each real coupon-product line of h in the
window that c did not remove with q = ``baseline_redemption_rate`` x 2 expit(
z_coupon_history), in [0, 1] (pure cost). A redeemed line gets coupon_disc =
``face_value`` (k x face_value for a real line redeemed for k campaigns) and a
coupon_redemptions row (household, the smallest coupon_upc of c covering the
product, c, the line's day at midnight). Redemptions with the same key collapse
into one row, so rows can be fewer than redeemed lines; the truth counts
expected redeemed LINES. All real coupon_redemptions and campaigns rows are
replaced by the synthetic ones. Real lines keep their real coupon_disc unless
redeemed here.

Truth is per campaign in isolation (every other campaign as in the real
data). Campaigns interact only where their draws touch the same real line: a
line removed by several negative campaigns is removed once, and a real line
removed by one campaign is not redeemed for another; scenario.json counts
these lines under ``stats``. A household never loses its last valid line
(its removal is undone and counted as ``removed_lines_restored``).

Determinism: numpy Generators seeded from (seed, stream, campaign); frames
sorted before writing; no clock or path in the output, so a rerun writes
identical bytes.

Layout: ``scenarios.py`` (typed scenario loader), ``world.py`` (real-data
facts and covariates), ``assignment.py`` (targeting), ``effects.py`` (exact
expected effects), ``draws.py`` (the random realisation), ``generate.py``
(frames in, frames out), ``io.py`` (the only file I/O).
"""

from promo_roi.synthetic.generate import Simulation, simulate
from promo_roi.synthetic.io import GENERATOR_VERSION, generate_benchmark, read_source, write_output
from promo_roi.synthetic.scenarios import Scenario, ScenarioError, load_scenarios, select_scenario

__all__ = [
    "GENERATOR_VERSION", "Scenario", "ScenarioError", "Simulation", "generate_benchmark", "load_scenarios",
    "read_source", "select_scenario", "simulate", "write_output",
]
