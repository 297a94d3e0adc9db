-- Retention preview (20261129030000): the cut-offs are one function, at the purge functions'
-- floors; the next weekly run is Sunday 03:00 America/Montreal (both DST switch Sundays, the
-- minute before and the instant of a run), and the wrapper agrees it would run then; each
-- previewed count equals what the purge then deletes or blanks, with the same boundaries; and no
-- API role may call any of it. now() is fixed for the test transaction, so "N days ago" is exact.
begin;
select plan(25);

select tests.create_tenant('Tenant (retention preview test)', id => '3b000000-0000-4000-8000-000000000000');

-- ---------------------------------------------------------------------------------------------
-- Cut-offs: one function, used by the weekly wrapper, at the purges' floors
-- ---------------------------------------------------------------------------------------------
select is((select sms_cutoff from private.retention_cutoffs()), now() - interval '180 days', 'SMS cut-off: 180 days before now');
select is((select audit_cutoff from private.retention_cutoffs()), now() - interval '1 year', 'audit cut-off: one year before now');
select is((select sms_cutoff from private.retention_cutoffs('2026-07-05 07:00:00+00')), timestamptz '2026-07-05 07:00:00+00' - interval '180 days',
  'cut-offs of another instant');
select throws_ok(
  format('select private.purge_expired_sms(%L::timestamptz + interval ''1 microsecond'')', (select sms_cutoff from private.retention_cutoffs())),
  '22023', null, 'the SMS cut-off is exactly the SMS purge''s floor (1 µs later is refused)');
select throws_ok(
  format('select private.purge_expired_audit_logs(%L::timestamptz + interval ''1 microsecond'')', (select audit_cutoff from private.retention_cutoffs())),
  '22023', null, 'the audit cut-off is exactly the audit purge''s floor (1 µs later is refused)');
select ok(
  (select pg_catalog.pg_get_functiondef('private.run_weekly_retention(timestamptz)'::regprocedure) like '%private.retention_cutoffs(p_now)%'),
  'the weekly wrapper takes its cut-offs from private.retention_cutoffs');

-- ---------------------------------------------------------------------------------------------
-- Next run: Sunday 03:00 America/Montreal, strictly after the given instant
-- ---------------------------------------------------------------------------------------------
select is(private.retention_next_run('2026-11-25 17:39:00+00'), '2026-11-29 08:00:00+00',
  'a winter Wednesday: the coming Sunday 03:00 EST (08:00 UTC)');
select is(private.retention_next_run('2026-07-05 06:59:59+00'), '2026-07-05 07:00:00+00',
  'summer Sunday 02:59:59 EDT: the same morning, 03:00 EDT (07:00 UTC)');
select is(private.retention_next_run('2026-07-05 07:00:00+00'), '2026-07-12 07:00:00+00',
  'at the instant of a run: the next Sunday');
select is(private.retention_next_run('2026-07-04 23:00:00+00'), '2026-07-05 07:00:00+00',
  'Saturday evening in Montreal (already Sunday in UTC): Sunday 03:00 EDT');
select is(private.retention_next_run('2026-03-08 06:30:00+00'), '2026-03-08 07:00:00+00',
  'spring-forward Sunday 01:30 EST: 03:00 EDT, 07:00 UTC');
select is(private.retention_next_run('2026-10-31 12:00:00+00'), '2026-11-01 08:00:00+00',
  'Saturday before fall-back: Sunday 03:00 EST, 08:00 UTC');
select is(private.retention_next_run() , private.retention_next_run(now()), 'default: after now()');
select is(
  (select string_agg(private.run_weekly_retention(private.retention_next_run(t)) ->> 'ran', ',' order by t)
   from unnest(array['2026-11-25 17:39:00+00', '2026-07-04 23:00:00+00', '2026-03-08 06:30:00+00', '2026-10-31 12:00:00+00']::timestamptz[]) as t),
  'true,true,true,true', 'the weekly wrapper runs at each computed next run (it agrees on the schedule)');
select is(
  private.run_weekly_retention(private.retention_next_run('2026-10-31 12:00:00+00') - interval '1 minute') ->> 'ran', 'false',
  'and not the minute before');

-- ---------------------------------------------------------------------------------------------
-- The preview's counts: the purges' predicates and boundaries
-- ---------------------------------------------------------------------------------------------
-- Start from tables without expired rows (seed.sql may hold some, and the wrapper calls above ran
-- purges at past instants): every count below is this test's rows.
select private.purge_expired_sms();
select private.purge_expired_audit_logs();

insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status, created_at) values
  ('3b000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550133', 'kept: exactly 180 days', 'delivered', now() - interval '180 days'),
  ('3b000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550133', 'deleted: 180 days + 1 µs', 'delivered', now() - interval '180 days 0.000001 seconds'),
  ('3b000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550133', 'deleted: 400 days', 'delivered', now() - interval '400 days'),
  ('3b000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550133', 'deleted: 2 years', 'failed', now() - interval '2 years'),
  -- Deleted by the next weekly run, not by a run now: older than (next run - 180 days).
  ('3b000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550133', 'next run only', 'delivered',
   private.retention_next_run() - interval '180 days' - interval '1 second');
insert into public.sms_consent_events (tenant_id, phone, new_consent, source, keyword, message_body, created_at) values
  ('3b000000-0000-4000-8000-000000000000', '+15145550133', false, 'keyword', 'STOP', 'STOP', now() - interval '181 days'),
  ('3b000000-0000-4000-8000-000000000000', '+15145550133', true, 'keyword', 'START', 'START', now() - interval '100 days'),
  -- Old, but its body is already gone: nothing to blank.
  ('3b000000-0000-4000-8000-000000000000', '+15145550133', true, 'admin', null, null, now() - interval '300 days');
insert into public.system_audit_logs (created_at, area, action, target) values
  (now() - interval '1 year', 'twilio', 'sms_send', 'preview:kept'),
  (now() - interval '1 year 1 second', 'twilio', 'sms_send', 'preview:deleted-1'),
  (now() - interval '3 years', 'stripe', 'webhook_event', 'preview:deleted-2');

create temporary table preview_now as select * from private.retention_preview(now());
create temporary table preview_next as select * from private.retention_preview();

select results_eq(
  $$ select table_name, change, cutoff, row_count from preview_now order by table_name $$,
  $$ values ('sms_alerts', 'rows deleted', now() - interval '180 days', 3::bigint),
            ('sms_consent_events', 'message bodies blanked', now() - interval '180 days', 1::bigint),
            ('system_audit_logs', 'rows deleted', now() - interval '1 year', 2::bigint) $$,
  'a run now: 3 SMS (the boundary row kept), 1 consent body, 2 audit rows (the boundary row kept)');
select results_eq(
  $$ select table_name, cutoff, row_count from preview_next order by table_name $$,
  $$ select t, c, n from (values
       ('sms_alerts', private.retention_next_run() - interval '180 days', 5::bigint),
       ('sms_consent_events', private.retention_next_run() - interval '180 days', 1::bigint),
       ('system_audit_logs', private.retention_next_run() - interval '1 year', 3::bigint)) as v (t, c, n) $$,
  'the next weekly run (the default): its cut-offs, and the rows that will have aged past them by then (both boundary rows)');
select is((select count(*)::int from preview_now), 3, 'one row per table');

-- What the purges do with the same cut-offs (now()): exactly the previewed counts.
create temporary table sms_run as select private.purge_expired_sms(c.sms_cutoff) as summary from private.retention_cutoffs(now()) as c;
create temporary table audit_run as select private.purge_expired_audit_logs(c.audit_cutoff) as summary from private.retention_cutoffs(now()) as c;
select is((select (summary ->> 'sms_alerts_deleted')::bigint from sms_run), (select row_count from preview_now where table_name = 'sms_alerts'),
  'the SMS purge deleted exactly the previewed sms_alerts rows');
select is((select (summary ->> 'consent_bodies_cleared')::bigint from sms_run), (select row_count from preview_now where table_name = 'sms_consent_events'),
  'the SMS purge blanked exactly the previewed consent bodies');
select is((select (summary ->> 'audit_logs_deleted')::bigint from audit_run), (select row_count from preview_now where table_name = 'system_audit_logs'),
  'the audit purge deleted exactly the previewed audit rows');
select is(
  (select string_agg(row_count::text, ',' order by table_name) from private.retention_preview(now())), '0,0,0',
  'after the purges, a run now has nothing left to do');

-- ---------------------------------------------------------------------------------------------
-- Privileges: maintenance only (postgres)
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select throws_ok($$ select * from private.retention_preview() $$, '42501', null, 'service_role cannot call the preview');
select tests.authenticate_as_anon();
select throws_ok($$ select private.retention_next_run() $$, '42501', null, 'anon cannot call retention_next_run');
select tests.clear_authentication();
select is(
  (select count(*)::int from pg_catalog.pg_proc as p
   where p.pronamespace = 'private'::regnamespace
     and p.proname in ('retention_cutoffs', 'retention_next_run', 'retention_preview')
     and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute')
          or has_function_privilege('service_role', p.oid, 'execute'))),
  0, 'no API role may execute retention_cutoffs, retention_next_run or retention_preview');

select * from finish();
rollback;
