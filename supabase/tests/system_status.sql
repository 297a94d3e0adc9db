-- private.system_status(p): each check's verdict at and around its threshold, the overall verdict,
-- who gets the full answer, the live-mode cross-check of the Stripe key, and the history rows.
-- The test owns the facts: inside this transaction the SMS, Stripe events and pg_cron runs of the
-- database are deleted first (rolled back at the end), so every count below is this file's.
begin;
select plan(68);

delete from public.sms_alerts;
delete from public.billing_events;
delete from cron.job_run_details;

-- The 17 settings of the operations guide, ok, plus two others (one optional, one required).
create function pg_temp.settings(overrides jsonb default '{}') returns jsonb language sql as $$
  select jsonb_agg(coalesce(overrides -> n.name, jsonb_build_object('name', n.name, 'status', 'ok', 'optional', n.optional, 'seed', n.seed))
                   order by n.ord)
    from (values
      (1, 'APP_URL', true, false), (2, 'SUPABASE_URL', true, false), (3, 'SUPABASE_PUBLISHABLE_KEYS', true, false),
      (4, 'SUPABASE_SECRET_KEYS', true, false), (5, 'STRIPE_SECRET_KEY', true, false), (6, 'STRIPE_WEBHOOK_SECRET', true, false),
      (7, 'STRIPE_PRICE_MONTHLY', true, false), (8, 'STRIPE_PRICE_ANNUAL', true, false),
      (9, 'STRIPE_PRICE_ADDON_SITE_MONTHLY', true, false), (10, 'STRIPE_PRICE_ADDON_SITE_ANNUAL', true, false),
      (11, 'STRIPE_ACCOUNT_COUNTRY', true, false), (12, 'TWILIO_ACCOUNT_SID', true, false), (13, 'TWILIO_AUTH_TOKEN', true, false),
      (14, 'TWILIO_MESSAGING_SERVICE_SID', true, false), (15, 'TWILIO_PHONE_NUMBER', true, false), (16, 'OWNER_MOBILE', true, false),
      (17, 'PUBLIC_CONTACT_NUMBER', true, false), (18, 'CRON_SECRET', false, true), (19, 'SUPABASE_DB_URL', false, false)
    ) as n (ord, name, seed, optional)
$$;
create function pg_temp.status(settings jsonb default pg_temp.settings(), quota_mb numeric default 100000,
                               caller jsonb default '{"kind": "service"}', record boolean default false)
returns jsonb language sql as $$
  select private.system_status(jsonb_build_object('caller', caller, 'settings', settings,
                                                  'db_size_quota_mb', quota_mb, 'record', record))
$$;
create function pg_temp.check_of(name text, p jsonb default null) returns text language sql as $$
  select coalesce(p, pg_temp.status()) #>> array['checks', name, 'status']
$$;
create function pg_temp.sms(status text, n integer, age interval default '1 hour') returns void language sql as $$
  insert into public.sms_alerts (direction, from_number, to_number, body, status, created_at)
  select 'outbound', '+15145550199', '+15145550150', 'system_status test', status, now() - age
    from generate_series(1, n)
$$;
create function pg_temp.events(n integer, failed integer default 0, age interval default '1 hour', live boolean default false)
returns void language sql as $$
  insert into public.billing_events (stripe_event_id, type, created, livemode, payload, received_at, processed_at, error)
  select 'evt_StatusTest' || replace(gen_random_uuid()::text, '-', ''), 'invoice.paid', now() - age, live,
         '{"object": "event"}', now() - age,
         case when i <= failed then null else now() - age end,
         case when i <= failed then 'test failure' end
    from generate_series(1, n) as i
$$;
create function pg_temp.sync_row(status text, age interval) returns void language sql as $$
  insert into public.system_audit_logs (created_at, area, action, actor, details)
  values (now() - age, 'billing', 'billing_sync', 'system_status test',
          jsonb_build_object('run_id', gen_random_uuid(), 'status', status, 'api_calls', 3,
                             'drift', jsonb_build_object('customers', jsonb_build_object('created', 0, 'changed', 0, 'missing', 0))))
$$;

-- ---- nothing to judge yet: everything ok or unknown -------------------------------------------
select is(pg_temp.status() ->> 'overall', 'ok', 'all settings ok, no SMS, no event, no sync yet: overall ok');
select is(pg_temp.check_of('sms'), 'unknown', 'no SMS in 24 h: sms unknown (does not degrade)');
select is(pg_temp.check_of('stripe_webhooks'), 'unknown', 'no Stripe event in 24 h: stripe_webhooks unknown');
select is(pg_temp.check_of('billing_sync'), 'unknown', 'no billing sync ever: billing_sync unknown');
select is(pg_temp.check_of('cron'), 'ok', 'no failed cron run: cron ok');
select is(pg_temp.check_of('database_size'), 'ok', 'far under the quota: database_size ok');
select is(pg_temp.status() #>> '{checks,database,reachable}', 'true', 'database reachable');
select is(pg_temp.status() #>> '{checks,database,last_migration,version}',
  (select max(version) from supabase_migrations.schema_migrations), 'the last applied migration is reported');
select is((pg_temp.status() #>> '{checks,settings,seed_ok}')::int, 17, '17/17 settings of the guide ok');

-- ---- settings ---------------------------------------------------------------------------------
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"OWNER_MOBILE": {"name": "OWNER_MOBILE", "status": "missing", "reason": "is not set", "optional": false, "seed": true}}'))),
  'fail', 'one of the 17 missing: settings fail');
select is(pg_temp.status(pg_temp.settings(
  '{"OWNER_MOBILE": {"name": "OWNER_MOBILE", "status": "missing", "reason": "is not set", "optional": false, "seed": true}}')) ->> 'overall',
  'degraded', '… and the overall status is degraded');
select is(pg_temp.status(pg_temp.settings(
  '{"OWNER_MOBILE": {"name": "OWNER_MOBILE", "status": "missing", "reason": "is not set", "optional": false, "seed": true}}'))
  #> '{checks,settings,problems}', '[{"name": "OWNER_MOBILE", "status": "missing"}]', 'the problem is named, with its status');
select is((pg_temp.status(pg_temp.settings(
  '{"OWNER_MOBILE": {"name": "OWNER_MOBILE", "status": "missing", "reason": "is not set", "optional": false, "seed": true}}'))
  #>> '{checks,settings,seed_ok}')::int, 16, '16/17');
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"CRON_SECRET": {"name": "CRON_SECRET", "status": "missing", "reason": "is not set", "optional": true, "seed": false}}'))),
  'ok', 'an optional setting outside the 17, missing: ok');
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"CRON_SECRET": {"name": "CRON_SECRET", "status": "malformed", "reason": "must be at least 32 characters", "optional": true, "seed": false}}'))),
  'fail', 'an optional setting, malformed: fail');
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"SUPABASE_DB_URL": {"name": "SUPABASE_DB_URL", "status": "missing", "reason": "is not set", "optional": false, "seed": false}}'))),
  'fail', 'a required setting outside the 17, missing: fail');
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"TWILIO_AUTH_TOKEN": {"name": "TWILIO_AUTH_TOKEN", "status": "malformed", "reason": "must be 32 lower-case hexadecimal digits", "optional": false, "seed": true}}'))),
  'fail', 'one of the 17 malformed: fail');

-- Test key in a live project: live-mode events in the last 30 days make a test-mode key malformed.
select is(pg_temp.status(pg_temp.settings(
  '{"STRIPE_SECRET_KEY": {"name": "STRIPE_SECRET_KEY", "status": "ok", "optional": false, "seed": true, "facts": {"stripeMode": "test"}}}'))
  #>> '{settings,4,status}', 'ok', 'a test-mode key with no live-mode event: ok');
select pg_temp.events(1, 0, '20 days', true);
select is(pg_temp.status(pg_temp.settings(
  '{"STRIPE_SECRET_KEY": {"name": "STRIPE_SECRET_KEY", "status": "ok", "optional": false, "seed": true, "facts": {"stripeMode": "test"}}}'))
  #>> '{settings,4,status}', 'malformed', 'a test-mode key while live-mode events arrive: malformed');
select matches(pg_temp.status(pg_temp.settings(
  '{"STRIPE_SECRET_KEY": {"name": "STRIPE_SECRET_KEY", "status": "ok", "optional": false, "seed": true, "facts": {"stripeMode": "test"}}}'))
  #>> '{settings,4,reason}', 'test-mode key .* live-mode Stripe events', '… with the reason');
select is(pg_temp.check_of('settings', pg_temp.status(pg_temp.settings(
  '{"STRIPE_SECRET_KEY": {"name": "STRIPE_SECRET_KEY", "status": "ok", "optional": false, "seed": true, "facts": {"stripeMode": "test"}}}'))),
  'fail', '… and the settings check fails');
select is(pg_temp.status(pg_temp.settings(
  '{"STRIPE_SECRET_KEY": {"name": "STRIPE_SECRET_KEY", "status": "ok", "optional": false, "seed": true, "facts": {"stripeMode": "live"}}}'))
  #>> '{settings,4,status}', 'ok', 'a live-mode key with live-mode events: ok');
delete from public.billing_events;

-- ---- SMS: delivery > 95 %, errors ≤ 5 % ------------------------------------------------------
select pg_temp.sms('delivered', 19);
select pg_temp.sms('failed', 1);
select is(pg_temp.check_of('sms'), 'fail', '19 delivered, 1 failed: delivery rate 95 % is not above 95 %: fail');
select is((pg_temp.status() #>> '{checks,sms,delivery_rate}')::numeric, 0.95, 'delivery rate 0.95');
select is((pg_temp.status() #>> '{checks,sms,error_rate}')::numeric, 0.05, 'error rate 0.05');
select pg_temp.sms('read', 20);
select is(pg_temp.check_of('sms'), 'ok', '39 delivered or read, 1 failed: 97.5 % delivered, 2.5 % errors: ok');
select pg_temp.sms('undelivered', 2);
select is(pg_temp.check_of('sms'), 'fail', 'then 2 undelivered: 3 errors of 42 (7.1 %): fail');
select is((pg_temp.status() #>> '{checks,sms,error_rate}')::numeric, 0.0714, 'undelivered counts as an error: 3/42');
delete from public.sms_alerts;
select pg_temp.sms('delivered', 10);
select pg_temp.sms('sent', 9);
select pg_temp.sms('failed', 1);
select is((pg_temp.status() #>> '{checks,sms,pending}')::int, 9, 'sent (no delivery report yet) is pending');
select is((pg_temp.status() #>> '{checks,sms,delivery_rate}')::numeric, 0.9091, 'delivery rate over decided messages only: 10/11');
select is(pg_temp.check_of('sms'), 'fail', '… 90.9 % delivered: fail even though errors are 5 %');
select pg_temp.sms('failed', 5, '25 hours');
select pg_temp.sms('canceled', 5);
select is((pg_temp.status() #>> '{checks,sms,outbound}')::int, 20, 'older than 24 h and canceled messages are not counted');
delete from public.sms_alerts;

-- ---- Stripe webhooks: failures < 1 % -----------------------------------------------------------
select pg_temp.events(199, 1);
select is(pg_temp.check_of('stripe_webhooks'), 'ok', '1 failed of 199: 0.5 %: ok');
select pg_temp.events(1, 1);
select is(pg_temp.check_of('stripe_webhooks'), 'fail', '2 failed of 200: 1 %: fail');
select is((pg_temp.status() #>> '{checks,stripe_webhooks,failure_rate}')::numeric, 0.01, 'failure rate 0.01');
delete from public.billing_events;
select pg_temp.events(50);
insert into public.billing_events (stripe_event_id, type, created, livemode, payload, received_at)
values ('evt_StatusTestPending', 'invoice.paid', now(), false, '{}', now());
select is(pg_temp.check_of('stripe_webhooks'), 'ok', 'an event not processed yet and without error is pending, not failed');
select is((pg_temp.status() #>> '{checks,stripe_webhooks,pending}')::int, 1, 'pending counted');
select pg_temp.events(10, 10, '2 days');
select is((pg_temp.status() #>> '{checks,stripe_webhooks,failed}')::int, 0, 'failures older than 24 h are not counted');
delete from public.billing_events;

-- ---- billing sync: a complete run within 26 h ----------------------------------------------------
select pg_temp.sync_row('incomplete', '2 hours');
select is(pg_temp.check_of('billing_sync'), 'ok', 'first run 2 h ago, incomplete: not overdue yet');
select is(pg_temp.status() #>> '{checks,billing_sync,last_run_status}', 'incomplete', 'last run status reported');
select pg_temp.sync_row('failed', '30 hours');
select is(pg_temp.check_of('billing_sync'), 'fail', 'runs for 30 h, none complete: overdue');
select pg_temp.sync_row('complete', '27 hours');
select is(pg_temp.check_of('billing_sync'), 'fail', 'last complete run 27 h ago: overdue');
select pg_temp.sync_row('complete', '25 hours');
select is(pg_temp.check_of('billing_sync'), 'ok', 'last complete run 25 h ago: ok');
select is((pg_temp.status() #>> '{checks,billing_sync,hours_since_complete}')::numeric, 25.0, 'hours since the last complete run');
select is(pg_temp.status() ->> 'overall', 'ok', 'overall ok again');

-- ---- database size: > 80 % of the quota ---------------------------------------------------------
select is(pg_temp.check_of('database_size', pg_temp.status(quota_mb => 1)), 'fail', 'over a 1 MB quota: fail');
select ok((pg_temp.status() #>> '{checks,database_size,bytes}')::bigint
          = (select sum(pg_database_size(datname)) from pg_database), 'size = all databases of the cluster');
select is(pg_temp.check_of('database_size',
  pg_temp.status(quota_mb => round((select sum(pg_database_size(datname)) from pg_database) / 0.79 / 1048576, 3))),
  'ok', 'at 79 % of the quota: ok');
select is(pg_temp.check_of('database_size',
  pg_temp.status(quota_mb => round((select sum(pg_database_size(datname)) from pg_database) / 0.81 / 1048576, 3))),
  'fail', 'at 81 % of the quota: fail');

-- ---- pg_cron: an active job whose last run failed -----------------------------------------------
select cron.schedule('status-test-job', '0 0 31 2 *', 'select 1');
insert into cron.job_run_details (jobid, runid, status, return_message, start_time, end_time)
select jobid, 9000000000001, 'failed', 'boom', now() - interval '2 minutes', now() - interval '2 minutes'
  from cron.job where jobname = 'status-test-job';
select is(pg_temp.check_of('cron'), 'fail', 'the last run failed: cron fail');
select is(pg_temp.status() #> '{checks,cron,failed_jobs}', '["status-test-job"]', 'the job is named');
select ok(pg_temp.status() #> '{checks,cron,jobs}' @> '[{"name": "status-test-job", "last_run": {"status": "failed"}}]',
  'each job with its last run');
insert into cron.job_run_details (jobid, runid, status, start_time, end_time)
select jobid, 9000000000002, 'succeeded', now() - interval '1 minute', now() - interval '1 minute'
  from cron.job where jobname = 'status-test-job';
select is(pg_temp.check_of('cron'), 'ok', 'a later run succeeded: ok');
insert into cron.job_run_details (jobid, runid, status, start_time, end_time)
select jobid, 9000000000003, 'failed', now(), now() from cron.job where jobname = 'status-test-job';
select cron.alter_job((select jobid from cron.job where jobname = 'status-test-job'), active => false);
select is(pg_temp.check_of('cron'), 'ok', 'an inactive job''s failure does not degrade');
select cron.unschedule('status-test-job');

-- ---- who gets the full answer --------------------------------------------------------------------
select tests.create_tenant('status tenant', id => '5d000000-0000-4000-8000-000000000001');
select tests.create_member('5d000000-0000-4000-8000-000000000001', 'admin', 'admin@status.example.com', id => '5d000000-0000-4000-8000-0000000000a1');
select tests.create_member('5d000000-0000-4000-8000-000000000001', 'member', 'member@status.example.com', id => '5d000000-0000-4000-8000-0000000000b1');
select is(pg_temp.status(caller => '{"kind": "user", "user_id": "5d000000-0000-4000-8000-0000000000a1"}') ->> 'caller',
  'admin', 'a tenant admin gets the full answer');
select is(pg_temp.status(caller => '{"kind": "user", "user_id": "5d000000-0000-4000-8000-0000000000b1"}'),
  '{"authorized": false, "overall": "ok"}', 'a plain member gets the overall status only');
select is(pg_temp.status(caller => '{"kind": "user", "user_id": "5d000000-0000-4000-8000-0000000000c1"}') -> 'authorized',
  'false', 'a user of no tenant: overall only');
select is(pg_temp.status(caller => '{"kind": "user", "user_id": "not-a-uuid"}') -> 'authorized',
  'false', 'a sub that is not a UUID: overall only, no error');
select is(pg_temp.status(caller => '{"kind": "nobody"}'), '{"authorized": false, "overall": "ok"}', 'nobody: overall only');

-- ---- history -------------------------------------------------------------------------------------
insert into private.system_status_history (checked_at, overall, caller, checks)
values (now() - interval '31 days', 'ok', 'service', '{}');
select pg_temp.status(record => true);
select is((select count(*)::int from private.system_status_history where checked_at = now()), 1, 'an authorised evaluation is recorded');
select is((select count(*)::int from private.system_status_history where checked_at < now() - interval '30 days'), 0,
  'rows older than 30 days are deleted');
select is((select checks #>> '{sms,status}' from private.system_status_history where checked_at = now()), 'unknown',
  'the row holds each check''s status');
select is((select caller from private.system_status_history where checked_at = now()), 'service', '… and who asked');
select pg_temp.status(caller => '{"kind": "nobody"}', record => true);
select pg_temp.status(record => false);
select is((select count(*)::int from private.system_status_history where checked_at = now()), 1,
  'nobody''s call and a call with record false are not recorded');

-- ---- input and privileges ------------------------------------------------------------------------
select throws_ok($$ select private.system_status('{"settings": {}, "db_size_quota_mb": 1}') $$, '22023', null,
  'settings must be an array');
select throws_ok($$ select private.system_status('{"settings": [], "db_size_quota_mb": 0}') $$, '22023', null,
  'the quota must be positive');
select ok(not has_function_privilege('anon', 'private.system_status(jsonb)', 'execute')
          and not has_function_privilege('authenticated', 'private.system_status(jsonb)', 'execute')
          and not has_function_privilege('service_role', 'private.system_status(jsonb)', 'execute'),
  'no API role may call private.system_status');
select ok(not has_table_privilege('authenticated', 'private.system_status_history', 'select')
          and not has_table_privilege('service_role', 'private.system_status_history', 'select'),
  'no API role reads the history');

select * from finish();
rollback;
