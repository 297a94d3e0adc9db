-- RLS and privileges of the log tables (sms_alerts, sms_consent_events, system_audit_logs) for
-- anon, member of A, admin of A, admin of B and service_role, positive and negative cases; plus
-- their structure (RLS on, policies, comments). Only tenant owners/admins read their tenant's
-- rows; service_role writes; nobody but the retention functions deletes. Fixtures are created in
-- the test transaction (independent of seed.sql) and rolled back.
begin;
select plan(47);

-- ---------------------------------------------------------------------------------------------
-- Fixtures (as postgres, through the helpers of supabase/tests/_helpers)
-- ---------------------------------------------------------------------------------------------
select tests.create_tenant('Tenant A (log test)', id => '1a000000-0000-4000-8000-000000000000');
select tests.create_tenant('Tenant B (log test)', id => '1b000000-0000-4000-8000-000000000000');
select tests.create_member('1a000000-0000-4000-8000-000000000000', 'admin', 'admin.a@logs.example.com',
  id => '1a000000-0000-4000-8000-0000000000a2');
select tests.create_member('1a000000-0000-4000-8000-000000000000', 'member', 'member.a@logs.example.com',
  id => '1a000000-0000-4000-8000-0000000000a3');
select tests.create_member('1b000000-0000-4000-8000-000000000000', 'admin', 'admin.b@logs.example.com',
  id => '1b000000-0000-4000-8000-0000000000b2');

select tests.create_worker('1a000000-0000-4000-8000-000000000000', 'Worker A', '+15145550121',
  id => '1a000000-0000-4000-8000-00000000091a');
select tests.create_worker('1b000000-0000-4000-8000-000000000000', 'Worker B', '+15145550122',
  id => '1b000000-0000-4000-8000-00000000091b');

insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id) values
  ('1a000000-0000-4000-8000-000000000000', '1a000000-0000-4000-8000-00000000091a', 'outbound',
   '+15145550199', '+15145550121', 'Alerte A', 'delivered', 'SMlogtestA'),
  ('1b000000-0000-4000-8000-000000000000', '1b000000-0000-4000-8000-00000000091b', 'outbound',
   '+15145550199', '+15145550122', 'Alerte B', 'delivered', 'SMlogtestB'),
  (null, null, 'inbound', '+15145550123', '+15145550199', 'Bonjour?', 'received', 'SMlogtestUnknown');

insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source, keyword, message_body) values
  ('1a000000-0000-4000-8000-000000000000', '1a000000-0000-4000-8000-00000000091a', '+15145550121', false, 'keyword', 'STOP', 'STOP'),
  ('1b000000-0000-4000-8000-000000000000', '1b000000-0000-4000-8000-00000000091b', '+15145550122', false, 'keyword', 'ARRÊT', 'ARRÊT');

insert into public.system_audit_logs (area, action, tenant_id, target, details) values
  ('twilio', 'sms_send', '1a000000-0000-4000-8000-000000000000', 'logtest:A', '{}'),
  ('twilio', 'sms_send', '1b000000-0000-4000-8000-000000000000', 'logtest:B', '{}'),
  ('system', 'update_env', null, 'logtest:none', '{}');

-- ---------------------------------------------------------------------------------------------
-- Structure
-- ---------------------------------------------------------------------------------------------
select ok(
  (select bool_and(c.relrowsecurity) from pg_class as c
   where c.oid in ('public.sms_alerts'::regclass, 'public.sms_consent_events'::regclass, 'public.system_audit_logs'::regclass)),
  'RLS is enabled on the three log tables');
select policies_are('public', 'sms_alerts', array['sms_alerts_select_admins'], 'sms_alerts: one SELECT policy for admins');
select policies_are('public', 'sms_consent_events', array['sms_consent_events_select_admins'], 'sms_consent_events: one SELECT policy for admins');
select policies_are('public', 'system_audit_logs',
  array['system_audit_logs_select_admins', 'system_audit_logs_select_expired_retention', 'system_audit_logs_delete_expired_retention'],
  'system_audit_logs: admins SELECT; the retention role sees and deletes expired rows only');
select is(
  (select count(*)::int from pg_attribute as a
   where a.attrelid in ('public.sms_alerts'::regclass, 'public.sms_consent_events'::regclass, 'public.system_audit_logs'::regclass)
     and a.attnum > 0 and not a.attisdropped and col_description(a.attrelid, a.attnum) is null),
  0, 'every column of the log tables has a comment');
select ok(
  obj_description('public.sms_alerts'::regclass, 'pg_class') is not null
  and obj_description('public.sms_consent_events'::regclass, 'pg_class') is not null
  and obj_description('public.system_audit_logs'::regclass, 'pg_class') is not null,
  'every log table has a comment');

-- ---------------------------------------------------------------------------------------------
-- anon: no privilege at all
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_anon();

select throws_ok($$ select * from public.sms_alerts $$, '42501', null, 'anon cannot select sms_alerts');
select throws_ok($$ select * from public.sms_consent_events $$, '42501', null, 'anon cannot select sms_consent_events');
select throws_ok($$ select * from public.system_audit_logs $$, '42501', null, 'anon cannot select system_audit_logs');
select throws_ok(
  $$ insert into public.sms_alerts (direction, from_number, to_number, body, status)
     values ('inbound', '+15145550124', '+15145550199', 'x', 'received') $$,
  '42501', null, 'anon cannot insert sms_alerts');
select throws_ok(
  $$ insert into public.system_audit_logs (area, action) values ('system', 'forged') $$,
  '42501', null, 'anon cannot insert system_audit_logs');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- member of A: reads nothing (phone numbers and messages of coworkers), writes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('1a000000-0000-4000-8000-0000000000a3');

select is((select count(*)::int from public.sms_alerts), 0, 'member of A sees no sms_alerts');
select is((select count(*)::int from public.sms_consent_events), 0, 'member of A sees no sms_consent_events');
select is((select count(*)::int from public.system_audit_logs), 0, 'member of A sees no system_audit_logs');
select throws_ok(
  $$ insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status)
     values ('1a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550121', 'x', 'queued') $$,
  '42501', null, 'member of A cannot insert sms_alerts');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of A: reads A's rows only, writes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('1a000000-0000-4000-8000-0000000000a2');

select results_eq($$ select provider_message_id from public.sms_alerts $$, array['SMlogtestA'],
  'admin of A sees exactly the sms_alerts of A');
select results_eq($$ select keyword from public.sms_consent_events $$, array['STOP'],
  'admin of A sees exactly the consent events of A');
select results_eq($$ select target from public.system_audit_logs where target like 'logtest:%' $$, array['logtest:A'],
  'admin of A sees the audit rows of A, not B''s nor tenant-less ones');
select is((select count(*)::int from public.system_audit_logs
           where tenant_id is distinct from '1a000000-0000-4000-8000-000000000000'), 0,
  'admin of A sees no audit row of another tenant or of no tenant');
select throws_ok(
  $$ insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status)
     values ('1a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550121', 'x', 'queued') $$,
  '42501', null, 'admin of A cannot insert sms_alerts (service_role writes them)');
select throws_ok($$ update public.sms_alerts set status = 'failed' $$, '42501', null,
  'admin of A cannot update sms_alerts');
select throws_ok($$ delete from public.sms_consent_events $$, '42501', null,
  'admin of A cannot delete consent proofs');
select throws_ok(
  $$ insert into public.sms_consent_events (tenant_id, phone, new_consent, source)
     values ('1a000000-0000-4000-8000-000000000000', '+15145550121', true, 'admin') $$,
  '42501', null, 'admin of A cannot forge a consent proof');
select throws_ok(
  $$ insert into public.system_audit_logs (area, action, tenant_id) values ('system', 'forged', '1a000000-0000-4000-8000-000000000000') $$,
  '42501', null, 'admin of A cannot write the audit trail');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- admin of B: reads B's rows only
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as('1b000000-0000-4000-8000-0000000000b2');

select results_eq($$ select provider_message_id from public.sms_alerts $$, array['SMlogtestB'],
  'admin of B sees exactly the sms_alerts of B');
select results_eq($$ select keyword from public.sms_consent_events $$, array['ARRÊT'],
  'admin of B sees exactly the consent events of B');
select results_eq($$ select target from public.system_audit_logs where target like 'logtest:%' $$, array['logtest:B'],
  'admin of B sees the audit rows of B only');
select is((select count(*)::int from public.sms_alerts where tenant_id = '1a000000-0000-4000-8000-000000000000'), 0,
  'admin of B sees no sms_alerts of A');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- service_role (edge functions): reads everything, writes logs, deletes nothing
-- ---------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();

select is((select count(*)::int from public.sms_alerts where provider_message_id like 'SMlogtest%'), 3,
  'service_role sees every sms_alerts row, tenant-less inbound included');
select is((select count(*)::int from public.sms_consent_events where phone in ('+15145550121', '+15145550122')), 2,
  'service_role sees every consent event');
select lives_ok(
  $$ insert into public.sms_alerts (tenant_id, direction, from_number, to_number, body, status)
     values ('1a000000-0000-4000-8000-000000000000', 'outbound', '+15145550199', '+15145550121', 'Alerte', 'queued') $$,
  'service_role inserts an sms_alerts row');
select lives_ok(
  $$ update public.sms_alerts set status = 'delivered', delivered_at = now() where provider_message_id = 'SMlogtestA' $$,
  'service_role updates an SMS status (Twilio callback)');
select throws_ok($$ delete from public.sms_alerts where provider_message_id = 'SMlogtestA' $$, '42501', null,
  'service_role cannot delete sms_alerts (retention does)');
select throws_ok($$ truncate public.sms_alerts $$, '42501', null, 'service_role cannot truncate sms_alerts');
select lives_ok(
  $$ insert into public.sms_consent_events (tenant_id, phone, new_consent, source, keyword, message_body)
     values ('1a000000-0000-4000-8000-000000000000', '+15145550121', true, 'keyword', 'START', 'START') $$,
  'service_role records a consent event');
select throws_ok($$ update public.sms_consent_events set new_consent = true $$, '42501', null,
  'service_role cannot rewrite a consent proof');
select throws_ok($$ delete from public.sms_consent_events $$, '42501', null,
  'service_role cannot delete a consent proof');
select lives_ok(
  $$ insert into public.system_audit_logs (area, action, target, details)
     values ('twilio', 'sms_send', 'logtest:service', '{"to": "+15145550121"}') $$,
  'service_role writes an audit row');
select is((select count(*)::int from public.system_audit_logs where target like 'logtest:%'), 4,
  'service_role reads every audit row');

select tests.clear_authentication();

-- ---------------------------------------------------------------------------------------------
-- Constraints
-- ---------------------------------------------------------------------------------------------
select throws_ok(
  $$ insert into public.sms_alerts (direction, from_number, to_number, body, status)
     values ('sideways', '+15145550124', '+15145550199', 'x', 'received') $$,
  '23514', null, 'sms_alerts.direction is checked');
select throws_ok(
  $$ insert into public.sms_alerts (direction, from_number, to_number, body, status)
     values ('inbound', '+15145550124', '+15145550199', 'x', 'lost') $$,
  '23514', null, 'sms_alerts.status is checked');
select throws_ok(
  $$ insert into public.sms_alerts (direction, from_number, to_number, body, status, provider_message_id)
     values ('inbound', '+15145550124', '+15145550199', 'x', 'received', 'SMlogtestA') $$,
  '23505', null, 'provider_message_id is unique');
select throws_ok(
  $$ insert into public.sms_consent_events (tenant_id, phone, new_consent, source)
     values ('1a000000-0000-4000-8000-000000000000', '+15145550121', false, 'keyword') $$,
  '23514', null, 'a keyword consent event needs its keyword');
select throws_ok(
  $$ insert into public.system_audit_logs (area, action) values ('mars', 'sms_send') $$,
  '23514', null, 'system_audit_logs.area is checked');
select throws_ok(
  $$ insert into public.sms_alerts (direction, from_number, to_number, body, status, created_at)
     values ('inbound', '+15145550124', '+15145550199', 'x', 'received', '-infinity') $$,
  '23514', null, 'created_at must be finite (retention walks it from the oldest row)');
select lives_ok(
  $$ delete from public.workers where id = '1a000000-0000-4000-8000-00000000091a' $$,
  'deleting a worker keeps its SMS and consent proofs');
select is(
  (select count(*)::int from public.sms_consent_events
   where phone = '+15145550121' and worker_id is null),
  2, 'consent proofs of a deleted worker stay, worker_id set to null');

select * from finish();
rollback;
