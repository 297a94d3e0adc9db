-- RLS and privileges of voice_calls and the billing tables (customers, subscriptions,
-- subscription_items, invoices, billing_events), for anon, member of A, admin of A, admin of B
-- and service_role. Readable by owners/admins of the tenant only; written by service_role only;
-- billing_events closed to the API roles. Fixtures are created in the test transaction.
begin;
select plan(47);

-- ---------------------------------------------------------------------------------------------
-- Fixtures (as postgres, through the helpers of supabase/tests/_helpers)
-- ---------------------------------------------------------------------------------------------
select tests.create_tenant('Tenant A (test)', id => 'fa000000-0000-4000-8000-000000000000');
select tests.create_tenant('Tenant B (test)', id => 'fb000000-0000-4000-8000-000000000000');
select tests.create_member('fa000000-0000-4000-8000-000000000000', 'admin', 'admin.a@rls.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a2');
select tests.create_member('fa000000-0000-4000-8000-000000000000', 'member', 'member.a@rls.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a3');
select tests.create_member('fb000000-0000-4000-8000-000000000000', 'admin', 'admin.b@rls.example.com',
  id => 'fb000000-0000-4000-8000-0000000000b2');

insert into public.voice_calls (id, tenant_id, provider_call_sid, from_number, to_number, forwarded_to, status) values
  ('fa000000-0000-4000-8000-0000000ca11a', 'fa000000-0000-4000-8000-000000000000', 'CAtestA', '+15145550111', '+15145550199', '+15145550100', 'completed'),
  ('fb000000-0000-4000-8000-0000000ca11b', 'fb000000-0000-4000-8000-000000000000', 'CAtestB', '+15145550112', '+15145550199', '+15145550100', 'completed'),
  ('fc000000-0000-4000-8000-0000000ca11c', null, 'CAtestUnknown', 'anonymous', '+15145550199', null, 'no-answer');

insert into public.customers (id, tenant_id, stripe_customer_id) values
  ('fa000000-0000-4000-8000-00000000c05a', 'fa000000-0000-4000-8000-000000000000', 'cus_TestA'),
  ('fb000000-0000-4000-8000-00000000c05b', 'fb000000-0000-4000-8000-000000000000', 'cus_TestB');

insert into public.subscriptions (id, tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at) values
  ('fa000000-0000-4000-8000-0000000005ba', 'fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a',
   'sub_TestA', 'active', 'month', now()),
  ('fb000000-0000-4000-8000-0000000005bb', 'fb000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000c05b',
   'sub_TestB', 'active', 'year', now());

insert into public.subscription_items (id, tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, kind) values
  ('fa000000-0000-4000-8000-00000000017a', 'fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba',
   'si_TestA', 'price_TestMonthly', 'plan'),
  ('fb000000-0000-4000-8000-00000000017b', 'fb000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-0000000005bb',
   'si_TestB', 'price_TestAnnual', 'plan');

insert into public.invoices (id, tenant_id, customer_id, subscription_id, stripe_invoice_id, status,
                             total_cents, amount_due_cents, stripe_updated_at) values
  ('fa000000-0000-4000-8000-0000000001fa', 'fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a',
   'fa000000-0000-4000-8000-0000000005ba', 'in_TestA', 'open', 22880, 22880, now()),
  ('fb000000-0000-4000-8000-0000000001fb', 'fb000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000c05b',
   'fb000000-0000-4000-8000-0000000005bb', 'in_TestB', 'open', 171313, 171313, now());

insert into public.billing_events (stripe_event_id, type, created, livemode, payload) values
  ('evt_TestA', 'invoice.created', now(), false, '{"id": "evt_TestA"}');

-- ---------------------------------------------------------------------------------------------
-- anon: no privilege at all
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_anon();

select throws_ok($$ select * from public.voice_calls $$, '42501', null, 'anon cannot select voice_calls');
select throws_ok($$ select * from public.customers $$, '42501', null, 'anon cannot select customers');
select throws_ok($$ select * from public.subscriptions $$, '42501', null, 'anon cannot select subscriptions');
select throws_ok($$ select * from public.subscription_items $$, '42501', null, 'anon cannot select subscription_items');
select throws_ok($$ select * from public.invoices $$, '42501', null, 'anon cannot select invoices');
select throws_ok($$ select * from public.billing_events $$, '42501', null, 'anon cannot select billing_events');
select throws_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('evt_Forged', 'invoice.paid', now(), true, '{}') $$,
  '42501', null, 'anon cannot insert billing_events');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- member of A: no billing, no voice calls
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a3');

select is_empty($$ select id from public.voice_calls $$, 'member A sees no voice call');
select is_empty($$ select id from public.customers $$, 'member A sees no customer');
select is_empty($$ select id from public.subscriptions $$, 'member A sees no subscription');
select is_empty($$ select id from public.subscription_items $$, 'member A sees no subscription item');
select is_empty($$ select id from public.invoices $$, 'member A sees no invoice');
select throws_ok($$ select * from public.billing_events $$, '42501', null, 'member A cannot select billing_events');
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ForgedByMember', 'paid', 0, 0, now()) $$,
  '42501', null, 'member A cannot insert invoices');
select throws_ok($$ update public.voice_calls set status = 'failed' $$, '42501', null, 'member A cannot update voice calls');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of A: reads the rows of A, writes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a2');

select results_eq($$ select id from public.voice_calls $$,
  $$ values ('fa000000-0000-4000-8000-0000000ca11a'::uuid) $$,
  'admin A sees the calls of A only (not B, not unknown callers)');
select results_eq($$ select id from public.customers $$,
  $$ values ('fa000000-0000-4000-8000-00000000c05a'::uuid) $$, 'admin A sees the customer of A only');
select results_eq($$ select id from public.subscriptions $$,
  $$ values ('fa000000-0000-4000-8000-0000000005ba'::uuid) $$, 'admin A sees the subscription of A only');
select results_eq($$ select id from public.subscription_items $$,
  $$ values ('fa000000-0000-4000-8000-00000000017a'::uuid) $$, 'admin A sees the subscription items of A only');
select results_eq($$ select id from public.invoices $$,
  $$ values ('fa000000-0000-4000-8000-0000000001fa'::uuid) $$, 'admin A sees the invoices of A only');
select throws_ok($$ select * from public.billing_events $$, '42501', null, 'admin A cannot select billing_events');

select throws_ok(
  $$ insert into public.voice_calls (tenant_id, provider_call_sid, from_number, to_number, status)
     values ('fa000000-0000-4000-8000-000000000000', 'CAforged', '+15145550111', '+15145550199', 'completed') $$,
  '42501', null, 'admin A cannot insert voice calls');
select throws_ok($$ delete from public.voice_calls $$, '42501', null, 'admin A cannot delete voice calls');
select throws_ok(
  $$ insert into public.customers (tenant_id, stripe_customer_id) values ('fa000000-0000-4000-8000-000000000000', 'cus_Forged') $$,
  '42501', null, 'admin A cannot insert customers');
select throws_ok($$ update public.customers set stripe_customer_id = 'cus_Forged' $$, '42501', null,
  'admin A cannot update customers');
select throws_ok($$ update public.subscriptions set status = 'active', plan_interval = 'year' $$, '42501', null,
  'admin A cannot update subscriptions (e.g. grant themselves a plan)');
select throws_ok($$ delete from public.subscriptions $$, '42501', null, 'admin A cannot delete subscriptions');
select throws_ok($$ update public.subscription_items set quantity = 0 $$, '42501', null,
  'admin A cannot update subscription items');
select throws_ok($$ update public.invoices set status = 'paid', paid_at = now() $$, '42501', null,
  'admin A cannot mark invoices paid');
select throws_ok($$ delete from public.invoices $$, '42501', null, 'admin A cannot delete invoices');
select throws_ok($$ truncate public.invoices $$, '42501', null, 'admin A cannot truncate invoices');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of B: sees B only
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fb000000-0000-4000-8000-0000000000b2');

select results_eq($$ select id from public.voice_calls $$,
  $$ values ('fb000000-0000-4000-8000-0000000ca11b'::uuid) $$, 'admin B sees the calls of B only');
select results_eq($$ select id from public.customers $$,
  $$ values ('fb000000-0000-4000-8000-00000000c05b'::uuid) $$, 'admin B sees the customer of B only');
select results_eq($$ select id from public.subscriptions $$,
  $$ values ('fb000000-0000-4000-8000-0000000005bb'::uuid) $$, 'admin B sees the subscription of B only');
select results_eq($$ select id from public.subscription_items $$,
  $$ values ('fb000000-0000-4000-8000-00000000017b'::uuid) $$, 'admin B sees the subscription items of B only');
select results_eq($$ select id from public.invoices $$,
  $$ values ('fb000000-0000-4000-8000-0000000001fb'::uuid) $$, 'admin B sees the invoices of B only');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- service_role: reads and writes everything (Stripe/Twilio edge functions)
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();

select results_eq(
  $$ select count(*)::int from public.voice_calls where provider_call_sid like 'CAtest%' $$,
  $$ values (3) $$, 'service_role sees every call, unknown callers included');
select lives_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('evt_TestB', 'customer.subscription.updated', now(), false, '{"id": "evt_TestB"}') $$,
  'service_role records a Stripe event');
select throws_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('evt_TestB', 'customer.subscription.updated', now(), false, '{"id": "evt_TestB"}') $$,
  '23505', null, 'a redelivered Stripe event hits the primary key');
select isnt_empty(
  $$ update public.billing_events set processed_at = now() where stripe_event_id = 'evt_TestB' returning stripe_event_id $$,
  'service_role marks an event processed');
select isnt_empty(
  $$ update public.subscriptions set status = 'past_due', stripe_updated_at = now() + interval '1 minute'
     where stripe_subscription_id = 'sub_TestA' returning id $$,
  'service_role updates a subscription');
select lives_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_TestA2', 'draft', 0, 0, now()) $$,
  'service_role inserts an invoice');
select isnt_empty(
  $$ insert into public.voice_calls (tenant_id, provider_call_sid, from_number, to_number, status)
     values (null, 'CAtestNew', '+15145550113', '+15145550199', 'ringing') returning id $$,
  'service_role records a call');
select isnt_empty($$ delete from public.voice_calls where provider_call_sid = 'CAtestNew' returning id $$,
  'service_role deletes a call');

select tests.clear_authentication();

select results_eq(
  $$ select status from public.subscriptions where stripe_subscription_id in ('sub_TestA', 'sub_TestB') order by stripe_subscription_id $$,
  $$ values ('past_due'), ('active') $$, 'only service_role changed a subscription');
select is_empty(
  $$ select stripe_event_id from public.billing_events where stripe_event_id = 'evt_Forged' $$,
  'no forged Stripe event was stored');
select policies_are('public', 'billing_events', array[]::name[], 'billing_events has no policy (server-side only)');

select * from finish();
rollback;
