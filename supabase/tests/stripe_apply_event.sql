-- private.apply_stripe_event and the object upserts (20261128041200, 20261128041300): one call per
-- event, ledger and rows together; duplicates change nothing; older copies never overwrite newer
-- ones; same-second conflicts ask for a fetch; both the current and the 2020-era shapes are read;
-- events about customers not tied to a tenant are parked then replayed; failures are recorded and
-- audited with details.error; closed to the API roles.
begin;
select plan(88);

select tests.create_tenant('Stripe SQL A', id => '5e000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Stripe SQL B', id => '5e000000-0000-4000-8000-00000000000b');

-- An event envelope around an object.
create function pg_temp.ev(id text, type text, created bigint, obj jsonb, api_version text default '2026-10-28.endive')
returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'event', 'type', type, 'created', created, 'livemode', false,
                            'api_version', api_version, 'data', jsonb_build_object('object', obj))
$$;
-- A basil-shaped subscription: plan (+ add-on) items carrying the period.
create function pg_temp.sub(id text, customer text, status text, addons int default 0, cape boolean default false,
                            period_start bigint default 1790000000, metadata jsonb default '{}')
returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'subscription', 'customer', customer, 'status', status,
    'cancel_at_period_end', cape, 'canceled_at', null, 'metadata', metadata, 'livemode', false,
    'items', jsonb_build_object('object', 'list', 'has_more', false, 'data',
      jsonb_build_array(jsonb_build_object('id', 'si_' || replace(id, 'sub_', '') || 'P', 'object', 'subscription_item', 'quantity', 1,
        'price', jsonb_build_object('id', 'price_plan_m', 'recurring', jsonb_build_object('interval', 'month')),
        'current_period_start', period_start, 'current_period_end', period_start + 2592000))
      || case when addons > 0 then jsonb_build_array(jsonb_build_object('id', 'si_' || replace(id, 'sub_', '') || 'A', 'object', 'subscription_item',
        'quantity', addons, 'price', jsonb_build_object('id', 'price_addon_m', 'recurring', jsonb_build_object('interval', 'month')),
        'current_period_start', period_start, 'current_period_end', period_start + 2592000)) else '[]'::jsonb end))
$$;
create function pg_temp.opts() returns jsonb language sql as $$
  select '{"prices": {"price_plan_m": "plan", "price_addon_m": "addon_site"}}'::jsonb
$$;

-- ---- closed to the API roles ------------------------------------------------------------------
select ok(not has_function_privilege('anon', 'private.apply_stripe_event(jsonb, jsonb)', 'EXECUTE'), 'anon cannot apply events');
select ok(not has_function_privilege('authenticated', 'private.apply_stripe_event(jsonb, jsonb)', 'EXECUTE'), 'authenticated cannot apply events');
select ok(not has_function_privilege('authenticated', 'private.upsert_stripe_subscription(jsonb, timestamptz, boolean, jsonb)', 'EXECUTE'),
  'authenticated cannot upsert subscriptions');
select ok(has_function_privilege('service_role', 'private.apply_stripe_event(jsonb, jsonb)', 'EXECUTE'), 'service_role may apply events');

-- ---- not an event ------------------------------------------------------------------------------
select throws_ok($$ select private.apply_stripe_event('{"id": "evt_x"}') $$, '22023', null, 'an envelope without type/created/data is refused');
select throws_ok($$ select private.apply_stripe_event(pg_temp.ev('not_an_evt', 'invoice.paid', 1, '{}')) $$, '22023', null, 'an id that is not evt_ is refused');

-- ---- checkout ties the customer; subscription created (basil shape) -----------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S01', 'checkout.session.completed', 1790000000,
  '{"id": "cs_test_S01", "object": "checkout.session", "mode": "subscription", "customer": "cus_SqlA", "subscription": "sub_SqlA",
    "client_reference_id": "5e000000-0000-4000-8000-00000000000a", "customer_details": {"email": "a@example.test"}}'), pg_temp.opts()) ->> 'result',
  'created', 'checkout.session.completed ties the Stripe customer to client_reference_id''s tenant');
select row_eq($$ select tenant_id, email from public.customers where stripe_customer_id = 'cus_SqlA' $$,
  row('5e000000-0000-4000-8000-00000000000a'::uuid, 'a@example.test'::text), 'customers row with the tenant and the e-mail');
select is(private.apply_stripe_event(pg_temp.ev('evt_S02', 'customer.subscription.created', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'incomplete', 2)), pg_temp.opts()) ->> 'result', 'created', 'subscription created');
select row_eq($$ select status, plan_interval, current_period_start, current_period_end from public.subscriptions where stripe_subscription_id = 'sub_SqlA' $$,
  row('incomplete'::text, 'month'::text, to_timestamp(1790000000), to_timestamp(1792592000)), 'status, interval and the plan item''s period');
select results_eq($$ select stripe_price_id, quantity, kind from public.subscription_items si join public.subscriptions s on s.id = si.subscription_id
                      where s.stripe_subscription_id = 'sub_SqlA' order by kind $$,
  $$ values ('price_addon_m'::text, 2, 'addon_site'::text), ('price_plan_m', 1, 'plan') $$, 'items with their kinds from the configured prices');

-- ---- duplicates --------------------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S02', 'customer.subscription.created', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'canceled')), pg_temp.opts()) ->> 'outcome', 'duplicate', 'a redelivered event id is a duplicate');
select is((select status from public.subscriptions where stripe_subscription_id = 'sub_SqlA'), 'incomplete', 'and changes nothing');
select is((select count(*)::int from public.system_audit_logs where target = 'evt_S02'), 1, 'one webhook_event audit row per event id');

-- ---- same second: same content is unchanged; a later state applies, an earlier one is skipped;
-- ---- other content in the same state asks for a fetch --------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S03', 'customer.subscription.updated', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'incomplete', 2)), pg_temp.opts()) ->> 'result', 'unchanged', 'same second, same content: unchanged');
select is(private.apply_stripe_event(pg_temp.ev('evt_S03a', 'customer.subscription.updated', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 2)), pg_temp.opts()) ->> 'result', 'changed',
  'same second, incomplete → active: the later state applies, no fetch');
select is(private.apply_stripe_event(pg_temp.ev('evt_S03b', 'customer.subscription.created', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'incomplete', 2)), pg_temp.opts()) ->> 'result', 'skipped_stale',
  'same second, incomplete delivered after active: the earlier state is skipped, no fetch');
select is((select status from public.subscriptions where stripe_subscription_id = 'sub_SqlA'), 'active', 'active stays');
select is(private.apply_stripe_event(pg_temp.ev('evt_S04', 'customer.subscription.updated', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 3)), pg_temp.opts()) -> 'fetch',
  '{"type": "subscription", "id": "sub_SqlA"}'::jsonb, 'same second, same state, other content: fetch the subscription');
select row_eq($$ select outcome, processed_at is null from public.billing_events where stripe_event_id = 'evt_S04' $$,
  row('needs_fetch'::text, true), 'the event waits for the fetched copy');
select is(private.apply_stripe_event(pg_temp.ev('evt_S04', 'customer.subscription.updated', 1790000000,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 3)),
  pg_temp.opts() || jsonb_build_object('fetched', jsonb_build_object('object', pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 4),
    'seen_at', to_timestamp(1790000000)))) ->> 'result', 'changed', 'the fetched copy (same second, authoritative) applies');
select row_eq($$ select s.status, si.quantity from public.subscriptions s join public.subscription_items si on si.subscription_id = s.id
                  where s.stripe_subscription_id = 'sub_SqlA' and si.kind = 'addon_site' $$,
  row('active'::text, 4), 'Stripe''s current copy is what we hold (not the event''s)');
select is((select outcome from public.billing_events where stripe_event_id = 'evt_S04'), 'applied', 'the event is processed');

-- ---- newer applies, older is skipped, whatever the delivery order ------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S06', 'customer.subscription.updated', 1790000020,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 1, true)), pg_temp.opts()) ->> 'result', 'changed', 'a newer event applies');
select is(private.apply_stripe_event(pg_temp.ev('evt_S05', 'customer.subscription.updated', 1790000010,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'past_due', 2)), pg_temp.opts()) ->> 'result', 'skipped_stale', 'an older one delivered later is skipped');
select row_eq($$ select status, cancel_at_period_end, stripe_updated_at from public.subscriptions where stripe_subscription_id = 'sub_SqlA' $$,
  row('active'::text, true, to_timestamp(1790000020)), 'the newest state stays');
select is((select count(*)::int from public.subscription_items si join public.subscriptions s on s.id = si.subscription_id
            where s.stripe_subscription_id = 'sub_SqlA'), 2, 'items follow the newest copy');
-- A newer copy with the same content moves the watermark without an audit row.
create temp table audit_before as select count(*)::int as n from public.system_audit_logs where area = 'database';
select is(private.apply_stripe_event(pg_temp.ev('evt_S07', 'customer.subscription.updated', 1790000030,
  pg_temp.sub('sub_SqlA', 'cus_SqlA', 'active', 1, true)), pg_temp.opts()) ->> 'result', 'unchanged', 'newer, same content: unchanged');
select is((select stripe_updated_at from public.subscriptions where stripe_subscription_id = 'sub_SqlA'), to_timestamp(1790000030),
  'but the watermark moved forward');
select is((select count(*)::int from public.system_audit_logs where area = 'database') - (select n from audit_before), 0,
  'a watermark-only update writes no audit row');

-- ---- the 2020-era shape ------------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S08', 'customer.subscription.updated', 1790000040,
  '{"id": "sub_SqlA", "object": "subscription", "customer": "cus_SqlA", "status": "past_due", "cancel_at_period_end": false,
    "canceled_at": null, "current_period_start": 1792592000, "current_period_end": 1795184000,
    "plan": {"id": "price_plan_m", "interval": "month"}, "quantity": 1,
    "items": {"object": "list", "has_more": false, "data": [
      {"id": "si_SqlAP", "object": "subscription_item", "quantity": 1, "plan": {"id": "price_plan_m", "interval": "month"},
       "price": {"id": "price_plan_m", "recurring": {"interval": "month"}}}]}}', '2020-08-27'), pg_temp.opts()) ->> 'result',
  'changed', '2020-era subscription applies');
select row_eq($$ select status, current_period_start, current_period_end from public.subscriptions where stripe_subscription_id = 'sub_SqlA' $$,
  row('past_due'::text, to_timestamp(1792592000), to_timestamp(1795184000)), 'the period read from the subscription itself');

-- Invoices: a 2020-era invoice (subscription, tax, paid) and a basil one (parent, total_taxes).
select is(private.apply_stripe_event(pg_temp.ev('evt_S09', 'invoice.paid', 1790000050,
  '{"id": "in_SqlA1", "object": "invoice", "customer": "cus_SqlA", "subscription": "sub_SqlA", "status": "paid", "paid": true,
    "currency": "cad", "subtotal": 10000, "tax": 1498, "total": 11498, "amount_due": 11498, "amount_paid": 11498, "amount_remaining": 0,
    "charge": "ch_1", "payment_intent": "pi_1", "hosted_invoice_url": "https://invoice.stripe.com/i/x",
    "period_start": 1790000000, "period_end": 1790000000, "status_transitions": {"paid_at": 1790000050},
    "lines": {"data": [{"period": {"start": 1790000000, "end": 1792592000}}]}}', '2020-08-27'), pg_temp.opts()) ->> 'result',
  'created', '2020-era invoice applies');
select row_eq($$ select status, tax_cents, total_cents, stripe_subscription_id, subscription_id is not null, paid_at, period_end
                  from public.invoices where stripe_invoice_id = 'in_SqlA1' $$,
  row('paid'::text, 1498::bigint, 11498::bigint, 'sub_SqlA'::text, true, to_timestamp(1790000050), to_timestamp(1792592000)),
  'tax from `tax`, the subscription from `subscription`, the period from the line');
select is(private.apply_stripe_event(pg_temp.ev('evt_S10', 'invoice.created', 1790000060,
  '{"id": "in_SqlB1", "object": "invoice", "customer": "cus_SqlA", "status": "draft", "currency": "cad", "subtotal": 5000,
    "total_taxes": [{"amount": 250}, {"amount": 499}], "total": 5749, "amount_due": 5749, "amount_paid": 0, "amount_remaining": 5749,
    "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_SqlLater", "metadata": {}}},
    "period_start": 1790000060, "period_end": 1790000060, "status_transitions": {}}'), pg_temp.opts()) ->> 'result',
  'created', 'an invoice of a subscription we do not have yet');
select row_eq($$ select tax_cents, stripe_subscription_id, subscription_id from public.invoices where stripe_invoice_id = 'in_SqlB1' $$,
  row(749::bigint, 'sub_SqlLater'::text, null::uuid), 'tax = sum of total_taxes; the subscription kept by its Stripe id');
select private.apply_stripe_event(pg_temp.ev('evt_S11', 'customer.subscription.created', 1790000061,
  pg_temp.sub('sub_SqlLater', 'cus_SqlA', 'active')), pg_temp.opts());
select isnt((select subscription_id from public.invoices where stripe_invoice_id = 'in_SqlB1'), null,
  'the invoice is linked once its subscription arrives');
select is(private.apply_stripe_event(pg_temp.ev('evt_S12', 'invoice.deleted', 1790000070,
  '{"id": "in_SqlB1", "object": "invoice", "customer": "cus_SqlA", "status": "draft"}'), pg_temp.opts()) ->> 'result',
  'deleted', 'invoice.deleted removes the draft');
select is(private.apply_stripe_event(pg_temp.ev('evt_S13', 'invoice.upcoming', 1790000070,
  '{"object": "invoice", "customer": "cus_SqlA", "status": "draft"}'), pg_temp.opts()) ->> 'outcome', 'ignored',
  'invoice.upcoming (no id) is recorded and ignored');

-- ---- customers ---------------------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S14', 'customer.deleted', 1790000080,
  '{"id": "cus_SqlA", "object": "customer", "email": "a@example.test", "livemode": false}'), pg_temp.opts()) ->> 'result',
  'changed', 'customer.deleted applies');
select is((select deleted_at from public.customers where stripe_customer_id = 'cus_SqlA'), to_timestamp(1790000080), 'deleted_at set');

-- ---- other types -------------------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_S15', 'charge.succeeded', 1790000090, '{"id": "ch_1", "object": "charge"}')) ->> 'outcome',
  'ignored', 'an unhandled type is recorded as ignored');
select isnt((select processed_at from public.billing_events where stripe_event_id = 'evt_S15'), null, 'and processed');
select is((select payload ? 'trimmed' from public.billing_events where stripe_event_id = 'evt_S15'), false,
  'its payload kept whole (all we keep of a type we do not handle)');

-- ---- parked, then replayed ---------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_P2', 'customer.subscription.updated', 1790000101,
  pg_temp.sub('sub_SqlB', 'cus_SqlB', 'active')), pg_temp.opts()) ->> 'outcome', 'parked', 'a customer tied to no tenant: parked');
select is(private.apply_stripe_event(pg_temp.ev('evt_P1', 'customer.subscription.created', 1790000100,
  pg_temp.sub('sub_SqlB', 'cus_SqlB', 'incomplete')), pg_temp.opts()) ->> 'outcome', 'parked', 'the older one too');
select is((select count(*)::int from public.subscriptions where stripe_subscription_id = 'sub_SqlB'), 0, 'nothing written for it');
select is(private.apply_stripe_event(pg_temp.ev('evt_P0', 'customer.updated', 1790000099,
  '{"id": "cus_SqlB", "object": "customer", "email": "b@example.test", "livemode": false,
    "metadata": {"tenant_id": "5e000000-0000-4000-8000-00000000000b"}}'), pg_temp.opts()) ->> 'outcome',
  'parked', 'a customer''s own metadata does not tie it (billing-checkout links the customers it makes)');
select is(private.apply_stripe_event(pg_temp.ev('evt_P3', 'checkout.session.completed', 1790000102,
  '{"id": "cs_test_SqlB", "object": "checkout.session", "mode": "subscription", "customer": "cus_SqlB", "subscription": "sub_SqlB",
    "client_reference_id": "5e000000-0000-4000-8000-00000000000b"}'), pg_temp.opts()) ->> 'replayed',
  '3', 'the checkout ties the customer; its three parked events replay');
select is((select email from public.customers where stripe_customer_id = 'cus_SqlB'), 'b@example.test',
  'the replayed customer event filled the row');
select row_eq($$ select tenant_id, status from public.subscriptions where stripe_subscription_id = 'sub_SqlB' $$,
  row('5e000000-0000-4000-8000-00000000000b'::uuid, 'active'::text), 'replayed oldest first: the newest state');
select is((select array_agg(outcome order by stripe_event_id) from public.billing_events where stripe_event_id in ('evt_P1', 'evt_P2')),
  array['applied', 'applied'], 'the parked events are applied');

select is(private.apply_stripe_event(pg_temp.ev('evt_M1', 'customer.subscription.created', 1790000110,
  pg_temp.sub('sub_SqlM', 'cus_SqlM', 'active', metadata => '{"tenant_id": "5e000000-0000-4000-8000-00000000000c"}')), pg_temp.opts()) ->> 'outcome',
  'parked', 'a subscription naming a tenant that does not exist ties nothing');
select tests.create_tenant('Stripe SQL C', id => '5e000000-0000-4000-8000-00000000000c');
select is(private.apply_stripe_event(pg_temp.ev('evt_M2', 'customer.subscription.updated', 1790000111,
  pg_temp.sub('sub_SqlM', 'cus_SqlM', 'active', metadata => '{"tenant_id": "5e000000-0000-4000-8000-00000000000c"}')), pg_temp.opts()) ->> 'result',
  'created', 'a subscription''s metadata.tenant_id ties its customer to that tenant (billing-checkout sets it)');
select is((select tenant_id from public.customers where stripe_customer_id = 'cus_SqlM'), '5e000000-0000-4000-8000-00000000000c'::uuid,
  'the customers row of that tenant');

-- ---- failures ----------------------------------------------------------------------------------
select is(private.apply_stripe_event(pg_temp.ev('evt_F1', 'customer.subscription.created', 1790000200,
  jsonb_set(pg_temp.sub('sub_SqlWeek', 'cus_SqlB', 'active'), '{items,data,0,price,recurring,interval}', '"week"')), pg_temp.opts()) ->> 'outcome',
  'failed', 'an event that cannot be applied fails');
select row_eq($$ select outcome, processed_at is null, attempts, error ~ 'interval week' from public.billing_events where stripe_event_id = 'evt_F1' $$,
  row('failed'::text, true, 1, true), 'recorded: failed, unprocessed, one attempt, the error');
select ok(exists (select from public.system_audit_logs where target = 'evt_F1' and details ->> 'error' ~ 'interval week'
                  and created_at > now() - interval '24 hours'), 'audited with details.error (the operations guide''s error query)');
select is(private.apply_stripe_event(pg_temp.ev('evt_F1', 'customer.subscription.created', 1790000200,
  jsonb_set(pg_temp.sub('sub_SqlWeek', 'cus_SqlB', 'active'), '{items,data,0,price,recurring,interval}', '"week"')), pg_temp.opts()) ->> 'outcome',
  'failed', 'a failed event is processed again when Stripe retries it (not a duplicate)');
select is((select attempts from public.billing_events where stripe_event_id = 'evt_F1'), 2, 'attempts counted');

-- ---- invoices: the same second ordered by the status; payments applied from the payment ---------
select tests.create_tenant('Stripe SQL D', id => '5e000000-0000-4000-8000-00000000000d');
select private.apply_stripe_event(pg_temp.ev('evt_I0', 'checkout.session.completed', 1790000300,
  '{"id": "cs_test_I0", "object": "checkout.session", "mode": "subscription", "customer": "cus_SqlD",
    "client_reference_id": "5e000000-0000-4000-8000-00000000000d"}'), pg_temp.opts());
create function pg_temp.inv(id text, status text, paid bigint default 0, total bigint default 10000) returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'invoice', 'customer', 'cus_SqlD', 'status', status, 'currency', 'cad',
    'subtotal', total, 'total_taxes', '[]'::jsonb, 'total', total, 'amount_due', total, 'amount_paid', paid, 'amount_remaining', total - paid,
    'period_start', 1790000300, 'period_end', 1790000300,
    'status_transitions', case when status = 'paid' then jsonb_build_object('paid_at', 1790000300) else '{}'::jsonb end)
$$;
create function pg_temp.pay(id text, invoice text, amount bigint) returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'invoice_payment', 'invoice', invoice, 'amount_paid', amount, 'amount_requested', amount,
    'currency', 'cad', 'is_default', true, 'livemode', false, 'status', 'paid',
    'status_transitions', jsonb_build_object('paid_at', 1790000300, 'canceled_at', null))
$$;
create temp table ledger_writes_before as
  select n_tup_ins, n_tup_upd from pg_stat_xact_user_tables where relid = 'public.billing_events'::regclass;
select is(private.apply_stripe_event(pg_temp.ev('evt_I1', 'invoice.paid', 1790000300, pg_temp.inv('in_SqlD1', 'paid', 10000)), pg_temp.opts()) ->> 'result',
  'created', 'invoice.paid first');
select row_eq($$ select x.n_tup_ins - b.n_tup_ins, x.n_tup_upd - b.n_tup_upd
                   from pg_stat_xact_user_tables as x, ledger_writes_before as b where x.relid = 'public.billing_events'::regclass $$,
  row(1::bigint, 0::bigint), 'the ledger row is written once: one insert, no update');
select is(private.apply_stripe_event(pg_temp.ev('evt_I2', 'invoice.created', 1790000300, pg_temp.inv('in_SqlD1', 'draft')), pg_temp.opts()) ->> 'result',
  'skipped_stale', 'same second, a draft after paid: the earlier state is skipped, no fetch');
select is(private.apply_stripe_event(pg_temp.ev('evt_I3', 'invoice.finalized', 1790000300, pg_temp.inv('in_SqlD1', 'open')), pg_temp.opts()) ->> 'result',
  'skipped_stale', 'same second, open after paid: skipped, no fetch');
select row_eq($$ select status, amount_paid_cents from public.invoices where stripe_invoice_id = 'in_SqlD1' $$, row('paid'::text, 10000::bigint),
  'the invoice stays paid');

select is(private.apply_stripe_event(pg_temp.ev('evt_I4', 'invoice.created', 1790000300, pg_temp.inv('in_SqlD2', 'draft')), pg_temp.opts()) ->> 'result',
  'created', 'a draft');
select is(private.apply_stripe_event(pg_temp.ev('evt_I5', 'invoice.finalized', 1790000300, pg_temp.inv('in_SqlD2', 'open')), pg_temp.opts()) ->> 'result',
  'changed', 'same second, open after draft: the later state applies, no fetch');
select is(private.apply_stripe_event(pg_temp.ev('evt_I6', 'invoice_payment.paid', 1790000300, pg_temp.pay('inpay_SqlD2', 'in_SqlD2', 10000)),
  pg_temp.opts()) - 'tenant_id', '{"event_id": "evt_I6", "outcome": "applied", "result": "changed", "object_id": "inpay_SqlD2"}'::jsonb,
  'invoice_payment.paid pays the open invoice from the payment itself (nothing to fetch)');
select row_eq($$ select status, amount_paid_cents, amount_remaining_cents, paid_at from public.invoices where stripe_invoice_id = 'in_SqlD2' $$,
  row('paid'::text, 10000::bigint, 0::bigint, to_timestamp(1790000300)), 'paid, the amount and the time of the payment');
select is(private.apply_stripe_event(pg_temp.ev('evt_I7', 'invoice.paid', 1790000300,
  pg_temp.inv('in_SqlD2', 'paid', 10000) || '{"hosted_invoice_url": "https://invoice.stripe.com/i/D2"}'), pg_temp.opts()) - 'tenant_id',
  '{"event_id": "evt_I7", "outcome": "applied", "result": "changed", "object_id": "in_SqlD2"}'::jsonb,
  'the invoice''s own paid copy of the same second (with more than the payment said) applies without a fetch');

select is(private.apply_stripe_event(pg_temp.ev('evt_I8', 'invoice_payment.paid', 1790000300, pg_temp.pay('inpay_SqlD3', 'in_SqlD3', 10000)),
  pg_temp.opts()) ->> 'outcome', 'parked', 'a payment of an invoice we do not have yet is parked');
select is((select result from public.billing_events where stripe_event_id = 'evt_I8'), 'awaiting_invoice', 'awaiting its invoice');
select is(private.apply_stripe_event(pg_temp.ev('evt_I9', 'invoice.created', 1790000300, pg_temp.inv('in_SqlD3', 'draft')), pg_temp.opts()) ->> 'result',
  'created', 'the invoice arrives (as a draft)');
select row_eq($$ select i.status, i.amount_paid_cents, e.outcome, e.result from public.invoices as i, public.billing_events as e
                  where i.stripe_invoice_id = 'in_SqlD3' and e.stripe_event_id = 'evt_I8' $$,
  row('paid'::text, 10000::bigint, 'applied'::text, 'changed'::text), 'the parked payment applied with it: paid');
select is(private.apply_stripe_event(pg_temp.ev('evt_I10', 'invoice.finalized', 1790000300, pg_temp.inv('in_SqlD3', 'open')), pg_temp.opts()) ->> 'result',
  'skipped_stale', 'and the open copy of the same second, arriving later, is older');

select private.apply_stripe_event(pg_temp.ev('evt_I11', 'invoice.finalized', 1790000300, pg_temp.inv('in_SqlD4', 'open')), pg_temp.opts());
select is(private.apply_stripe_event(pg_temp.ev('evt_I12', 'invoice_payment.paid', 1790000300, pg_temp.pay('inpay_SqlD4', 'in_SqlD4', 4000)),
  pg_temp.opts()) -> 'fetch', '{"type": "invoice", "id": "in_SqlD4"}'::jsonb, 'a partial payment: Stripe''s invoice decides (fetch)');
select is(private.apply_stripe_event(pg_temp.ev('evt_I13', 'invoice.updated', 1790000300, pg_temp.inv('in_SqlD4', 'open', total => 12000)),
  pg_temp.opts()) -> 'fetch', '{"type": "invoice", "id": "in_SqlD4"}'::jsonb, 'same second, same status, other amounts: fetch');

-- ---- one audit row per event -------------------------------------------------------------------
select is((select count(*)::int from public.system_audit_logs where area = 'database' and tenant_id = '5e000000-0000-4000-8000-00000000000d'
            and details ->> 'table' in ('customers', 'subscriptions', 'subscription_items', 'invoices')),
  0, 'the rows the events wrote have no row-trigger audit rows');
select is((select details -> 'changed' -> 'status' from public.system_audit_logs where action = 'webhook_event' and target = 'evt_I6'),
  '{"old": "open", "new": "paid"}'::jsonb, 'the event''s webhook_event row says what it changed');
select is((select details -> 'changed' -> 'items' -> 'new' -> 0 ->> 'quantity' from public.system_audit_logs
            where action = 'webhook_event' and target = 'evt_S02'), '2', 'a subscription''s items are in it');
select is((select count(*)::int from public.system_audit_logs where target in ('evt_I1', 'evt_I6', 'evt_I8')), 4,
  'one row per event that changed something (the parked payment: parked, then applied with its invoice)');
select is((select count(*)::int from public.system_audit_logs where target in ('evt_I2', 'evt_I3', 'evt_S03')), 0,
  'none for an event that changed nothing (skipped_stale, unchanged): the ledger has it');
select is((select outcome || '/' || result from public.billing_events where stripe_event_id = 'evt_I2'), 'applied/skipped_stale',
  'the ledger has it');
select row_eq($$ select payload ->> 'trimmed', payload -> 'data' -> 'object' ->> 'invoice', payload -> 'data' -> 'object' ? 'amount_paid',
                        payload ->> 'type'
                   from public.billing_events where stripe_event_id = 'evt_I6' $$,
  row('true'::text, 'in_SqlD2'::text, false, 'invoice_payment.paid'::text), 'an applied event keeps a trimmed payload: envelope and references');
select is((select payload -> 'data' -> 'object' ->> 'status' from public.billing_events where stripe_event_id = 'evt_P2'), 'active',
  'a parked event kept its whole payload to be replayed from');
select is(private.apply_stripe_event(pg_temp.ev('evt_I14', 'invoice.updated', 1790000400,
  pg_temp.inv('in_SqlD1', 'paid', 10000) || '{"hosted_invoice_url": "https://invoice.stripe.com/i/D1"}'), pg_temp.opts()) ->> 'result',
  'changed', 'a newer copy applies');
update public.invoices set hosted_invoice_url = 'https://invoice.stripe.com/i/edited' where stripe_invoice_id = 'in_SqlD2';
select ok(exists (select from public.system_audit_logs where area = 'database' and action = 'update'
                   and target = 'invoices:' || (select id from public.invoices where stripe_invoice_id = 'in_SqlD2')),
  'after the event, in the same transaction, another writer is audited by the trigger again');
select results_eq($$ select tgrelid::regclass::text, tgname = 'audit_row_change_outside_stripe_event', tgqual is not null,
                            tgtype & (4 | 8 | 16) = (4 | 8 | 16)
                       from pg_catalog.pg_trigger
                      where tgfoid = 'private.audit_row_change()'::regprocedure and tgenabled = 'O'
                        and tgrelid in ('public.customers'::regclass, 'public.subscriptions'::regclass,
                                        'public.subscription_items'::regclass, 'public.invoices'::regclass)
                      order by 1 $$,
  $$ values ('customers', true, true, true), ('invoices', true, true, true), ('subscription_items', true, true, true),
            ('subscriptions', true, true, true) $$,
  'the billing tables keep the audit trigger (insert, update, delete), guarded, and only that one');

select * from finish();
rollback;
