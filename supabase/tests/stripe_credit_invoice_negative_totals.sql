-- A credit invoice (a downgrade's proration credit larger than the period's charges) has a
-- negative subtotal, tax and total and amount_due 0: stored as Stripe sends it, never refused
-- (the event would fail and Stripe would retry it for days). Amounts due/paid/remaining stay >= 0.
begin;
select plan(4);

select tests.create_tenant('Stripe credit (test)', id => '5f000000-0000-4000-8000-00000000000a');
insert into public.customers (tenant_id, stripe_customer_id, email)
values ('5f000000-0000-4000-8000-00000000000a', 'cus_CreditA', 'credit@example.test');

select is(private.apply_stripe_event(jsonb_build_object(
  'id', 'evt_CreditA1', 'object', 'event', 'type', 'invoice.finalized', 'created', 1790000100, 'livemode', false,
  'api_version', '2026-10-28.endive', 'data', jsonb_build_object('object', jsonb_build_object(
    'id', 'in_CreditA1', 'object', 'invoice', 'customer', 'cus_CreditA', 'status', 'paid', 'currency', 'cad',
    'subtotal', -2500, 'total', -2874, 'total_taxes', jsonb_build_array(jsonb_build_object('amount', -374)),
    'amount_due', 0, 'amount_paid', 0, 'amount_remaining', 0, 'starting_balance', 0, 'ending_balance', -2874,
    'status_transitions', jsonb_build_object('paid_at', 1790000100),
    'period_start', 1790000000, 'period_end', 1790000100,
    'lines', jsonb_build_object('object', 'list', 'has_more', false, 'data', '[]'::jsonb))))) ->> 'outcome',
  'applied', 'a credit invoice''s event is applied');
select row_eq(
  $$ select status, subtotal_cents, tax_cents, total_cents, amount_due_cents from public.invoices where stripe_invoice_id = 'in_CreditA1' $$,
  row('paid'::text, -2500::bigint, -374::bigint, -2874::bigint, 0::bigint),
  'stored with its negative subtotal, tax and total, amount due 0');
select throws_ok(
  $$ update public.invoices set amount_due_cents = -1 where stripe_invoice_id = 'in_CreditA1' $$, '23514', null,
  'an amount due is never negative');
select is_empty(
  $$ select from public.system_audit_logs where target = 'evt_CreditA1' and details ->> 'error' is not null $$,
  'no failure recorded for it');

select * from finish();
rollback;
