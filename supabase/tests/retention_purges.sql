-- Retention purges: boundaries (SMS at 179/180/181 days, audit rows at 364/365/366 days), consent
-- bodies blanked while the proofs stay, ties and gaps in created_at, the one audit row each run
-- writes (counts, cutoff, batches, duration), idempotency (a second run deletes nothing), and
-- argument checks. now() is fixed for the whole test transaction, so "N days ago" is exact.
begin;
select plan(34);

-- Start from a table without expired rows (seed.sql may hold some): the counts below are ours.
select private.purge_expired_sms();
select private.purge_expired_audit_logs();

select tests.create_tenant('Tenant A (retention test)', id => '3a000000-0000-4000-8000-000000000000');

insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status, provider_message_id, created_at) values
  ('3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550131', 'J-179', 'delivered', 'SMret179', now() - interval '179 days'),
  ('3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550131', 'J-180', 'delivered', 'SMret180', now() - interval '180 days'),
  ('3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550131', 'J-180+1s', 'delivered', 'SMret180s', now() - interval '180 days 1 second'),
  ('3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550131', 'J-181', 'delivered', 'SMret181', now() - interval '181 days'),
  -- A long gap before the next expired row: the range walk must jump it.
  ('3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550131', 'J-900', 'delivered', 'SMret900', now() - interval '900 days');
-- 25 rows sharing one timestamp (a mass alert): a batch boundary must not split or skip them.
insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status, created_at)
select '3a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550132', 'Évacuation', 'delivered',
       timestamptz '2025-01-15 14:00:00+00'
from generate_series(1, 25);

insert into public.sms_consent_events (tenant_id, phone, new_consent, source, keyword, message_body, created_at) values
  ('3a000000-0000-4000-8000-000000000000', '+15145550131', false, 'keyword', 'STOP', 'STOP svp', now() - interval '179 days'),
  ('3a000000-0000-4000-8000-000000000000', '+15145550131', true, 'keyword', 'START', 'START', now() - interval '181 days'),
  ('3a000000-0000-4000-8000-000000000000', '+15145550131', false, 'keyword', 'ARRÊT', 'ARRÊT', now() - interval '500 days');

insert into public.system_audit_logs (created_at, area, action, target) values
  (now() - interval '364 days', 'twilio', 'sms_send', 'rettest:364'),
  (now() - interval '365 days', 'twilio', 'sms_send', 'rettest:365'),
  (now() - interval '366 days', 'twilio', 'sms_send', 'rettest:366'),
  (now() - interval '800 days', 'stripe', 'webhook_event', 'rettest:800');

-- ---------------------------------------------------------------------------------------------
-- SMS purge (small batches, so several ranges are walked)
-- ---------------------------------------------------------------------------------------------
create temporary table sms_run_1 as select private.purge_expired_sms(p_batch_size => 2) as summary;

select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMret179'), 1, 'SMS at 179 days is kept');
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMret180'), 1,
  'SMS at exactly 180 days is kept (not older than the cut-off)');
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMret180s'), 0, 'SMS at 180 days + 1 s is deleted');
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMret181'), 0, 'SMS at 181 days is deleted');
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMret900'), 0, 'SMS after a long gap is deleted');
select is((select count(*)::int from public.sms_alerts where created_at = '2025-01-15 14:00:00+00'), 0,
  'the 25 SMS sharing one timestamp are all deleted');

select is((select count(*)::int from public.sms_consent_events where phone = '+15145550131'), 3,
  'every consent proof stays');
select is((select message_body from public.sms_consent_events where phone = '+15145550131' and keyword = 'STOP'), 'STOP svp',
  'consent body at 179 days is kept');
select ok((select message_body is null from public.sms_consent_events where phone = '+15145550131' and keyword = 'START'),
  'consent body at 181 days is nulled');
select ok((select message_body is null from public.sms_consent_events where phone = '+15145550131' and keyword = 'ARRÊT'),
  'consent body at 500 days is nulled');
select ok((select new_consent and source = 'keyword' from public.sms_consent_events where phone = '+15145550131' and keyword = 'START'),
  'the blanked proof keeps its consent, source and keyword');

select is((select (summary ->> 'sms_alerts_deleted')::int from sms_run_1), 28, 'summary: 28 SMS deleted');
select is((select (summary ->> 'consent_bodies_cleared')::int from sms_run_1), 2, 'summary: 2 consent bodies cleared');
select ok((select (summary ->> 'sms_alerts_batches')::int > 1 from sms_run_1), 'several batches were used with batch size 2');
select is((select (summary ->> 'cutoff')::timestamptz from sms_run_1), now() - interval '180 days', 'summary: default cut-off is now() - 180 days');

-- The one audit row of the run.
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action = 'sms_purge' and details = (select summary from sms_run_1)),
  1, 'the run wrote one maintenance/sms_purge audit row holding its summary');
select ok(
  (select details ?& array['cutoff', 'batches', 'duration_ms', 'sms_alerts_deleted', 'consent_bodies_cleared', 'batch_size']
   from public.system_audit_logs
   where area = 'maintenance' and action = 'sms_purge' and details = (select summary from sms_run_1)),
  'the audit row has counts, cutoff, batches and duration');
select ok(
  (select details ->> 'error' is null from public.system_audit_logs
   where area = 'maintenance' and action = 'sms_purge' and details = (select summary from sms_run_1)),
  'a successful run has no details->>''error''');

-- Idempotent.
create temporary table sms_run_2 as select private.purge_expired_sms(p_batch_size => 2) as summary;
select is((select (summary ->> 'sms_alerts_deleted')::int from sms_run_2), 0, 'second SMS run deletes nothing');
select is((select (summary ->> 'consent_bodies_cleared')::int from sms_run_2), 0, 'second SMS run clears nothing');
select is((select count(*)::int from public.sms_alerts where provider_message_id in ('SMret179', 'SMret180')), 2,
  'second SMS run keeps the live rows');

-- ---------------------------------------------------------------------------------------------
-- Audit purge
-- ---------------------------------------------------------------------------------------------
create temporary table audit_run_1 as select private.purge_expired_audit_logs(p_batch_size => 1) as summary;

select is((select count(*)::int from public.system_audit_logs where target = 'rettest:364'), 1, 'audit row at 364 days is kept');
select is((select count(*)::int from public.system_audit_logs where target = 'rettest:365'),
  case when now() - interval '365 days' < now() - interval '1 year' then 0 else 1 end,
  'audit row at 365 days is kept unless 365 days is more than a year (leap day in the last year)');
select is((select count(*)::int from public.system_audit_logs where target = 'rettest:366'), 0, 'audit row at 366 days is deleted');
select is((select count(*)::int from public.system_audit_logs where target = 'rettest:800'), 0, 'audit row at 800 days is deleted');
select is((select (summary ->> 'audit_logs_deleted')::int from audit_run_1),
  case when now() - interval '365 days' < now() - interval '1 year' then 3 else 2 end, 'summary: rows deleted counted');
select is(
  (select count(*)::int from public.system_audit_logs
   where area = 'maintenance' and action = 'audit_purge' and details = (select summary from audit_run_1)),
  1, 'the run wrote one maintenance/audit_purge audit row holding its summary');
select ok(
  (select summary ?& array['cutoff', 'batches', 'duration_ms', 'audit_logs_deleted'] from audit_run_1),
  'the audit purge summary has count, cutoff, batches and duration');
select is((select (summary ->> 'audit_logs_deleted')::int from (select private.purge_expired_audit_logs() as summary) as r), 0,
  'second audit run deletes nothing');
select is((select count(*)::int from public.system_audit_logs where area = 'maintenance' and action = 'sms_purge'
           and details = (select summary from sms_run_1)), 1,
  'the audit purge keeps the recent maintenance rows');

-- ---------------------------------------------------------------------------------------------
-- Arguments
-- ---------------------------------------------------------------------------------------------
select throws_ok($$ select private.purge_expired_sms(now() - interval '10 days') $$, '22023', null,
  'the SMS purge refuses a cut-off newer than 180 days');
select throws_ok($$ select private.purge_expired_sms(p_batch_size => 0) $$, '22023', null,
  'the SMS purge refuses a batch size of 0');
select throws_ok($$ select private.purge_expired_audit_logs(now() - interval '364 days') $$, '22023', null,
  'the audit purge refuses a cut-off newer than one year');
select throws_ok($$ select private.purge_expired_audit_logs(null) $$, '22023', null,
  'the audit purge refuses a null cut-off');

select * from finish();
rollback;
