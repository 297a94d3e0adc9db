-- The dashboard views: security_invoker, commented, and tenant isolation through the tables' RLS:
-- a tenant admin sees their tenant's rows only, a plain member nothing, anon not even the schema;
-- the operator (postgres) sees every tenant; views over operator-only tables are not granted to
-- the API roles at all.
begin;
select plan(43);

-- Two tenants with an admin each, and a plain member of A.
select tests.create_tenant('Dashboard A', id => 'da000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Dashboard B', id => 'da000000-0000-4000-8000-00000000000b');
select tests.create_member('da000000-0000-4000-8000-00000000000a', 'admin', 'admin-a@dashboard.example.com', id => 'da000000-0000-4000-8000-0000000000a1');
select tests.create_member('da000000-0000-4000-8000-00000000000b', 'admin', 'admin-b@dashboard.example.com', id => 'da000000-0000-4000-8000-0000000000b1');
select tests.create_member('da000000-0000-4000-8000-00000000000a', 'member', 'member-a@dashboard.example.com', id => 'da000000-0000-4000-8000-0000000000a2');
select tests.create_worker('da000000-0000-4000-8000-00000000000a', 'Worker A', '+15145550161', id => 'da000000-0000-4000-8000-0000000000c1');
select tests.create_worker('da000000-0000-4000-8000-00000000000b', 'Worker B', '+15145550162', id => 'da000000-0000-4000-8000-0000000000c2');

-- Each tenant's SMS today (3 for A, 2 for B), consent changes (1 each), errors (1 each), and one
-- platform-wide error and billing sync run (tenant_id null).
insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, created_at)
select 'da000000-0000-4000-8000-00000000000a', 'da000000-0000-4000-8000-0000000000c1', 'outbound', '+15145550199', '+15145550161',
       'dashboard test', s, now()
  from unnest(array['delivered', 'delivered', 'failed']) as s;
insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, created_at)
select 'da000000-0000-4000-8000-00000000000b', 'da000000-0000-4000-8000-0000000000c2', 'outbound', '+15145550199', '+15145550162',
       'dashboard test', s, now()
  from unnest(array['delivered', 'undelivered']) as s;
insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source, keyword, actor) values
  ('da000000-0000-4000-8000-00000000000a', 'da000000-0000-4000-8000-0000000000c1', '+15145550161', false, 'keyword', 'STOP', 'twilio'),
  ('da000000-0000-4000-8000-00000000000b', 'da000000-0000-4000-8000-0000000000c2', '+15145550162', false, 'keyword', 'ARRET', 'twilio');
insert into public.system_audit_logs (area, action, tenant_id, target, details) values
  ('twilio', 'sms_send_failed', 'da000000-0000-4000-8000-00000000000a', 'dashboard:a', '{"error": "30003 unreachable"}'),
  ('twilio', 'sms_send_failed', 'da000000-0000-4000-8000-00000000000b', 'dashboard:b', '{"error": "30003 unreachable"}'),
  ('maintenance', 'sms_purge', null, 'dashboard:platform', '{"error": "platform failure"}'),
  ('billing', 'billing_sync', null, 'dashboard:sync',
   '{"run_id": "2d0c1a4e-0000-4000-8000-000000000001", "status": "complete", "api_calls": 12,
     "drift": {"customers": {"created": 1, "changed": 2, "missing": 0},
               "subscriptions": {"created": 0, "changed": 3, "missing": 1},
               "invoices": {"created": 4, "changed": 0, "missing": 0}}}');

-- ---- shape ---------------------------------------------------------------------------------------
select is(
  (select count(*)::int from pg_class where relnamespace = 'dashboard'::regnamespace and relkind = 'v'), 10,
  'ten views in schema dashboard');
select is_empty($$
  select relname from pg_class
   where relnamespace = 'dashboard'::regnamespace and relkind = 'v'
     and not coalesce('security_invoker=true' = any (reloptions), false)
$$, 'every dashboard view is security_invoker');
select is_empty($$
  select relname from pg_class
   where relnamespace = 'dashboard'::regnamespace and relkind = 'v' and obj_description(oid, 'pg_class') is null
$$, 'every dashboard view is commented');
select ok(not has_schema_privilege('anon', 'dashboard', 'usage'), 'anon has no usage on schema dashboard');
select ok(has_schema_privilege('authenticated', 'dashboard', 'usage'), 'authenticated may use the schema (rows: RLS)');
select is_empty($$
  select c.relname from pg_class as c
   where c.relnamespace = 'dashboard'::regnamespace
     and (has_table_privilege('anon', c.oid, 'select') or has_table_privilege('service_role', c.oid, 'select')
          or has_table_privilege('authenticated', c.oid, 'insert, update, delete'))
$$, 'no view is readable by anon or service_role, or writable by anyone but its owner');

-- ---- the operator sees every tenant ----------------------------------------------------------
select is((select count(*)::int from dashboard.sms_today where tenant_id in
  ('da000000-0000-4000-8000-00000000000a', 'da000000-0000-4000-8000-00000000000b')), 5, 'postgres: both tenants'' SMS today');
select is((select count(*)::int from dashboard.errors_last_24h where target like 'dashboard:%'), 3, 'postgres: every error, platform included');
select is((select customers_changed from dashboard.billing_sync_runs where run_id = '2d0c1a4e-0000-4000-8000-000000000001'),
  2::numeric, 'postgres: billing drift per run, from the audit row''s details');
select is((select subscriptions_missing + invoices_created from dashboard.billing_sync_runs where run_id = '2d0c1a4e-0000-4000-8000-000000000001'),
  5::numeric, '… each table''s counts');
insert into public.billing_events (stripe_event_id, type, created, livemode, payload, received_at, processed_at, error, outcome) values
  ('evt_DashboardFailed1', 'invoice.dashboard_test', now(), false, '{}', now(), null, 'boom', 'failed'),
  ('evt_DashboardFailed2', 'invoice.dashboard_test', now(), false, '{}', now(), null, 'boom', null),
  ('evt_DashboardApplied', 'invoice.dashboard_test', now(), false, '{}', now(), now(), null, 'applied');
select is((select array_agg(result || ':' || events order by result) from dashboard.webhook_events where type = 'invoice.dashboard_test'),
  array['applied:1', 'failed:2'], 'postgres: webhook events by type and result (the outcome, else derived)');
select lives_ok('select * from dashboard.cron_runs', 'postgres reads cron_runs');
select lives_ok('select * from dashboard.open_alerts', 'postgres reads open_alerts');
select lives_ok('select * from dashboard.status_history', 'postgres reads status_history');
select lives_ok('select * from dashboard.database_size_history', 'postgres reads database_size_history');
select lives_ok('select * from dashboard.sms_delivery_daily', 'postgres reads sms_delivery_daily');

-- ---- tenant A's admin: A only --------------------------------------------------------------------
select tests.authenticate_as('da000000-0000-4000-8000-0000000000a1');
select is((select array_agg(distinct tenant_id) from dashboard.sms_today), array['da000000-0000-4000-8000-00000000000a'::uuid],
  'admin A: today''s SMS of tenant A only');
select is((select count(*)::int from dashboard.sms_today), 3, 'admin A: its 3 SMS');
select is((select tenant_name from dashboard.sms_today limit 1), 'Dashboard A', 'admin A: with the tenant''s name');
select is((select outbound::int from dashboard.sms_delivery_daily
           where day = (now() at time zone 'America/Montreal')::date), 3, 'admin A: today''s delivery counts are A''s only');
select is((select delivery_rate from dashboard.sms_delivery_daily
           where day = (now() at time zone 'America/Montreal')::date), 0.6667, 'admin A: its delivery rate (2/3)');
select is((select array_agg(target) from dashboard.errors_last_24h), array['dashboard:a'], 'admin A: its error only (not B''s, not the platform''s)');
select is((select array_agg(phone) from dashboard.consent_changes), array['+15145550161'], 'admin A: its consent change only');
select is((select worker_name from dashboard.consent_changes), 'Worker A', 'admin A: with the worker''s name');
select is((select count(*)::int from dashboard.billing_sync_runs), 0, 'admin A: no platform billing run');
select throws_ok('select * from dashboard.webhook_events', '42501', null, 'admin A: webhook_events is not granted');
select throws_ok('select * from dashboard.cron_runs', '42501', null, 'admin A: cron_runs is not granted');
select throws_ok('select * from dashboard.open_alerts', '42501', null, 'admin A: open_alerts is not granted');
select throws_ok('select * from dashboard.status_history', '42501', null, 'admin A: status_history is not granted');
select throws_ok('select * from dashboard.database_size_history', '42501', null, 'admin A: database_size_history is not granted');

-- ---- tenant B's admin: B only --------------------------------------------------------------------
select tests.authenticate_as('da000000-0000-4000-8000-0000000000b1');
select is((select array_agg(distinct tenant_id) from dashboard.sms_today), array['da000000-0000-4000-8000-00000000000b'::uuid],
  'admin B: today''s SMS of tenant B only');
select is((select error_rate from dashboard.sms_delivery_daily
           where day = (now() at time zone 'America/Montreal')::date), 0.5, 'admin B: its error rate (1/2)');
select is((select array_agg(target) from dashboard.errors_last_24h), array['dashboard:b'], 'admin B: its error only');
select is((select array_agg(phone) from dashboard.consent_changes), array['+15145550162'], 'admin B: its consent change only');

-- ---- a plain member of A: nothing -----------------------------------------------------------------
select tests.authenticate_as('da000000-0000-4000-8000-0000000000a2');
select is((select count(*)::int from dashboard.sms_today), 0, 'member: no SMS');
select is((select count(*)::int from dashboard.sms_delivery_daily), 0, 'member: no delivery stats');
select is((select count(*)::int from dashboard.errors_last_24h), 0, 'member: no errors');
select is((select count(*)::int from dashboard.consent_changes), 0, 'member: no consent changes');
select is((select count(*)::int from dashboard.billing_sync_runs), 0, 'member: no billing runs');

-- ---- anon and service_role ------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok('select * from dashboard.sms_today', '42501', null, 'anon: permission denied (no usage on the schema)');
select tests.authenticate_as_service_role();
select throws_ok('select * from dashboard.sms_today', '42501', null, 'service_role: not granted (operators use postgres)');
select tests.clear_authentication();

-- ---- the sms_today window is Montreal's day ---------------------------------------------------------
insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status, created_at)
values ('da000000-0000-4000-8000-00000000000a', 'outbound', '+15145550199', '+15145550161', 'yesterday',
        'delivered', date_trunc('day', now() at time zone 'America/Montreal') at time zone 'America/Montreal' - interval '1 second');
select is((select count(*)::int from dashboard.sms_today where tenant_id = 'da000000-0000-4000-8000-00000000000a'), 3,
  'a message one second before midnight in Montreal is not today''s');
select is((select count(*)::int from dashboard.sms_delivery_daily where day = (now() at time zone 'America/Montreal')::date - 1
           and outbound >= 1), 1, '… it counts for yesterday');

select * from finish();
rollback;
