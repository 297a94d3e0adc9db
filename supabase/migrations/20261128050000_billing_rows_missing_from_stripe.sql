-- billing-sync's mark for a billing row that Stripe no longer lists (issue 15, deliverable 2).
--
-- A full reconciliation lists every customer, every subscription (status=all) and every invoice of
-- the account. A row of ours that existed before the run started and that the complete listing did
-- not contain is "missing": deleted at Stripe (a draft invoice), made by hand, or belonging to
-- another Stripe account or mode. Billing history is never deleted for that: the row is kept,
-- stamped with the time a sync first found it missing (kept on later runs), reported in the run's
-- drift report (system_audit_logs, action billing_sync) and, being an UPDATE, in the audit trail.
-- The next complete sync that lists the object again clears the stamp. A customer Stripe reported
-- deleted (deleted_at) is not missing: Stripe does not list deleted customers.
alter table public.customers add column stripe_missing_since timestamptz;
alter table public.subscriptions add column stripe_missing_since timestamptz;
alter table public.invoices add column stripe_missing_since timestamptz;

comment on column public.customers.stripe_missing_since is
  'Set by billing-sync when a complete listing of Stripe customers did not contain this one (kept, never deleted); cleared when listed again.';
comment on column public.subscriptions.stripe_missing_since is
  'Set by billing-sync when a complete listing of Stripe subscriptions (status=all) did not contain this one (kept, never deleted); cleared when listed again.';
comment on column public.invoices.stripe_missing_since is
  'Set by billing-sync when a complete listing of Stripe invoices did not contain this one (kept, never deleted); cleared when listed again.';
