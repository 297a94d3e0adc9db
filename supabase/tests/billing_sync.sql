-- billing-sync's SQL (20261128050000-050400): the daily 04:00 America/Montreal schedule (DST-proof,
-- at most once a local day, through pg_net with the service key from Vault) and its continuation
-- job; the run lifecycle (claim under a lease, resume, take-over, restart, tenant cooldown); a page
-- applied through the webhook's SQL with its checkpoint; the missing-row check (stamped, never
-- deleted); the drift report's contract in system_audit_logs; closed to the API roles.
begin;
select plan(90);

-- Vault secrets as an operator creates them (rolled back with the test).
select vault.create_secret('https://ref.example.test/functions/v1/', 'functions_url');
select vault.create_secret('sb_secret_pgtapBillingSync0000000000', 'service_secret_key');

-- No open run from elsewhere: this file's runs are the only ones.
update private.billing_sync_runs set status = 'abandoned', finished_at = now(), lease_id = null, lease_until = null
 where status in ('pending', 'running', 'incomplete');

-- ---------------------------------------------------------------------------------------------
-- Jobs
-- ---------------------------------------------------------------------------------------------
select is(
  (select string_agg(format('%s | %s | %s | %s | %s', jobname, schedule, command, username, active), E'\n' order by jobname)
     from cron.job where jobname like 'billing-sync%'),
  'billing-sync-0800-utc | 0 8 * * * | select private.run_daily_billing_sync() | postgres | t' || E'\n' ||
  'billing-sync-0900-utc | 0 9 * * * | select private.run_daily_billing_sync() | postgres | t' || E'\n' ||
  'billing-sync-continue | */10 * * * * | select private.continue_billing_sync() | postgres | t',
  'daily jobs at 08:00 and 09:00 UTC and a continuation job every 10 minutes, as postgres');
create temporary table jobs_before as select jobid, jobname from cron.job where jobname like 'billing-sync%';
select cron.schedule('billing-sync-0800-utc', '0 8 * * *', 'select private.run_daily_billing_sync()');
select cron.schedule('billing-sync-0900-utc', '0 9 * * *', 'select private.run_daily_billing_sync()');
select cron.schedule('billing-sync-continue', '*/10 * * * *', 'select private.continue_billing_sync()');
select set_eq($$ select jobid, jobname from cron.job where jobname like 'billing-sync%' $$, $$ select jobid, jobname from jobs_before $$,
  're-scheduling by name keeps the same three jobs');

-- ---------------------------------------------------------------------------------------------
-- The daily wrapper: 04:00 local only, summer and winter, DST switch days, once a local day
-- ---------------------------------------------------------------------------------------------
create temporary table outcome (label text primary key, result jsonb);
create function pg_temp.queued() returns bigint language sql as $$ select count(*) from net.http_request_queue $$;
create temporary table queue_before as select pg_temp.queued() as n;

-- Summer (EDT, UTC-4): 08:00 UTC is 04:00, 09:00 UTC is 05:00.
insert into outcome values ('summer 09:00', private.run_daily_billing_sync('2026-07-15 09:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'summer 09:00'), 'false', 'summer 09:00 UTC (05:00 EDT): nothing');
select is((select result ->> 'reason' from outcome where label = 'summer 09:00'), 'not 04:00 in America/Montreal', 'and says why');
insert into outcome values ('summer 08:00', private.run_daily_billing_sync('2026-07-15 08:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'summer 08:00'), 'true', 'summer 08:00 UTC (04:00 EDT): runs');
select is((select result ->> 'local_time' from outcome where label = 'summer 08:00'), '2026-07-15T04:00:00', 'it sees 04:00 local time');
select row_eq(
  $$ select scope, trigger, requested_by, local_date, status, phase, requested_at
       from private.billing_sync_runs where id = (select (result ->> 'run_id')::uuid from outcome where label = 'summer 08:00') $$,
  row('full'::text, 'cron'::text, 'pg_cron'::text, date '2026-07-15', 'pending'::text, 'events'::text, timestamptz '2026-07-15 08:00:00+00'),
  'a pending full run for that local day, asked for at p_now');
select is(pg_temp.queued(), (select n from queue_before) + 1, 'one pg_net request queued');
select row_eq(
  $$ select method::text, url, headers ->> 'apikey', headers ->> 'Authorization', headers ->> 'Content-Type',
            convert_from(body, 'UTF8')::jsonb, timeout_milliseconds
       from net.http_request_queue order by id desc limit 1 $$,
  row('POST'::text, 'https://ref.example.test/functions/v1/billing-sync'::text, 'sb_secret_pgtapBillingSync0000000000'::text,
      'Bearer sb_secret_pgtapBillingSync0000000000'::text, 'application/json'::text,
      jsonb_build_object('run_id', (select result ->> 'run_id' from outcome where label = 'summer 08:00'), 'trigger', 'cron'),
      150000),
  'POST to functions_url/billing-sync with the Vault key (apikey and Bearer), the run id, 150 s timeout');
select row_eq(
  $$ select actor, target, details ->> 'local_date', details ->> 'run_id', details ->> 'resumed', details ? 'error'
       from public.system_audit_logs where area = 'billing' and action = 'billing_sync_scheduled' order by id desc limit 1 $$,
  row('pg_cron'::text, 'billing_sync_runs:' || (select result ->> 'run_id' from outcome where label = 'summer 08:00'),
      '2026-07-15'::text, (select result ->> 'run_id' from outcome where label = 'summer 08:00'), 'false'::text, false),
  'the day is recorded (billing_sync_scheduled, local_date, run_id), no error');
insert into outcome values ('summer again', private.run_daily_billing_sync('2026-07-15 08:00:30+00'));
select is((select result ->> 'reason' from outcome where label = 'summer again'), 'already ran today', 'second call the same local day: nothing');
select is(pg_temp.queued(), (select n from queue_before) + 1, 'and no second request');

-- Winter (EST, UTC-5): 08:00 UTC is 03:00, 09:00 UTC is 04:00. (The summer run is still open: resumed.)
insert into outcome values ('winter 08:00', private.run_daily_billing_sync('2026-01-14 08:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'winter 08:00'), 'false', 'winter 08:00 UTC (03:00 EST): nothing');
insert into outcome values ('winter 09:00', private.run_daily_billing_sync('2026-01-14 09:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'winter 09:00'), 'true', 'winter 09:00 UTC (04:00 EST): runs');
select is((select result ->> 'resumed' from outcome where label = 'winter 09:00'), 'true', 'an open full run is resumed, not doubled');
select is((select result ->> 'run_id' from outcome where label = 'winter 09:00'),
          (select result ->> 'run_id' from outcome where label = 'summer 08:00'), 'the same run');
select is((select count(*)::int from private.billing_sync_runs where scope = 'full' and status in ('pending', 'running', 'incomplete')), 1,
  'one open full run');

-- DST switch days: 2026-03-08 (02:00 EST → 03:00 EDT at 07:00 UTC), 2026-11-01 (02:00 EDT → 01:00 EST at 06:00 UTC).
select is(private.run_daily_billing_sync('2026-03-08 08:00:00+00') ->> 'ran', 'true', 'spring-forward day: 08:00 UTC is 04:00 EDT, runs');
select is(private.run_daily_billing_sync('2026-03-08 09:00:00+00') ->> 'reason', 'not 04:00 in America/Montreal', 'spring-forward day: 09:00 UTC is 05:00 EDT');
select is(private.run_daily_billing_sync('2026-11-01 08:00:00+00') ->> 'reason', 'not 04:00 in America/Montreal', 'fall-back day: 08:00 UTC is 03:00 EST');
select is(private.run_daily_billing_sync('2026-11-01 09:00:00+00') ->> 'ran', 'true', 'fall-back day: 09:00 UTC is 04:00 EST, runs');
select is(private.run_daily_billing_sync('2026-11-03 09:59:00+00') ->> 'ran', 'true', 'every day (a Tuesday), any minute of the 04:00 hour');

-- An invocation working on the open run right now: nothing to ask.
update private.billing_sync_runs set status = 'running', lease_id = gen_random_uuid(), lease_until = now() + interval '5 minutes'
 where scope = 'full' and status = 'pending';
insert into outcome values ('busy', private.run_daily_billing_sync('2026-11-04 09:00:00+00'));
select ok((select result ->> 'ran' = 'true' and not result ? 'request_id' from outcome where label = 'busy'),
  'a run held by an invocation: the day is recorded, no request');
select is((select details ->> 'busy' from public.system_audit_logs where action = 'billing_sync_scheduled' order by id desc limit 1), 'true',
  'and the record says it was busy');
update private.billing_sync_runs set status = 'abandoned', finished_at = now(), lease_id = null, lease_until = null
 where scope = 'full' and status = 'running';

-- Vault secrets missing: recorded with details.error, nothing queued, the pending run waits.
delete from vault.secrets where name = 'service_secret_key';
create temporary table queue_mid as select pg_temp.queued() as n;
insert into outcome values ('no key', private.run_daily_billing_sync('2026-11-05 09:00:00+00'));
select alike((select result ->> 'error' from outcome where label = 'no key'), '%service_secret_key missing%', 'a missing Vault secret is named');
select is((select details ->> 'error' from public.system_audit_logs where action = 'billing_sync_scheduled' order by id desc limit 1),
          (select result ->> 'error' from outcome where label = 'no key'), 'in the day''s record as details.error (the guide''s error query)');
select is(pg_temp.queued(), (select n from queue_mid), 'nothing queued');
select is((select status from private.billing_sync_runs where id = (select (result ->> 'run_id')::uuid from outcome where label = 'no key')), 'pending',
  'the run stays pending for the continuation job');
select alike(private.continue_billing_sync(now() + interval '1 hour') ->> 'error', '%service_secret_key missing%',
  'the continuation job says so in its answer (cron.job_run_details), without failing every 10 minutes');
select vault.create_secret('sb_secret_pgtapBillingSync0000000000', 'service_secret_key');

-- ---------------------------------------------------------------------------------------------
-- The continuation job: the schedule's open run, when nothing works on it and not asked lately
-- ---------------------------------------------------------------------------------------------
create temporary table cron_run as
  select (result ->> 'run_id')::uuid as id from outcome where label = 'no key';
update private.billing_sync_runs set requested_at = now() - interval '5 minutes' where id = (select id from cron_run);
select is(private.continue_billing_sync(now()) ->> 'reason', 'asked less than 10 minutes ago', 'asked 5 minutes ago: wait');
update private.billing_sync_runs set requested_at = now() - interval '11 minutes', status = 'incomplete' where id = (select id from cron_run);
create temporary table queue_cont as select pg_temp.queued() as n;
select is(private.continue_billing_sync(now()) ->> 'ran', 'true', 'incomplete and asked 11 minutes ago: asked again');
select is(pg_temp.queued(), (select n from queue_cont) + 1, 'one request queued');
select is((select requested_at from private.billing_sync_runs where id = (select id from cron_run)), now(), 'requested_at moves on');
update private.billing_sync_runs set requested_at = now() - interval '11 minutes', status = 'running', lease_id = gen_random_uuid(),
       lease_until = now() + interval '1 minute' where id = (select id from cron_run);
select is(private.continue_billing_sync(now()) ->> 'ran', 'false', 'an invocation holds it: nothing');
select is(private.continue_billing_sync(now() + interval '2 minutes') ->> 'ran', 'true', 'its lease expired (the invocation died): asked again');
update private.billing_sync_runs set requested_at = null, status = 'incomplete', lease_id = null, lease_until = null, invocations = 100
 where id = (select id from cron_run);
select alike(private.continue_billing_sync(now()) ->> 'reason', 'run has had 100 invocations%', 'at most 100 invocations per run');
-- A run that did not finish within a day is abandoned: the next 04:00 starts afresh.
update private.billing_sync_runs set invocations = 3, started_at = now() - interval '25 hours' where id = (select id from cron_run);
select is(private.continue_billing_sync(now()) ->> 'reason', 'run older than a day abandoned', 'an open run older than a day is abandoned');
select row_eq($$ select status, stop_reason, finished_at is not null from private.billing_sync_runs where id = (select id from cron_run) $$,
  row('abandoned'::text, 'abandoned'::text, true), 'marked abandoned');
select row_eq($$ select details ->> 'status', details ->> 'stop_reason', details ? 'error' from public.system_audit_logs
                  where target = 'billing_sync_runs:' || (select id from cron_run) order by id desc limit 1 $$,
  row('incomplete'::text, 'abandoned'::text, false), 'and reported incomplete (abandoned), never complete');
insert into private.billing_sync_runs (scope, trigger, requested_by, livemode, status, phase, started_at)
values ('full', 'service', 'service:default', false, 'incomplete', 'invoices', now() - interval '2 days');
-- 04:00 in Montreal, tomorrow (the run is two days old then).
insert into outcome values ('stale open run', private.run_daily_billing_sync(
  ((now() at time zone 'America/Montreal')::date + 1 + time '04:00') at time zone 'America/Montreal'));
select ok((select result ->> 'ran' = 'true' and result ->> 'resumed' = 'false' from outcome where label = 'stale open run')
          and (select count(*) = 1 from private.billing_sync_runs where status = 'abandoned' and stop_reason = 'abandoned' and phase = 'invoices'),
  'the 04:00 schedule abandons an open run older than a day and starts a new one');
update private.billing_sync_runs set status = 'abandoned', finished_at = now(), lease_id = null, lease_until = null
 where status in ('pending', 'running', 'incomplete');
-- A run an operator started is theirs to continue.
insert into private.billing_sync_runs (scope, trigger, requested_by, livemode, status, phase)
values ('full', 'service', 'service:default', false, 'incomplete', 'customers');
select is(private.continue_billing_sync(now()) ->> 'reason', 'no run of the schedule to continue', 'a service run is not continued by the schedule');
update private.billing_sync_runs set status = 'abandoned', finished_at = now() where status = 'incomplete';

-- ---------------------------------------------------------------------------------------------
-- Claim: one invocation at a time, resumed at the checkpoint
-- ---------------------------------------------------------------------------------------------
create temporary table c (label text primary key, r jsonb);
insert into c values ('first', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": false, "lease_seconds": 160}'));
select is((select r ->> 'outcome' from c where label = 'first'), 'started', 'no open run: a new one');
select row_eq($$ select status, phase, invocations, lease_until from private.billing_sync_runs where id = (select (r -> 'run' ->> 'id')::uuid from c where label = 'first') $$,
  row('running'::text, 'events'::text, 1, now() + interval '160 seconds'), 'running, at the events phase, leased for lease_seconds');
select is(private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:other", "livemode": false}') ->> 'outcome', 'busy',
  'a second call while the lease is live: busy');
select throws_ok($$ insert into private.billing_sync_runs (scope, trigger, requested_by, status) values ('full', 'service', 'x', 'pending') $$,
  '23505', null, 'at most one open full run (unique index)');
select throws_ok($$ select private.billing_sync_claim('{"scope": "tenant", "trigger": "admin", "requested_by": "x", "livemode": false}') $$,
  '22023', null, 'a tenant claim without tenant_id is refused');

-- A page of customers through the webhook's SQL, with its checkpoint.
select tests.create_tenant('Billing sync A', id => 'b5000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Billing sync B', id => 'b5000000-0000-4000-8000-00000000000b');
create function pg_temp.run_id() returns uuid language sql as $$ select (r -> 'run' ->> 'id')::uuid from c where label = 'first' $$;
create function pg_temp.lease() returns uuid language sql as $$ select (r -> 'run' ->> 'lease_id')::uuid from c where label = 'first' $$;
create function pg_temp.customer(id text, tenant text, email text) returns jsonb language sql as $$
  select jsonb_build_object('id', id, 'object', 'customer', 'email', email, 'livemode', false, 'created', 1790000000,
                            'metadata', jsonb_build_object('tenant_id', tenant))
$$;
select is(private.billing_sync_apply_page(pg_temp.run_id(), gen_random_uuid(), '{"phase": "events", "objects": [], "done": true}') ->> 'outcome',
  'lease_lost', 'a page under another lease is refused (lease_lost), nothing applied');
select throws_ok($$ select private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), '{"phase": "customers", "objects": [], "done": true}') $$,
  '22023', null, 'a page of another phase than the run''s is refused');
select is(private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), '{"phase": "events", "objects": [], "done": true, "api_calls": 1}') ->> 'phase',
  'customers', 'an empty events list: on to customers');
insert into c values ('page', private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), jsonb_build_object(
  'phase', 'customers', 'seen_at', '2026-11-28T09:00:00Z', 'cursor', 'cus_BsyncB', 'done', false, 'api_calls', 1,
  'objects', jsonb_build_array(pg_temp.customer('cus_BsyncA', 'b5000000-0000-4000-8000-00000000000a', 'a@example.test'),
                               pg_temp.customer('cus_BsyncB', 'b5000000-0000-4000-8000-00000000000b', 'b@example.test'),
                               '{"id": "cus_BsyncX", "object": "customer", "email": "x@example.test", "livemode": false, "metadata": {}}'::jsonb))));
select is((select r -> 'counts' -> 'customers' from c where label = 'page'), '{"seen": 3, "created": 2, "skipped": 1}'::jsonb,
  'two customers created through the webhook''s SQL, tied by their metadata.tenant_id; one naming no tenant skipped');
select row_eq($$ select tenant_id, email, stripe_updated_at from public.customers where stripe_customer_id = 'cus_BsyncA' $$,
  row('b5000000-0000-4000-8000-00000000000a'::uuid, 'a@example.test'::text, timestamptz '2026-11-28 09:00:00+00'),
  'the row, with the page''s seen_at as its watermark');
select row_eq($$ select phase, cursor, pages, api_calls from private.billing_sync_runs where id = pg_temp.run_id() $$,
  row('customers'::text, 'cus_BsyncB'::text, 2, 2), 'the checkpoint: the page''s last id, in the same transaction');
select is((select count(*)::int from private.billing_sync_seen where run_id = pg_temp.run_id()), 3, 'the ids listed are kept for the missing check');

-- The invocation stops (time budget): incomplete, checkpoint kept, audited without error.
select is(private.billing_sync_finish(pg_temp.run_id(), pg_temp.lease(), '{"status": "incomplete", "stop_reason": "time_budget", "api_calls": 0}') -> 'report' ->> 'status',
  'incomplete', 'stopped: incomplete');
select row_eq($$ select status, lease_id, cursor, stop_reason from private.billing_sync_runs where id = pg_temp.run_id() $$,
  row('incomplete'::text, null::uuid, 'cus_BsyncB'::text, 'time_budget'::text), 'lease released, checkpoint kept');
select row_eq($$ select action, actor, details ->> 'status', details ->> 'stop_reason', details ? 'error', details -> 'drift' -> 'customers' ->> 'created'
                   from public.system_audit_logs where target = 'billing_sync_runs:' || pg_temp.run_id() order by id desc limit 1 $$,
  row('billing_sync'::text, 'service:default'::text, 'incomplete'::text, 'time_budget'::text, false, '2'::text),
  'drift report: billing_sync, incomplete with its stop_reason, no error key');

-- Resumed at the checkpoint by the next call.
delete from c where label = 'first';
insert into c values ('first', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": false}'));
select row_eq($$ select r ->> 'outcome', r -> 'run' ->> 'phase', r -> 'run' ->> 'cursor', (r -> 'run' ->> 'invocations')::int from c where label = 'first' $$,
  row('resumed'::text, 'customers'::text, 'cus_BsyncB'::text, 2), 'the next call resumes at the checkpoint');

-- A killed invocation: its lease expires, the next call takes over (and the trail says so).
update private.billing_sync_runs set lease_until = now() - interval '1 second' where id = pg_temp.run_id();
insert into c values ('takeover', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": false}'));
select row_eq($$ select r ->> 'outcome', (r ->> 'took_over')::boolean, r -> 'run' ->> 'id' from c where label = 'takeover' $$,
  row('resumed'::text, true, pg_temp.run_id()::text), 'an expired lease is taken over: the same run resumes');
select is((select details ->> 'stop_reason' from public.system_audit_logs where target = 'billing_sync_runs:' || pg_temp.run_id() order by id desc limit 1),
  'lease_expired', 'the lost invocation is reported incomplete (lease_expired)');
select is(private.billing_sync_finish(pg_temp.run_id(), pg_temp.lease(), '{"status": "complete"}') ->> 'outcome', 'lease_lost',
  'the old invocation can no longer finish the run');
delete from c where label = 'first';
insert into c select 'first', r from c where label = 'takeover';

-- Finishing before the lists are done is a bug, refused.
select throws_ok($$ select private.billing_sync_finish(pg_temp.run_id(), pg_temp.lease(), '{"status": "complete"}') $$,
  '22023', null, 'complete before the lists are done is refused');

-- ---------------------------------------------------------------------------------------------
-- The missing-row check
-- ---------------------------------------------------------------------------------------------
-- Rows that existed before the run (created_at in the past) and are not listed: missing. Rows of
-- live mode (a test key cannot see them), of a deleted customer, or made after the run started: not.
select tests.create_tenant('Billing sync C', id => 'b5000000-0000-4000-8000-00000000000c');
select tests.create_tenant('Billing sync D', id => 'b5000000-0000-4000-8000-00000000000d');
select tests.create_tenant('Billing sync E', id => 'b5000000-0000-4000-8000-00000000000e');
update private.billing_sync_runs set started_at = now() - interval '1 minute' where id = pg_temp.run_id();
insert into public.customers (tenant_id, stripe_customer_id, livemode, created_at, stripe_missing_since) values
  ('b5000000-0000-4000-8000-00000000000c', 'cus_BsyncGone', false, now() - interval '1 day', null),
  ('b5000000-0000-4000-8000-00000000000d', 'cus_BsyncLive', true, now() - interval '1 day', null),
  ('b5000000-0000-4000-8000-00000000000e', 'cus_BsyncDeleted', false, now() - interval '1 day', null);
update public.customers set deleted_at = now() - interval '1 hour' where stripe_customer_id = 'cus_BsyncDeleted';
update public.customers set stripe_missing_since = '2026-01-01' where stripe_customer_id = 'cus_BsyncA';
insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval, stripe_updated_at, created_at)
select 'b5000000-0000-4000-8000-00000000000c', id, 'sub_BsyncGone', 'active', 'month', now() - interval '1 day', now() - interval '1 day'
  from public.customers where stripe_customer_id = 'cus_BsyncGone';
insert into public.invoices (tenant_id, customer_id, stripe_invoice_id, status, total_cents, amount_due_cents, stripe_updated_at, created_at)
select 'b5000000-0000-4000-8000-00000000000c', id, 'in_BsyncGone', 'open', 100, 100, now() - interval '1 day', now() - interval '1 day'
  from public.customers where stripe_customer_id = 'cus_BsyncGone';
create temporary table others_missing as
  select (select count(*) from public.customers c where c.livemode = false and c.deleted_at is null and c.created_at < now() - interval '1 minute'
            and c.stripe_customer_id not in ('cus_BsyncA', 'cus_BsyncB', 'cus_BsyncGone'))::int as customers,
         (select count(*) from public.subscriptions s join public.customers c on c.id = s.customer_id
           where c.livemode = false and s.created_at < now() - interval '1 minute' and s.stripe_subscription_id <> 'sub_BsyncGone')::int as subscriptions,
         (select count(*) from public.invoices i join public.customers c on c.id = i.customer_id
           where c.livemode = false and i.created_at < now() - interval '1 minute' and i.stripe_invoice_id <> 'in_BsyncGone')::int as invoices;
-- The rest of the lists: the customers list is done, subscriptions and invoices empty.
select is(private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), '{"phase": "customers", "objects": [], "done": true}') ->> 'phase',
  'subscriptions', 'customers done');
select is(private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), '{"phase": "subscriptions", "objects": [], "done": true}') ->> 'phase',
  'invoices', 'subscriptions done');
select is(private.billing_sync_apply_page(pg_temp.run_id(), pg_temp.lease(), '{"phase": "invoices", "objects": [], "done": true, "api_calls": 3}') ->> 'phase',
  'missing', 'invoices done: the missing check is next');
create temporary table counts_before as
  select (select count(*) from public.customers) as customers, (select count(*) from public.subscriptions) as subscriptions,
         (select count(*) from public.invoices) as invoices;
insert into c values ('done', private.billing_sync_finish(pg_temp.run_id(), pg_temp.lease(), '{"status": "complete", "api_calls": 1}'));
select is((select r -> 'report' ->> 'status' from c where label = 'done'), 'complete', 'complete');
select is((select (r -> 'report' -> 'drift' -> 'customers' ->> 'missing')::int from c where label = 'done'),
          (select customers + 1 from others_missing), 'customers missing: the one not listed (and rows of other tests), not the live-mode or deleted ones');
select is((select (r -> 'report' -> 'drift' -> 'subscriptions' ->> 'missing')::int from c where label = 'done'),
          (select subscriptions + 1 from others_missing), 'subscriptions missing counted');
select is((select (r -> 'report' -> 'drift' -> 'invoices' ->> 'missing')::int from c where label = 'done'),
          (select invoices + 1 from others_missing), 'invoices missing counted');
select results_eq($$ select stripe_customer_id, stripe_missing_since is not null from public.customers
                      where stripe_customer_id like 'cus_Bsync%' order by stripe_customer_id $$,
  $$ values ('cus_BsyncA'::text, false), ('cus_BsyncB', false), ('cus_BsyncDeleted', false), ('cus_BsyncGone', true), ('cus_BsyncLive', false) $$,
  'stamped: the unlisted one; cleared: a listed one stamped before; untouched: live mode, deleted');
select ok((select stripe_missing_since is not null from public.subscriptions where stripe_subscription_id = 'sub_BsyncGone')
      and (select stripe_missing_since is not null from public.invoices where stripe_invoice_id = 'in_BsyncGone'),
  'the unlisted subscription and invoice are stamped too');
select row_eq($$ select (select count(*) from public.customers), (select count(*) from public.subscriptions), (select count(*) from public.invoices) $$,
  (select row(customers, subscriptions, invoices) from counts_before), 'nothing is deleted');
select ok(exists (select from public.system_audit_logs where area = 'database' and action = 'update' and target like 'customers:%'
                   and details -> 'changed' ? 'stripe_missing_since'), 'each stamp is an audited update');
select row_eq($$ select status, phase, finished_at is not null, lease_id, api_calls from private.billing_sync_runs where id = pg_temp.run_id() $$,
  row('complete'::text, 'done'::text, true, null::uuid, 6), 'the run is done, its calls counted (pages and finish)');
select is((select count(*)::int from private.billing_sync_seen where run_id = pg_temp.run_id()), 0, 'its seen ids are gone');
select row_eq($$ select action, details ->> 'status', details ? 'error', details ? 'stop_reason', jsonb_typeof(details -> 'api_calls'),
                        jsonb_typeof(details -> 'events_replayed'), details ->> 'run_id'
                   from public.system_audit_logs where target = 'billing_sync_runs:' || pg_temp.run_id() order by id desc limit 1 $$,
  row('billing_sync'::text, 'complete'::text, false, false, 'number'::text, 'number'::text, pg_temp.run_id()::text),
  'the drift report of the complete run (the system status'' contract)');
select is((select array_agg(k order by k) from system_audit_logs l, jsonb_object_keys(l.details -> 'drift' -> 'invoices') as k
            where l.id = (select max(id) from system_audit_logs where target = 'billing_sync_runs:' || pg_temp.run_id())),
  array['changed', 'created', 'failed', 'missing', 'seen', 'skipped', 'stale', 'unchanged'], 'per table: created, changed, missing and the rest');
select is(private.billing_sync_claim(jsonb_build_object('run_id', pg_temp.run_id(), 'scope', 'full', 'livemode', false)) ->> 'outcome', 'finished',
  'asked to continue a finished run: finished, nothing to do');

-- ---------------------------------------------------------------------------------------------
-- Failures, restart, key mode, tenant runs
-- ---------------------------------------------------------------------------------------------
insert into c values ('f', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": false}'));
create function pg_temp.f_id() returns uuid language sql as $$ select (r -> 'run' ->> 'id')::uuid from c where label = 'f' $$;
create function pg_temp.f_lease() returns uuid language sql as $$ select (r -> 'run' ->> 'lease_id')::uuid from c where label = 'f' $$;
-- An event the SQL cannot record (no data.object) and a customer it cannot store: counted, the page goes on.
select is(private.billing_sync_apply_page(pg_temp.f_id(), pg_temp.f_lease(), '{"phase": "events", "done": true, "objects": [
  {"id": "evt_BsyncBad", "object": "event", "type": "invoice.paid", "created": 1790000000, "livemode": false}]}') -> 'counts' ->> 'failed',
  '1', 'an event that cannot be applied is counted as failed');
select is(private.billing_sync_apply_page(pg_temp.f_id(), pg_temp.f_lease(), jsonb_build_object('phase', 'customers', 'done', true,
  'seen_at', '2026-11-28T10:00:00Z', 'objects', jsonb_build_array(
    pg_temp.customer('cus_BsyncConflict', 'b5000000-0000-4000-8000-00000000000a', 'conflict@example.test'),
    pg_temp.customer('cus_BsyncA', 'b5000000-0000-4000-8000-00000000000a', 'a2@example.test')))) -> 'counts' -> 'customers',
  '{"seen": 2, "failed": 1, "changed": 1}'::jsonb, 'a customer that cannot be stored (a second one for a tenant) fails alone; the next one applies');
select is((select email from public.customers where stripe_customer_id = 'cus_BsyncA'), 'a2@example.test', 'changed: repaired from Stripe''s copy');
select private.billing_sync_apply_page(pg_temp.f_id(), pg_temp.f_lease(), '{"phase": "subscriptions", "objects": [], "done": true}');
select private.billing_sync_apply_page(pg_temp.f_id(), pg_temp.f_lease(), '{"phase": "invoices", "objects": [], "done": true}');
insert into c values ('f done', private.billing_sync_finish(pg_temp.f_id(), pg_temp.f_lease(), '{"status": "complete"}'));
select is((select r -> 'report' ->> 'status' from c where label = 'f done'), 'failed', 'a run with objects it could not apply ends failed, not complete');
select alike((select details ->> 'error' from public.system_audit_logs where target = 'billing_sync_runs:' || pg_temp.f_id() order by id desc limit 1),
  '2 Stripe object(s) could not be applied%', 'with details.error (the guide''s error query finds it)');
select is((select jsonb_array_length(details -> 'failures') from public.system_audit_logs where target = 'billing_sync_runs:' || pg_temp.f_id() order by id desc limit 1),
  2, 'and which objects, with their errors');

-- restart abandons the open run; a key of the other mode starts over too.
insert into c values ('g', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": false, "lease_seconds": 1}'));
update private.billing_sync_runs set lease_until = null, status = 'incomplete', lease_id = null
 where id = (select (r -> 'run' ->> 'id')::uuid from c where label = 'g');
insert into c values ('live', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": true}'));
select row_eq($$ select (select r ->> 'outcome' from c where label = 'live'),
                        (select status || '/' || stop_reason from private.billing_sync_runs where id = (select (r -> 'run' ->> 'id')::uuid from c where label = 'g')) $$,
  row('started'::text, 'abandoned/key_mode_changed'::text), 'a live key does not resume a test-mode run: it starts over');
update private.billing_sync_runs set lease_until = null, status = 'incomplete', lease_id = null
 where id = (select (r -> 'run' ->> 'id')::uuid from c where label = 'live');
insert into c values ('restart', private.billing_sync_claim('{"scope": "full", "trigger": "service", "requested_by": "service:default", "livemode": true, "restart": true}'));
select row_eq($$ select (select r ->> 'outcome' from c where label = 'restart'),
                        (select status || '/' || stop_reason from private.billing_sync_runs where id = (select (r -> 'run' ->> 'id')::uuid from c where label = 'live')) $$,
  row('started'::text, 'abandoned/restarted'::text), 'restart: the open run is abandoned, a new one starts');

-- Tenant runs: their own open run, a cooldown, phase customers first.
update public.customers set created_at = now() - interval '1 day' where stripe_customer_id = 'cus_BsyncA';
insert into c values ('t', private.billing_sync_claim('{"scope": "tenant", "tenant_id": "b5000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_BsyncA",
  "trigger": "admin", "requested_by": "user:x", "livemode": false, "cooldown_seconds": 60}'));
select row_eq($$ select r ->> 'outcome', r -> 'run' ->> 'phase', r -> 'run' ->> 'scope' from c where label = 't' $$,
  row('started'::text, 'customers'::text, 'tenant'::text), 'a tenant run starts at its customer (no events: they are account-wide)');
select private.billing_sync_apply_page((select (r -> 'run' ->> 'id')::uuid from c where label = 't'), (select (r -> 'run' ->> 'lease_id')::uuid from c where label = 't'),
  '{"phase": "customers", "objects": [], "done": true}');
select private.billing_sync_apply_page((select (r -> 'run' ->> 'id')::uuid from c where label = 't'), (select (r -> 'run' ->> 'lease_id')::uuid from c where label = 't'),
  '{"phase": "subscriptions", "objects": [], "done": true}');
select private.billing_sync_apply_page((select (r -> 'run' ->> 'id')::uuid from c where label = 't'), (select (r -> 'run' ->> 'lease_id')::uuid from c where label = 't'),
  '{"phase": "invoices", "objects": [], "done": true}');
insert into c values ('t done', private.billing_sync_finish((select (r -> 'run' ->> 'id')::uuid from c where label = 't'),
  (select (r -> 'run' ->> 'lease_id')::uuid from c where label = 't'), '{"status": "complete"}'));
select row_eq($$ select action, details ->> 'status', (details -> 'drift' -> 'customers' ->> 'missing')::int, tenant_id
                   from public.system_audit_logs
                  where target = 'billing_sync_runs:' || (select r -> 'report' ->> 'run_id' from c where label = 't done') $$,
  row('billing_sync_tenant'::text, 'complete'::text, 1, 'b5000000-0000-4000-8000-00000000000a'::uuid),
  'a tenant run: billing_sync_tenant (never taken for the daily sync), only that tenant''s rows checked');
select row_eq($$ select r ->> 'outcome', (r ->> 'retry_after_seconds')::int between 1 and 60
                   from (select private.billing_sync_claim('{"scope": "tenant", "tenant_id": "b5000000-0000-4000-8000-00000000000a", "stripe_customer_id": "cus_BsyncA",
                           "trigger": "admin", "requested_by": "user:x", "livemode": false, "cooldown_seconds": 60}') as r) as x $$,
  row('cooldown'::text, true), 'the same tenant again within a minute: cooldown, with the seconds to wait');

-- ---------------------------------------------------------------------------------------------
-- Closed to the API roles
-- ---------------------------------------------------------------------------------------------
select is_empty($$
  select format('%s: %s', r.rolname, p.oid::regprocedure)
    from pg_catalog.pg_proc as p
   cross join (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
   where p.pronamespace = 'private'::regnamespace
     and (p.proname like 'billing_sync%' or p.proname in ('run_daily_billing_sync', 'continue_billing_sync', 'request_billing_sync'))
     and has_function_privilege(r.rolname, p.oid, 'EXECUTE')
$$, 'no API role may execute a billing-sync function');
select is_empty($$
  select format('%s: %s %s', r.rolname, t.relname, pr.priv)
    from pg_catalog.pg_class as t
   cross join (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
   cross join (values ('select'), ('insert'), ('update'), ('delete')) as pr (priv)
   where t.relnamespace = 'private'::regnamespace and t.relname in ('billing_sync_runs', 'billing_sync_seen')
     and has_table_privilege(r.rolname, t.oid, pr.priv)
$$, 'no API role has any privilege on the run tables');

select * from finish();
rollback;
