-- Structure and rules of the data model (tables of the data-model migrations): tables, primary
-- and foreign keys, RLS enabled, comments, RLS helpers, and the constraints that reject bad rows.
begin;
select plan(91);

-- ---------------------------------------------------------------------------------------------
-- Structure
-- ---------------------------------------------------------------------------------------------
select has_table('public', t, format('table %s exists', t))
from unnest(array['tenants', 'tenant_members', 'sites', 'workers', 'voice_calls', 'customers', 'subscriptions',
                  'subscription_items', 'invoices', 'billing_events']) as t;

select col_is_pk('public', 'tenants', 'id', 'tenants: pk id');
select col_is_pk('public', 'tenant_members', array['tenant_id', 'user_id'], 'tenant_members: pk (tenant_id, user_id)');
select col_is_pk('public', 'sites', 'id', 'sites: pk id');
select col_is_pk('public', 'workers', 'id', 'workers: pk id');
select col_is_pk('public', 'voice_calls', 'id', 'voice_calls: pk id');
select col_is_pk('public', 'customers', 'id', 'customers: pk id');
select col_is_pk('public', 'subscriptions', 'id', 'subscriptions: pk id');
select col_is_pk('public', 'subscription_items', 'id', 'subscription_items: pk id');
select col_is_pk('public', 'invoices', 'id', 'invoices: pk id');
select col_is_pk('public', 'billing_events', 'stripe_event_id', 'billing_events: pk stripe_event_id');

select fk_ok('public', 'tenant_members', 'tenant_id', 'public', 'tenants', 'id');
select fk_ok('public', 'tenant_members', 'user_id', 'auth', 'users', 'id');
select fk_ok('public', 'sites', 'tenant_id', 'public', 'tenants', 'id');
select fk_ok('public', 'workers', 'tenant_id', 'public', 'tenants', 'id');
select fk_ok('public', 'workers', array['tenant_id', 'site_id'], 'public', 'sites', array['tenant_id', 'id']);
select fk_ok('public', 'voice_calls', 'tenant_id', 'public', 'tenants', 'id');
select fk_ok('public', 'customers', 'tenant_id', 'public', 'tenants', 'id');
select fk_ok('public', 'subscriptions', array['tenant_id', 'customer_id'], 'public', 'customers', array['tenant_id', 'id']);
select fk_ok('public', 'subscription_items', array['tenant_id', 'subscription_id'], 'public', 'subscriptions', array['tenant_id', 'id']);
select fk_ok('public', 'invoices', array['tenant_id', 'customer_id'], 'public', 'customers', array['tenant_id', 'id']);
select fk_ok('public', 'invoices', array['tenant_id', 'subscription_id'], 'public', 'subscriptions', array['tenant_id', 'id']);

select col_is_unique('public', 'workers', array['tenant_id', 'phone'], 'workers: phone unique per tenant');
select col_is_unique('public', 'voice_calls', 'provider_call_sid', 'voice_calls: CallSid unique');
select col_is_unique('public', 'customers', 'stripe_customer_id', 'customers: Stripe customer id unique');
select col_is_unique('public', 'subscriptions', 'stripe_subscription_id', 'subscriptions: Stripe subscription id unique');
select col_is_unique('public', 'subscription_items', 'stripe_subscription_item_id', 'subscription_items: Stripe item id unique');
select col_is_unique('public', 'invoices', 'stripe_invoice_id', 'invoices: Stripe invoice id unique');

select is_empty(
  $$ select c.relname from pg_class as c
     where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and not c.relrowsecurity $$,
  'RLS is enabled on every public table');
select is_empty(
  $$ select c.relname from pg_class as c
     where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
       and c.relname in ('tenants', 'tenant_members', 'sites', 'workers', 'voice_calls', 'customers', 'subscriptions',
                         'subscription_items', 'invoices', 'billing_events')
       and obj_description(c.oid, 'pg_class') is null $$,
  'every data-model table has a comment');
select is_empty(
  $$ select c.relname || '.' || a.attname from pg_class as c
     join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
       and c.relname in ('tenants', 'tenant_members', 'sites', 'workers', 'voice_calls', 'customers', 'subscriptions',
                         'subscription_items', 'invoices', 'billing_events')
       and col_description(c.oid, a.attnum) is null $$,
  'every column of the data-model tables has a comment');

-- RLS helpers of the contract
select is_definer('private', 'member_tenant_ids', array[]::name[], 'private.member_tenant_ids() is security definer');
select is_definer('private', 'admin_tenant_ids', array[]::name[], 'private.admin_tenant_ids() is security definer');
select volatility_is('private', 'admin_tenant_ids', array[]::name[], 'stable', 'private.admin_tenant_ids() is stable');
select results_eq(
  $$ select has_function_privilege(r, 'private.admin_tenant_ids()', 'execute')
            and has_function_privilege(r, 'private.member_tenant_ids()', 'execute')
     from unnest(array['anon', 'authenticated']) as r $$,
  $$ values (false), (true) $$,
  'helpers: executable by authenticated, not by anon');
select ok(
  (select proconfig = array['search_path=""'] from pg_proc where oid = 'private.admin_tenant_ids()'::regprocedure),
  'helpers pin search_path to an empty string');

-- ---------------------------------------------------------------------------------------------
-- Fixtures (through the helpers of supabase/tests/_helpers)
-- ---------------------------------------------------------------------------------------------
select tests.create_user('owner.a@model.example.com', id => 'fa000000-0000-4000-8000-0000000000a1');
select tests.create_tenant('Model A (test)', id => 'fa000000-0000-4000-8000-000000000000');
select tests.create_tenant('Model B (test)', id => 'fb000000-0000-4000-8000-000000000000');
select tests.create_site('fa000000-0000-4000-8000-000000000000', 'Site A', id => 'fa000000-0000-4000-8000-00000000051a');
select tests.create_site('fb000000-0000-4000-8000-000000000000', 'Site B', id => 'fb000000-0000-4000-8000-00000000051b');
select tests.create_worker('fa000000-0000-4000-8000-000000000000', 'Worker A', '+15145550131',
  site_id => 'fa000000-0000-4000-8000-00000000051a', id => 'fa000000-0000-4000-8000-00000000091a');
insert into public.customers (id, tenant_id, stripe_customer_id) values
  ('fa000000-0000-4000-8000-00000000c05a', 'fa000000-0000-4000-8000-000000000000', 'cus_ModelA'),
  ('fb000000-0000-4000-8000-00000000c05b', 'fb000000-0000-4000-8000-000000000000', 'cus_ModelB');
insert into public.subscriptions (id, tenant_id, customer_id, stripe_subscription_id, status, plan_interval,
                                  current_period_start, current_period_end, stripe_updated_at) values
  ('fa000000-0000-4000-8000-0000000005ba', 'fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a',
   'sub_ModelA', 'active', 'month', '2026-11-01', '2026-12-01', '2026-11-01 10:00:00+00');
insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, kind) values
  ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_ModelAPlan', 'price_ModelMonthly', 'plan');

-- ---------------------------------------------------------------------------------------------
-- workers
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'X', '5145550132') $$,
  '23514', null, 'workers: phone without + is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'X', '+0145550132') $$,
  '23514', null, 'workers: phone with country code 0 is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'X', '+1514555') $$,
  '23514', null, 'workers: phone shorter than 8 digits is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'X', '+1 514 555 0132') $$,
  '23514', null, 'workers: formatted phone (spaces) is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'X', '+15145550131') $$,
  '23505', null, 'workers: duplicate phone in the same tenant is rejected');
select lives_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fb000000-0000-4000-8000-000000000000', 'X', '+15145550131') $$,
  'workers: the same phone in another tenant is accepted');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone, preferred_language)
     values ('fa000000-0000-4000-8000-000000000000', 'X', '+15145550133', 'es') $$,
  '23514', null, 'workers: language other than fr/en is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', '  ', '+15145550134') $$,
  '23514', null, 'workers: blank name is rejected');
select throws_ok(
  $$ insert into public.workers (tenant_id, site_id, full_name, phone)
     values ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000051b', 'X', '+15145550135') $$,
  '23503', null, 'workers: a site of another tenant is rejected');
select results_eq(
  $$ insert into public.workers (tenant_id, full_name, phone) values ('fa000000-0000-4000-8000-000000000000', 'Defaults', '+15145550136')
     returning sms_consent, phone_verified, preferred_language $$,
  $$ values (false, false, 'fr') $$,
  'workers: no consent and no verification until given; French by default');

-- ---------------------------------------------------------------------------------------------
-- tenants, tenant_members, sites
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id, role)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000000a1', 'superadmin') $$,
  '23514', null, 'tenant_members: unknown role is rejected');
select throws_ok(
  $$ insert into public.tenant_members (tenant_id, user_id) values ('fa000000-0000-4000-8000-000000000000', gen_random_uuid()) $$,
  '23503', null, 'tenant_members: a user missing from auth.users is rejected');
select throws_ok($$ insert into public.tenants (name) values ('') $$, '23514', null, 'tenants: empty name is rejected');
select throws_ok(
  $$ insert into public.sites (tenant_id, name) values ('fa000000-0000-4000-8000-000000000000', 'Site A') $$,
  '23505', null, 'sites: duplicate name in a tenant is rejected');

select lives_ok($$ delete from public.sites where id = 'fa000000-0000-4000-8000-00000000051a' $$, 'sites: a site with workers can be deleted');
select results_eq(
  $$ select tenant_id, site_id from public.workers where id = 'fa000000-0000-4000-8000-00000000091a' $$,
  $$ values ('fa000000-0000-4000-8000-000000000000'::uuid, null::uuid) $$,
  'deleting a site un-assigns its workers and keeps their tenant');

update public.workers set updated_at = '2000-01-01', full_name = 'Worker A renamed' where id = 'fa000000-0000-4000-8000-00000000091a';
select is((select updated_at from public.workers where id = 'fa000000-0000-4000-8000-00000000091a'), now(),
  'updated_at is set by the trigger, whatever the client sends');

-- ---------------------------------------------------------------------------------------------
-- voice_calls
-- ---------------------------------------------------------------------------------------------
insert into public.voice_calls (provider_call_sid, from_number, to_number, status)
  values ('CAmodel1', 'anonymous', '+15145550199', 'completed');
select throws_ok(
  $$ insert into public.voice_calls (provider_call_sid, from_number, to_number, status)
     values ('CAmodel1', '+15145550131', '+15145550199', 'completed') $$,
  '23505', null, 'voice_calls: duplicate CallSid is rejected');
select throws_ok(
  $$ insert into public.voice_calls (provider_call_sid, from_number, to_number, status)
     values ('CAmodel2', '+15145550131', '+15145550199', 'hung-up') $$,
  '23514', null, 'voice_calls: unknown call status is rejected');
select throws_ok(
  $$ insert into public.voice_calls (provider_call_sid, from_number, to_number, status, duration_seconds)
     values ('CAmodel3', '+15145550131', '+15145550199', 'completed', -1) $$,
  '23514', null, 'voice_calls: negative duration is rejected');
select throws_ok(
  $$ insert into public.voice_calls (provider_call_sid, from_number, to_number, forwarded_to, status)
     values ('CAmodel4', '+15145550131', '+15145550199', '514-555-0100', 'completed') $$,
  '23514', null, 'voice_calls: forwarded_to must be E.164');

-- ---------------------------------------------------------------------------------------------
-- customers, subscriptions, subscription_items
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ insert into public.customers (tenant_id, stripe_customer_id) values ('fa000000-0000-4000-8000-000000000000', 'cus_ModelA2') $$,
  '23505', null, 'customers: one Stripe customer per tenant');
select throws_ok(
  $$ insert into public.tenants (id, name) values ('fc000000-0000-4000-8000-000000000000', 'Model C');
     insert into public.customers (tenant_id, stripe_customer_id) values ('fc000000-0000-4000-8000-000000000000', 'cus_ModelA') $$,
  '23505', null, 'customers: duplicate Stripe customer id is rejected');
select throws_ok(
  $$ insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'sub_ModelX', 'expired', 'month', now()) $$,
  '23514', null, 'subscriptions: status outside Stripe''s list is rejected');
select throws_ok(
  $$ insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'sub_ModelX', 'active', 'week', now()) $$,
  '23514', null, 'subscriptions: interval other than month/year is rejected');
select throws_ok(
  $$ insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval,
                                       current_period_start, current_period_end, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'sub_ModelX', 'active', 'month',
             '2026-12-01', '2026-11-01', now()) $$,
  '23514', null, 'subscriptions: period ending before it starts is rejected');
select throws_ok(
  $$ insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fb000000-0000-4000-8000-00000000c05b', 'sub_ModelX', 'active', 'month', now()) $$,
  '23503', null, 'subscriptions: the customer of another tenant is rejected');
select throws_ok(
  $$ insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'sub_ModelX', 'active', 'month') $$,
  '23502', null, 'subscriptions: the Stripe watermark is required');
select throws_ok(
  $$ insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, kind)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_ModelAPlan2', 'price_ModelAnnual', 'plan') $$,
  '23505', null, 'subscription_items: one plan per subscription');
select lives_ok(
  $$ insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_ModelAAddon', 'price_ModelAddon', 2, 'addon_site') $$,
  'subscription_items: an additional-site add-on next to the plan is accepted');
select throws_ok(
  $$ insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, kind)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_ModelASeat', 'price_ModelSeat', 'seat') $$,
  '23514', null, 'subscription_items: unknown kind is rejected');
select throws_ok(
  $$ insert into public.subscription_items (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-0000000005ba', 'si_ModelANeg', 'price_ModelAddon', -1, 'addon_site') $$,
  '23514', null, 'subscription_items: negative quantity is rejected');

-- Out-of-order Stripe events: the older one is skipped, the newer one applies.
select is_empty(
  $$ update public.subscriptions set status = 'past_due', stripe_updated_at = '2026-11-01 09:00:00+00'
     where id = 'fa000000-0000-4000-8000-0000000005ba' returning id $$,
  'subscriptions: an update from an older Stripe event is skipped');
select isnt_empty(
  $$ update public.subscriptions set status = 'canceled', canceled_at = now(), stripe_updated_at = '2026-11-01 11:00:00+00'
     where id = 'fa000000-0000-4000-8000-0000000005ba' returning id $$,
  'subscriptions: an update from a newer Stripe event applies');
select is((select status from public.subscriptions where id = 'fa000000-0000-4000-8000-0000000005ba'), 'canceled',
  'subscriptions: the newest state wins');

-- ---------------------------------------------------------------------------------------------
-- invoices
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ModelNeg', 'open', -100, -100, now()) $$,
  '23514', null, 'invoices: a negative amount due is rejected (a negative total is a credit invoice: 20261130040000)');
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, currency, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ModelCur', 'open', 'CAD', 100, 100, now()) $$,
  '23514', null, 'invoices: upper-case currency is rejected');
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ModelPaid', 'paid', 100, 100, now()) $$,
  '23514', null, 'invoices: a paid invoice needs paid_at');
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, hosted_invoice_url, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ModelUrl', 'open', 100, 100,
             'http://invoice.example.com/x', now()) $$,
  '23514', null, 'invoices: hosted_invoice_url must be https');
select lives_ok(
  $$ insert into public.invoices (tenant_id, customer_id, subscription_id, stripe_invoice_id, status, total_cents, amount_due_cents,
                                  amount_paid_cents, paid_at, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'fa000000-0000-4000-8000-0000000005ba',
             'in_ModelOk', 'paid', 22880, 22880, 22880, now(), now()) $$,
  'invoices: a valid paid invoice is accepted');
select throws_ok(
  $$ insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at)
     values ('fa000000-0000-4000-8000-000000000000', 'fa000000-0000-4000-8000-00000000c05a', 'in_ModelOk', 'open', 1, 1, now()) $$,
  '23505', null, 'invoices: duplicate Stripe invoice id is rejected');

-- ---------------------------------------------------------------------------------------------
-- billing_events
-- ---------------------------------------------------------------------------------------------
insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
  values ('evt_Model1', 'invoice.paid', now(), false, '{"id": "evt_Model1"}');
select throws_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('evt_Model1', 'invoice.paid', now(), false, '{"id": "evt_Model1"}') $$,
  '23505', null, 'billing_events: an event is recorded once');
select throws_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('evt_Model2', 'invoice.paid', now(), false, '[1, 2]') $$,
  '23514', null, 'billing_events: payload must be a JSON object');
select throws_ok(
  $$ insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
     values ('not_an_event', 'invoice.paid', now(), false, '{}') $$,
  '23514', null, 'billing_events: id must be a Stripe event id');

-- ---------------------------------------------------------------------------------------------
-- Deleting tenants
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ delete from public.tenants where id = 'fa000000-0000-4000-8000-000000000000' $$,
  '23503', null, 'tenants: a tenant with billing records cannot be deleted');
delete from public.customers where id = 'fb000000-0000-4000-8000-00000000c05b';
delete from public.tenants where id = 'fb000000-0000-4000-8000-000000000000';
select is_empty(
  $$ select id from public.sites where tenant_id = 'fb000000-0000-4000-8000-000000000000'
     union all select id from public.workers where tenant_id = 'fb000000-0000-4000-8000-000000000000' $$,
  'tenants: deleting a tenant without billing records removes its sites and workers');

select * from finish();
rollback;
