-- Weekly retention schedule: the two pg_cron jobs (07:00 and 08:00 UTC on Sundays) and the
-- wrapper that acts only at 03:00 America/Montreal, at most once per local day. The wrapper takes
-- the instant to check as an argument: summer (EDT, UTC-4) and winter (EST, UTC-5) Sundays, both
-- DST switch Sundays of 2026, a weekday, and repeated calls.
begin;
select plan(32);

-- ---------------------------------------------------------------------------------------------
-- Jobs
-- ---------------------------------------------------------------------------------------------
select is(
  (select string_agg(format('%s | %s | %s | %s | %s', jobname, schedule, command, username, active), E'\n' order by jobname)
   from cron.job where command like '%run_weekly_retention%'),
  'weekly-retention-0700-utc | 0 7 * * 0 | select private.run_weekly_retention() | postgres | t' || E'\n' ||
  'weekly-retention-0800-utc | 0 8 * * 0 | select private.run_weekly_retention() | postgres | t',
  'two Sunday jobs, 07:00 and 08:00 UTC, call the wrapper as postgres');

create temporary table jobs_before as select jobid, jobname from cron.job where command like '%run_weekly_retention%';
-- Re-applying the migration's statements: same jobs, updated in place.
select cron.schedule('weekly-retention-0700-utc', '0 7 * * 0', 'select private.run_weekly_retention()');
select cron.schedule('weekly-retention-0800-utc', '0 8 * * 0', 'select private.run_weekly_retention()');
select set_eq(
  $$ select jobid, jobname from cron.job where command like '%run_weekly_retention%' $$,
  $$ select jobid, jobname from jobs_before $$,
  're-scheduling by name keeps the same two jobs (idempotent migration)');

select is(
  (select count(*)::int from cron.job where command like '%purge_expired%'), 0,
  'no job calls a purge directly: every run goes through the 03:00-local check');

-- ---------------------------------------------------------------------------------------------
-- Summer (EDT): 07:00 UTC is 03:00 local, 08:00 UTC is 04:00
-- ---------------------------------------------------------------------------------------------
create temporary table outcome (label text primary key, result jsonb);

insert into outcome values ('summer 08:00', private.run_weekly_retention('2026-07-05 08:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'summer 08:00'), 'false',
  'summer Sunday 08:00 UTC (04:00 EDT): nothing runs');
insert into outcome values ('summer 07:00', private.run_weekly_retention('2026-07-05 07:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'summer 07:00'), 'true',
  'summer Sunday 07:00 UTC (03:00 EDT): the purges run');
select is((select result ->> 'local_time' from outcome where label = 'summer 07:00'), '2026-07-05T03:00:00',
  'summer run sees 03:00 local time');
select ok((select result -> 'sms_purge' ? 'sms_alerts_deleted' from outcome where label = 'summer 07:00'),
  'summer run: the SMS purge ran');
select ok((select result -> 'audit_purge' ? 'audit_logs_deleted' from outcome where label = 'summer 07:00'),
  'summer run: the audit purge ran');
select is(
  (select (result -> 'sms_purge' ->> 'cutoff')::timestamptz from outcome where label = 'summer 07:00'),
  timestamptz '2026-07-05 07:00:00+00' - interval '180 days', 'summer run: SMS cut-off is 180 days before the run');
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action in ('sms_purge', 'audit_purge') and details ->> 'local_date' = '2026-07-05'),
  2, 'summer run wrote one audit row per purge for 2026-07-05');

insert into outcome values ('summer 07:00 again', private.run_weekly_retention('2026-07-05 07:00:40+00'));
select is((select result ->> 'sms_purge' from outcome where label = 'summer 07:00 again'), 'already ran today',
  'second call the same local day: SMS purge skipped');
select is((select result ->> 'audit_purge' from outcome where label = 'summer 07:00 again'), 'already ran today',
  'second call the same local day: audit purge skipped');
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action in ('sms_purge', 'audit_purge') and details ->> 'local_date' = '2026-07-05'),
  2, 'second call wrote no audit row');

-- ---------------------------------------------------------------------------------------------
-- Winter (EST): 07:00 UTC is 02:00 local, 08:00 UTC is 03:00
-- ---------------------------------------------------------------------------------------------
insert into outcome values ('winter 07:00', private.run_weekly_retention('2026-01-04 07:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'winter 07:00'), 'false',
  'winter Sunday 07:00 UTC (02:00 EST): nothing runs');
insert into outcome values ('winter 08:00', private.run_weekly_retention('2026-01-04 08:00:00+00'));
select is((select result ->> 'ran' from outcome where label = 'winter 08:00'), 'true',
  'winter Sunday 08:00 UTC (03:00 EST): the purges run');
select is((select result ->> 'local_time' from outcome where label = 'winter 08:00'), '2026-01-04T03:00:00',
  'winter run sees 03:00 local time');
select ok((select result -> 'sms_purge' ? 'sms_alerts_deleted' and result -> 'audit_purge' ? 'audit_logs_deleted'
           from outcome where label = 'winter 08:00'), 'winter run: both purges ran');
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action in ('sms_purge', 'audit_purge') and details ->> 'local_date' = '2026-01-04'),
  2, 'winter run wrote one audit row per purge for 2026-01-04');
insert into outcome values ('winter 08:00 again', private.run_weekly_retention('2026-01-04 08:30:00+00'));
select is((select result ->> 'sms_purge' || ' / ' || (result ->> 'audit_purge') from outcome where label = 'winter 08:00 again'),
  'already ran today / already ran today', 'second winter call the same local day does nothing');

-- ---------------------------------------------------------------------------------------------
-- DST switch Sundays and a weekday
-- ---------------------------------------------------------------------------------------------
-- 2026-03-08: clocks go 02:00 EST -> 03:00 EDT at 07:00 UTC.
select is(private.run_weekly_retention('2026-03-08 07:00:00+00') ->> 'ran', 'true',
  'spring-forward Sunday: 07:00 UTC is 03:00 EDT, runs');
select is(private.run_weekly_retention('2026-03-08 08:00:00+00') ->> 'ran', 'false',
  'spring-forward Sunday: 08:00 UTC is 04:00 EDT, does nothing');
-- 2026-11-01: clocks go 02:00 EDT -> 01:00 EST at 06:00 UTC.
select is(private.run_weekly_retention('2026-11-01 07:00:00+00') ->> 'ran', 'false',
  'fall-back Sunday: 07:00 UTC is 02:00 EST, does nothing');
select is(private.run_weekly_retention('2026-11-01 08:00:00+00') ->> 'ran', 'true',
  'fall-back Sunday: 08:00 UTC is 03:00 EST, runs');
select is(private.run_weekly_retention('2026-07-06 07:00:00+00') ->> 'ran', 'false',
  'a Monday at 03:00 local does nothing');

-- ---------------------------------------------------------------------------------------------
-- A failing purge: logged with details->>'error', the other purge still runs
-- ---------------------------------------------------------------------------------------------
create function pg_temp.refuse_delete() returns trigger language plpgsql as $$
begin
  raise exception 'simulated failure of the SMS purge';
end
$$;
create trigger refuse_delete before delete on public.sms_alerts
  for each statement execute function pg_temp.refuse_delete();
insert into public.sms_alerts (direction, from_number, to_number, body, status, created_at)
  values ('inbound', '+15145550141', '+15145550199', 'vieux message', 'received', '2025-06-01 12:00:00+00');
insert into outcome values ('failing sms', private.run_weekly_retention('2026-07-12 07:00:00+00'));
drop trigger refuse_delete on public.sms_alerts;
select is((select result -> 'sms_purge' ->> 'error' from outcome where label = 'failing sms'),
  'simulated failure of the SMS purge', 'the wrapper reports the failed SMS purge');
select ok((select result -> 'audit_purge' ? 'audit_logs_deleted' from outcome where label = 'failing sms'),
  'the audit purge still ran');
select is(
  (select count(*)::int from public.system_audit_logs
   where created_at > now() - interval '24 hours' and details ->> 'error' is not null
     and area = 'maintenance' and action = 'sms_purge' and details ->> 'local_date' = '2026-07-12'),
  1, 'the failure is in the audit trail, found by the guide''s "erreurs des dernières 24h" condition');
select is(private.run_weekly_retention('2026-07-12 07:00:30+00') ->> 'sms_purge', 'already ran today',
  'a failed run still counts for the day (at most one attempt per day; next Sunday retries)');

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------
select tests.create_user('user@cron-retention.example.com', id => '4a000000-0000-4000-8000-0000000000a1');
select tests.authenticate_as_service_role();
select throws_ok($$ select private.run_weekly_retention() $$, '42501', null, 'service_role cannot call the wrapper');
select tests.authenticate_as('4a000000-0000-4000-8000-0000000000a1');
select throws_ok($$ select private.run_weekly_retention() $$, '42501', null, 'authenticated cannot call the wrapper');
select tests.authenticate_as_anon();
select throws_ok($$ select private.run_weekly_retention() $$, '42501', null, 'anon cannot call the wrapper');
select tests.clear_authentication();
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action in ('sms_purge', 'audit_purge') and details ? 'error'
     and created_at = now() and details ->> 'local_date' <> '2026-07-12'),
  0, 'no other run of this test failed');

select * from finish();
rollback;
