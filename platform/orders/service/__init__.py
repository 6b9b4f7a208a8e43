"""Order routing rules (no HTTP), one module per idea:

* checkout (+ checkout_pg, its one-statement PostgreSQL write; idempotency, the keys): one cart
  across many sellers, priced from the catalog, attributed, split and routed into sub-orders
* payments: the PaymentIntent (created outside any transaction) and the Stripe payment events
* settlement: an order paid (the journal's `order.paid`), cancelled, or released after its holding periods
* fulfilment: sub-orders accepted, shipped, delivered
* refunds: cumulative pro-rata reversals, clawbacks, the rail's refund
* states: the order, sub-order and commission state machines (one transition function each)
* notifications: the webhooks sellers and affiliates hear
* queries, views, reports, today: reads, the payloads the API returns, the growth report, today at a glance
* audit: the orders' ledger audit checks
"""
