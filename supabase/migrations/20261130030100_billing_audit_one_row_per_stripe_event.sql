-- One audit row per Stripe event, not one per row it touches.
--
-- stripe-webhook wrote a `webhook_event` row (area stripe) for every event, and the generic audit
-- trigger (private.audit_row_change) one more for each billing row the event changed: a checkout's
-- subscription with two items was four audit rows, each a jsonb diff of a whole row (to_jsonb,
-- jsonb_each) plus a catalog lookup of the table's key; about a quarter of the database time of an
-- event in `npm run bench -- stripe`. Now, inside private.apply_stripe_event only (20261130030200),
-- the `webhook_event` row carries what the event changed (details.changed: {column: {old, new}},
-- items included) and the trigger stays quiet for the rows that event writes.
--
-- How: on the four billing tables the trigger becomes `audit_row_change_outside_stripe_event`: the
-- same function (private.audit_row_change, its first argument the key column as enable_audit
-- passes it since 20261130020000; the function before that ignores it), guarded by a WHEN clause
-- that reads a transaction-local setting, c_secur360.stripe_event_audit. apply_stripe_event sets it
-- to 'on' (set_config(…, true)) while it applies ONE event and writes that event's audit row itself,
-- and sets it back before returning; an error inside rolls the setting back with the transaction
-- or the caller's subtransaction. Every other writer (billing-sync, billing-checkout's link,
-- private.apply_stripe_object, an operator in psql) never sets it: the trigger audits them exactly
-- as before. A WHEN condition is checked before the row event is queued, so a skipped row costs
-- nothing at commit either.
--
-- Why another name: private.enable_audit() re-attaches `audit_row_change` unguarded (it repairs a
-- WHEN clause on purpose, and 20261130020000 re-attaches every trigger of that name). These four
-- tables must not be passed to it; supabase/tests/schema_conventions.sql lists them as exempt from
-- the plain trigger with this reason, and supabase/tests/stripe_apply_event.sql checks the guarded
-- one is there.
--
-- Not a way around the audit trail: only service_role and postgres may write these tables (the
-- API roles have SELECT at most, 20261125030700), and both can already drop a trigger or write
-- the tables without one; the setting gives no role anything it did not have.
--
-- private.audit_row_change() itself is unchanged.

drop trigger audit_row_change on public.customers;
drop trigger audit_row_change on public.subscriptions;
drop trigger audit_row_change on public.subscription_items;
drop trigger audit_row_change on public.invoices;

create trigger audit_row_change_outside_stripe_event after insert or update or delete on public.customers
  for each row when (pg_catalog.current_setting('c_secur360.stripe_event_audit', true) is distinct from 'on')
  execute function private.audit_row_change('id');
create trigger audit_row_change_outside_stripe_event after insert or update or delete on public.subscriptions
  for each row when (pg_catalog.current_setting('c_secur360.stripe_event_audit', true) is distinct from 'on')
  execute function private.audit_row_change('id');
create trigger audit_row_change_outside_stripe_event after insert or update or delete on public.subscription_items
  for each row when (pg_catalog.current_setting('c_secur360.stripe_event_audit', true) is distinct from 'on')
  execute function private.audit_row_change('id');
create trigger audit_row_change_outside_stripe_event after insert or update or delete on public.invoices
  for each row when (pg_catalog.current_setting('c_secur360.stripe_event_audit', true) is distinct from 'on')
  execute function private.audit_row_change('id');
