"""The design's worked example (DESIGN.md section 3), end to end through the HTTP API: market
maker A's storefront splitting 70/30 with specialist S, seller X paying 800 bps and seller Y a
flat 1.00 per unit, platform fee 1,000 bps. The preview is what checkout books."""

from __future__ import annotations

from tests.affiliates.conftest import Market, shares


def test_worked_example_through_the_preview_endpoint(market: Market) -> None:
    x, y = market.seller("X"), market.seller("Y")
    (x_pro,) = market.product(x, 4999, name="X Pro")
    (y_item,) = market.product(y, 1250, name="Y thing")
    program_x = market.program(x, {"default": {"bps": 800}})
    program_y = market.program(y, {"default": {"flat": 100}})
    a, s = market.affiliate("A"), market.affiliate("S")
    for member in (a, s):  # a split partner shares a line only as a member of its seller's program
        market.join(member, program_x)
        market.join(member, program_y)
    slug = market.storefront(a, x_pro, y_item, splits=[(a, 70), (s, 30)])

    result = market.preview(a.headers, [(x_pro, 1), (y_item, 2)], storefront_slug=slug)

    assert result["attribution"]["source"] == "storefront" and result["attribution"]["affiliate_id"] == a.id
    x_line, y_line = result["lines"]
    assert (x_line["amount"]["amount"], x_line["platform_fee"]["amount"], x_line["seller_net"]["amount"]) == (
        4999, 500, 4099)
    assert shares(x_line) == {(a.id, "affiliate"): 280, (s.id, "split_partner"): 120}
    assert (y_line["amount"]["amount"], y_line["platform_fee"]["amount"], y_line["seller_net"]["amount"]) == (
        2500, 250, 2050)
    assert shares(y_line) == {(a.id, "affiliate"): 140, (s.id, "split_partner"): 60}
    assert (result["total"]["amount"], result["platform_fee"]["amount"], result["commissions"]["amount"],
            result["seller_net"]["amount"]) == (7499, 750, 600, 6149)
    parties = {(p["party_type"], p["party_id"]): p["amount"]["amount"] for p in result["parties"]}
    assert parties == {("platform", None): 750, ("seller", x.id): 4099, ("seller", y.id): 2050,
                       ("affiliate", a.id): 420, ("affiliate", s.id): 180}
    assert sum(parties.values()) == 7499
    assert all(c["funded_by"] == "seller" for line in result["lines"] for c in line["commissions"])
