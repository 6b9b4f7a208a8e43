"""Payout rules (no HTTP), one module per idea:

* planning: preview, create and approve batches (who is paid what; the minimum and holds)
* journal: balances, freezing amounts into in-transit and claiming what a payout covers
* runner: run a batch on the rail, exactly once per item (row locks, SKIP LOCKED, idempotency keys)
* lease: the run lease that resumes a batch whose worker died
* states: the payout item state machine
* payees, holds: who can be paid, and operator holds
* export: the manual rail's bank-transfer file
* reconcile, recoveries: compare with the rail; take back from paid payouts what balances cannot cover
* queries, views: batch progress and the payloads the API returns
* audit: the payouts' ledger audit checks
"""
