-- What billing-checkout and billing-portal write (migration 20261128030400):
-- private.link_stripe_customer (one customer per tenant, the first one wins, audited) and
-- private.record_billing_session (area billing audit rows, no URL, failures carry details.error);
-- both closed to the API roles.
begin;
select plan(19);

select tests.create_tenant('Link A (test)', id => 'c0000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Link B (test)', id => 'c0000000-0000-4000-8000-00000000000b');
select tests.create_member('c0000000-0000-4000-8000-00000000000a', 'owner', 'owner.a@link.example.com',
  id => 'c0000000-0000-4000-8000-0000000000a1');

-- ---------------------------------------------------------------------------------------------
-- Closed to the API roles
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('c0000000-0000-4000-8000-0000000000a1');
select throws_ok(
  $$ select private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_Forged"}') $$,
  '42501', null, 'a tenant owner cannot link a customer of their choice');
select throws_ok(
  $$ select private.record_billing_session('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "action": "checkout_session_created"}') $$,
  '42501', null, 'nor write billing audit rows');
select tests.authenticate_as_anon();
select throws_ok(
  $$ select private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_Forged"}') $$,
  '42501', null, 'anon cannot link a customer');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- link_stripe_customer
-- ---------------------------------------------------------------------------------------------
select is(private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_LinkA1", "actor": "c0000000-0000-4000-8000-0000000000a1"}'),
  '{"stripe_customer_id": "cus_LinkA1", "linked": true}'::jsonb, 'a tenant without a customer gets it (linked)');
select results_eq(
  $$ select tenant_id, stripe_customer_id, livemode from public.customers where tenant_id = 'c0000000-0000-4000-8000-00000000000a' $$,
  $$ values ('c0000000-0000-4000-8000-00000000000a'::uuid, 'cus_LinkA1', false) $$, 'the customers row is written');
select results_eq(
  $$ select actor, target, details from public.system_audit_logs where area = 'billing' and action = 'customer_linked'
       and tenant_id = 'c0000000-0000-4000-8000-00000000000a' $$,
  $$ values ('c0000000-0000-4000-8000-0000000000a1', 'cus_LinkA1', '{"stripe_customer_id": "cus_LinkA1"}'::jsonb) $$,
  'audited: customer_linked, actor = the user whose request created it');
select is(private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_LinkA1"}'),
  '{"stripe_customer_id": "cus_LinkA1", "linked": false}'::jsonb, 'the same customer again (a concurrent request): nothing changes');
select is((select count(*)::int from public.system_audit_logs where tenant_id = 'c0000000-0000-4000-8000-00000000000a'
             and area = 'billing'), 1, '…and nothing is audited twice');
select is(private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_LinkA2"}'),
  '{"stripe_customer_id": "cus_LinkA1", "linked": false}'::jsonb, 'another customer: the first one stays, and is returned');
select is((select details ->> 'error' from public.system_audit_logs where action = 'customer_not_linked' and target = 'cus_LinkA2'),
  'tenant already has Stripe customer cus_LinkA1; cus_LinkA2 was left unused',
  'the unused customer is reported with details.error (operators'' error query)');
select throws_ok(
  $$ select private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000b", "stripe_customer_id": "cus_LinkA1"}') $$,
  '23505', null, 'a Stripe customer belongs to one tenant only');
select throws_ok($$ select private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000b"}') $$,
  '22023', 'link_stripe_customer: tenant_id and stripe_customer_id are required', 'stripe_customer_id is required');

-- customer.created about a customer billing-checkout has just created, delivered before the link
-- committed: stripe-webhook parked it (no tenant tied). The link replays it.
insert into public.billing_events (stripe_event_id, type, created, livemode, payload, processed_at, outcome, stripe_customer_id)
values ('evt_LinkB1created', 'customer.created', '2026-11-20T10:00:00Z', false,
        '{"id": "evt_LinkB1created", "object": "event", "type": "customer.created", "created": 1763632800, "livemode": false,
          "api_version": "2026-10-28.endive",
          "data": {"object": {"id": "cus_LinkB1", "object": "customer", "email": "facturation@link-b.example.com",
                              "created": 1763632800, "livemode": false, "metadata": {}}}}',
        now(), 'parked', 'cus_LinkB1');
select is(private.link_stripe_customer('{"tenant_id": "c0000000-0000-4000-8000-00000000000b", "stripe_customer_id": "cus_LinkB1"}') ->> 'linked',
  'true', 'a customer with a parked event is linked');
select is((select outcome from public.billing_events where stripe_event_id = 'evt_LinkB1created'), 'applied',
  'the event parked before the link is replayed by it (not parked for good)');

-- ---------------------------------------------------------------------------------------------
-- record_billing_session
-- ---------------------------------------------------------------------------------------------
select lives_ok(
  $$ select private.record_billing_session('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "actor": "c0000000-0000-4000-8000-0000000000a1",
       "action": "checkout_session_created", "target": "cs_test_1",
       "details": {"plan": "monthly", "additional_sites": 2, "url": "https://checkout.stripe.com/c/pay/cs_test_1#secret",
                   "success_url": "https://app.example.com/ok"}}') $$,
  'a checkout session is recorded');
select results_eq(
  $$ select area, action, actor, target, details from public.system_audit_logs where target = 'cs_test_1' $$,
  $$ values ('billing', 'checkout_session_created', 'c0000000-0000-4000-8000-0000000000a1', 'cs_test_1',
             '{"plan": "monthly", "additional_sites": 2}'::jsonb) $$,
  'area billing, the user as actor, the session as target; URLs are dropped from details');
select throws_ok(
  $$ select private.record_billing_session('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "action": "portal_session_failed", "details": {}}') $$,
  '22023', 'record_billing_session: a failure needs details.error', 'a failure without details.error is refused');
select throws_ok(
  $$ select private.record_billing_session('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "action": "insert"}') $$,
  '22023', 'record_billing_session: unknown action insert', 'only the billing session actions');
select lives_ok(
  $$ select private.record_billing_session('{"tenant_id": "c0000000-0000-4000-8000-00000000000a", "action": "portal_session_failed",
       "details": {"error": "resource_missing: No such customer"}}') $$,
  'a portal failure with its error is recorded');

select * from finish();
rollback;
