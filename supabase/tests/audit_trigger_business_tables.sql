-- The generic audit trigger private.audit_row_change(): one system_audit_logs row per inserted,
-- updated or deleted row of a business table, with area 'database', the action, the actor
-- (JWT sub, else JWT role, else database role), the row's tenant, target '<table>:<pk>' and the
-- changed columns. Choice documented in 20261125030800: a no-op UPDATE (nothing changed but
-- updated_at) is NOT logged; updated_at never appears in "changed".
begin;
select plan(30);

-- ---------------------------------------------------------------------------------------------
-- Attached where it should be
-- ---------------------------------------------------------------------------------------------
select has_trigger('public', t, 'audit_row_change', format('%s is audited', t))
from unnest(array['tenants', 'tenant_members', 'sites', 'workers', 'voice_calls']) as t;
-- The billing tables: the same function, guarded for private.apply_stripe_event (20261130030100).
select has_trigger('public', t, 'audit_row_change_outside_stripe_event', format('%s is audited (but inside stripe events)', t))
from unnest(array['customers', 'subscriptions', 'subscription_items', 'invoices']) as t;
select hasnt_trigger('public', 'billing_events', 'audit_row_change', 'billing_events (itself a ledger) is not audited');
select is_definer('private', 'audit_row_change', array[]::name[], 'the audit trigger function is security definer');

-- ---------------------------------------------------------------------------------------------
-- Fixtures, as postgres (no JWT): the actor is the database role
-- ---------------------------------------------------------------------------------------------
select tests.create_tenant('Audit A (test)', id => 'fa000000-0000-4000-8000-000000000000');
select tests.create_member('fa000000-0000-4000-8000-000000000000', 'admin', 'admin.a@audit.example.com',
  id => 'fa000000-0000-4000-8000-0000000000a2');

select results_eq(
  $$ select area, action, actor, tenant_id, details ->> 'table', details ->> 'op', details -> 'changed' -> 'name'
     from public.system_audit_logs where target = 'tenants:fa000000-0000-4000-8000-000000000000' $$,
  $$ values ('database', 'insert', 'postgres', 'fa000000-0000-4000-8000-000000000000'::uuid, 'tenants', 'insert',
             '{"old": null, "new": "Audit A (test)"}'::jsonb) $$,
  'insert into tenants: actor is the database role, tenant_id is tenants.id');
select results_eq(
  $$ select tenant_id, details -> 'changed' -> 'role' ->> 'new' from public.system_audit_logs
     where target = 'tenant_members:fa000000-0000-4000-8000-000000000000,fa000000-0000-4000-8000-0000000000a2' $$,
  $$ values ('fa000000-0000-4000-8000-000000000000'::uuid, 'admin') $$,
  'composite primary key: target lists both key columns');

-- ---------------------------------------------------------------------------------------------
-- As the admin of A (JWT sub): insert, update, no-op update, delete
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a2');

insert into public.sites (id, tenant_id, name, address)
  values ('fa000000-0000-4000-8000-00000000051a', 'fa000000-0000-4000-8000-000000000000', 'Chantier Audit', null);
insert into public.workers (id, tenant_id, site_id, full_name, phone, preferred_language)
  values ('fa000000-0000-4000-8000-00000000091a', 'fa000000-0000-4000-8000-000000000000',
          'fa000000-0000-4000-8000-00000000051a', 'Audit Worker', '+15145550121', 'fr');
update public.workers set sms_consent = true, preferred_language = 'en' where id = 'fa000000-0000-4000-8000-00000000091a';
update public.workers set sms_consent = true where id = 'fa000000-0000-4000-8000-00000000091a';  -- no-op
delete from public.workers where id = 'fa000000-0000-4000-8000-00000000091a';

select tests.clear_authentication();

select results_eq(
  $$ select action, actor, tenant_id from public.system_audit_logs
     where target = 'workers:fa000000-0000-4000-8000-00000000091a' order by id $$,
  $$ values ('insert', 'fa000000-0000-4000-8000-0000000000a2', 'fa000000-0000-4000-8000-000000000000'::uuid),
            ('update', 'fa000000-0000-4000-8000-0000000000a2', 'fa000000-0000-4000-8000-000000000000'::uuid),
            ('delete', 'fa000000-0000-4000-8000-0000000000a2', 'fa000000-0000-4000-8000-000000000000'::uuid) $$,
  'insert, update, delete of a worker: three rows, actor = JWT sub, tenant of the row; the no-op update is not logged');
select is(
  (select details from public.system_audit_logs
   where target = 'workers:fa000000-0000-4000-8000-00000000091a' and action = 'update'),
  '{"table": "workers", "op": "update",
    "changed": {"sms_consent": {"old": false, "new": true}, "preferred_language": {"old": "fr", "new": "en"}}}'::jsonb,
  'update: details hold only the changed columns (not updated_at, not unchanged ones)');
select is(
  (select details -> 'changed' -> 'phone' from public.system_audit_logs
   where target = 'workers:fa000000-0000-4000-8000-00000000091a' and action = 'insert'),
  '{"old": null, "new": "+15145550121"}'::jsonb,
  'insert: changed holds the new values');
select ok(
  (select not (details -> 'changed' ? 'updated_at') from public.system_audit_logs
   where target = 'workers:fa000000-0000-4000-8000-00000000091a' and action = 'insert'),
  'insert: updated_at is left out');
select is(
  (select details -> 'changed' -> 'full_name' from public.system_audit_logs
   where target = 'workers:fa000000-0000-4000-8000-00000000091a' and action = 'delete'),
  '{"old": "Audit Worker", "new": null}'::jsonb,
  'delete: changed keeps the removed values');
select is(
  (select details -> 'changed' from public.system_audit_logs
   where target = 'sites:fa000000-0000-4000-8000-00000000051a' and action = 'insert') ? 'address',
  false,
  'insert: null columns are left out');

-- ---------------------------------------------------------------------------------------------
-- Actor fallbacks. Both cases run where current_user inside the SECURITY DEFINER function would
-- be 'postgres', so 'service_role' proves the fallback is read from the caller's context.
-- ---------------------------------------------------------------------------------------------
-- 1. No JWT at all (direct database connection), SET ROLE service_role: actor = that role. Runs
--    right after the admin's session, so claims left behind by it would show as the actor.
select tests.clear_authentication();
set local role service_role;
update public.sites set name = 'Chantier Audit 2' where id = 'fa000000-0000-4000-8000-00000000051a';
select tests.clear_authentication();

select results_eq(
  $$ select actor, details -> 'changed' -> 'name' from public.system_audit_logs
     where target = 'sites:fa000000-0000-4000-8000-00000000051a' and action = 'update' $$,
  $$ values ('service_role', '{"old": "Chantier Audit", "new": "Chantier Audit 2"}'::jsonb) $$,
  'no JWT: actor is the role set by SET ROLE, not the function owner');

-- 2. JWT without sub (service_role key), database role postgres: actor = JWT role. Claims without
--    the matching role on purpose, so no tests.authenticate_as_* helper.
select set_config('request.jwt.claims', json_build_object('role', 'service_role')::text, true);
insert into public.voice_calls (id, tenant_id, provider_call_sid, from_number, to_number, status)
  values ('fc000000-0000-4000-8000-0000000ca11c', null, 'CAauditUnknown', 'anonymous', '+15145550199', 'ringing');

select results_eq(
  $$ select actor, tenant_id from public.system_audit_logs where target = 'voice_calls:fc000000-0000-4000-8000-0000000ca11c' $$,
  $$ values ('service_role', null::uuid) $$,
  'JWT without sub: actor is the JWT role; a call of an unknown caller has no tenant');

-- ---------------------------------------------------------------------------------------------
-- Billing tables and billing_events
-- ---------------------------------------------------------------------------------------------
insert into public.customers (id, tenant_id, stripe_customer_id)
  values ('fa000000-0000-4000-8000-00000000c05a', 'fa000000-0000-4000-8000-000000000000', 'cus_AuditA');
insert into public.billing_events (stripe_event_id, type, created, livemode, payload)
  values ('evt_AuditA', 'customer.created', now(), false, '{"id": "evt_AuditA"}');

select results_eq(
  $$ select action, tenant_id, details -> 'changed' -> 'stripe_customer_id' ->> 'new' from public.system_audit_logs
     where target = 'customers:fa000000-0000-4000-8000-00000000c05a' $$,
  $$ values ('insert', 'fa000000-0000-4000-8000-000000000000'::uuid, 'cus_AuditA') $$,
  'billing rows are audited with their tenant');
select is_empty(
  $$ select id from public.system_audit_logs where details ->> 'table' = 'billing_events' $$,
  'billing_events inserts are not audited');

-- ---------------------------------------------------------------------------------------------
-- private.enable_audit(regclass, quiet columns): how migrations attach the trigger (20261126020000, 20261130020000)
-- ---------------------------------------------------------------------------------------------
select results_eq(
  $$ select count(*)::int = count(distinct tgrelid)::int,
            bool_and(tgname = 'audit_row_change' or tgname = 'audit_row_change_outside_stripe_event' and tgqual is not null)
     from pg_trigger where tgfoid = 'private.audit_row_change()'::regprocedure $$,
  $$ values (true, true) $$,
  're-attached through enable_audit: one audit trigger per table, still named audit_row_change');
select results_eq(
  $$ select r, has_function_privilege(r, 'private.enable_audit(regclass, text[])', 'execute')
     from unnest(array['anon', 'authenticated', 'service_role']) as r $$,
  $$ values ('anon', false), ('authenticated', false), ('service_role', false) $$,
  'enable_audit is executable by no API role');
select tests.authenticate_as('fa000000-0000-4000-8000-0000000000a2');
select throws_ok($$ select private.enable_audit('public.workers') $$, '42501', null,
  'an admin (authenticated) cannot call enable_audit');
select tests.clear_authentication();
select throws_ok($$ select private.enable_audit('public.tenants_pkey') $$, '42809', null,
  'enable_audit refuses what is not a table');
create table public.audit_probe_without_key (note text);
select throws_ok($$ select private.enable_audit('public.audit_probe_without_key') $$, '42P16', null,
  'enable_audit refuses a table without primary key (the audit target is its key)');
create table public.audit_probe (id bigint primary key, tenant_id uuid, note text);
select lives_ok($$ select private.enable_audit('public.audit_probe'); select private.enable_audit('public.audit_probe') $$,
  'enable_audit on a new table, twice');
insert into public.audit_probe (id, tenant_id, note) values (1, 'fa000000-0000-4000-8000-000000000000', 'x');
select results_eq(
  $$ select action, tenant_id, details -> 'changed' -> 'note' ->> 'new' from public.system_audit_logs where target = 'audit_probe:1' $$,
  $$ values ('insert', 'fa000000-0000-4000-8000-000000000000'::uuid, 'x') $$,
  'a table given enable_audit (twice) is audited, once per change');

select * from finish();
rollback;
