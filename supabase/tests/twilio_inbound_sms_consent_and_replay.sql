-- private.handle_inbound_sms: STOP/START flip consent of every worker with the number (several
-- tenants), one proof row each, the message stored and audited once; a replayed MessageSid changes
-- nothing and returns the first outcome; unknown senders and non-keywords are stored and audited.
-- Called as service_role, as the sms-inbound edge function's service connection would.
begin;
select plan(24);

select tests.create_tenant('Inbound A', id => '1b000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Inbound B', id => '1b000000-0000-4000-8000-00000000000b');
-- The same number in both tenants; A's worker consents and speaks English, B's does not consent yet.
select tests.create_worker('1b000000-0000-4000-8000-00000000000a', 'Ann A', '+15145550141',
  id => '1b000000-0000-4000-8000-0000000000a1');
select tests.create_worker('1b000000-0000-4000-8000-00000000000b', 'Ann B', '+15145550141',
  id => '1b000000-0000-4000-8000-0000000000b1');
select tests.create_worker('1b000000-0000-4000-8000-00000000000a', 'Solo', '+15145550142',
  id => '1b000000-0000-4000-8000-0000000000a2');
update public.workers set sms_consent = true, preferred_language = 'en'
 where id = '1b000000-0000-4000-8000-0000000000a1';

select tests.authenticate_as_service_role();

create temp table outcome (label text primary key, result jsonb);
grant all on outcome to service_role;
insert into outcome values ('stop', private.handle_inbound_sms(
  '{"message_sid": "SMin0000000000000000000000000001", "from": "+15145550141", "to": "+15145550199",
    "body": "  Arrêt ! ", "keyword_kind": "opt_out", "keyword": "ARRET", "received_at": "2026-11-20T10:00:00Z"}'));

select is((select result -> 'duplicate' from outcome where label = 'stop'), 'false', 'STOP: first delivery');
select is((select result ->> 'kind' from outcome where label = 'stop'), 'opt_out', 'STOP: kind opt_out');
select is((select result -> 'workers' from outcome where label = 'stop'),
  '[{"worker_id": "1b000000-0000-4000-8000-0000000000a1", "tenant_id": "1b000000-0000-4000-8000-00000000000a", "preferred_language": "en", "consent_changed": true},
    {"worker_id": "1b000000-0000-4000-8000-0000000000b1", "tenant_id": "1b000000-0000-4000-8000-00000000000b", "preferred_language": "fr", "consent_changed": false}]'::jsonb,
  'STOP: both tenants'' workers returned with their language; only the consenting one changed');
select is((select array_agg(sms_consent order by id) from public.workers where phone = '+15145550141'),
  array[false, false], 'STOP: nobody with that number consents any more');
select results_eq(
  $$ select worker_id, new_consent, source, keyword, message_body, provider_message_id, actor, created_at
       from public.sms_consent_events where phone = '+15145550141' and source <> 'admin' $$,
  $$ values ('1b000000-0000-4000-8000-0000000000a1'::uuid, false, 'keyword', 'ARRET', '  Arrêt ! ',
             'SMin0000000000000000000000000001', 'twilio', '2026-11-20T10:00:00Z'::timestamptz) $$,
  'STOP: one proof row, for the worker whose consent changed, with keyword, body, MessageSid, actor, time');
select results_eq(
  $$ select tenant_id, worker_id, direction, from_number, body, status from public.sms_alerts
      where provider_message_id = 'SMin0000000000000000000000000001' $$,
  $$ values (null::uuid, null::uuid, 'inbound', '+15145550141', '  Arrêt ! ', 'received') $$,
  'STOP: the message is stored once, unattributed (the number is in two tenants)');
select results_eq(
  $$ select details from public.system_audit_logs
      where area = 'twilio' and action = 'inbound' and target = 'SMin0000000000000000000000000001' $$,
  $$ values ('{"kind": "opt_out", "keyword": "ARRET", "workers_matched": 2, "workers_consent_changed": 1, "known_sender": true}'::jsonb) $$,
  'STOP: one inbound audit row: kind, keyword, counts; no body, no number');

-- Replay of the same MessageSid after the number opted in again through another message.
update public.workers set sms_consent = true where id = '1b000000-0000-4000-8000-0000000000b1';
insert into outcome values ('replay', private.handle_inbound_sms(
  '{"message_sid": "SMin0000000000000000000000000001", "from": "+15145550141", "to": "+15145550199",
    "body": "  Arrêt ! ", "keyword_kind": "opt_out", "keyword": "ARRET", "received_at": "2026-11-20T10:00:05Z"}'));
select is((select result -> 'duplicate' from outcome where label = 'replay'), 'true', 'replay: duplicate');
select is((select result -> 'workers' from outcome where label = 'replay'),
          (select result -> 'workers' from outcome where label = 'stop'),
  'replay: returns the first outcome (same workers, same consent_changed)');
select is((select sms_consent from public.workers where id = '1b000000-0000-4000-8000-0000000000b1'), true,
  'replay: changes no consent');
-- (source <> 'admin': the fixture's own consent grants above have their 'admin' proof rows, 20261130020100)
select is((select count(*)::int from public.sms_consent_events where phone = '+15145550141' and source <> 'admin'), 1, 'replay: no second proof row');
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMin0000000000000000000000000001'), 1,
  'replay: no second message row');
select is((select count(*)::int from public.system_audit_logs where target = 'SMin0000000000000000000000000001'), 1,
  'replay: no second audit row');

-- START for a single-tenant number: attributed to the tenant and worker.
insert into outcome values ('start', private.handle_inbound_sms(
  '{"message_sid": "SMin0000000000000000000000000002", "from": "+15145550142", "to": "+15145550199",
    "body": "start", "keyword_kind": "opt_in", "keyword": "START"}'));
select is((select result -> 'workers' -> 0 -> 'consent_changed' from outcome where label = 'start'), 'true',
  'START: consent changed');
select is((select sms_consent from public.workers where id = '1b000000-0000-4000-8000-0000000000a2'), true, 'START: consent on');
select results_eq(
  $$ select new_consent, source, keyword from public.sms_consent_events where phone = '+15145550142' $$,
  $$ values (true, 'keyword', 'START') $$, 'START: proof row');
select results_eq(
  $$ select tenant_id, worker_id from public.sms_alerts where provider_message_id = 'SMin0000000000000000000000000002' $$,
  $$ values ('1b000000-0000-4000-8000-00000000000a'::uuid, '1b000000-0000-4000-8000-0000000000a2'::uuid) $$,
  'START: a single-tenant number''s message is attributed to its tenant and worker');
select is((select tenant_id from public.system_audit_logs where target = 'SMin0000000000000000000000000002'),
  '1b000000-0000-4000-8000-00000000000a'::uuid, 'START: the audit row belongs to that tenant (its admins see it)');

-- START again: already consenting, nothing to prove.
insert into outcome values ('start_again', private.handle_inbound_sms(
  '{"message_sid": "SMin0000000000000000000000000003", "from": "+15145550142", "to": "+15145550199",
    "body": "YES", "keyword_kind": "opt_in", "keyword": "YES"}'));
select is((select result -> 'workers' -> 0 -> 'consent_changed' from outcome where label = 'start_again'), 'false',
  'START while consenting: consent_changed false');
select is((select count(*)::int from public.sms_consent_events where phone = '+15145550142'), 1,
  'START while consenting: no proof row');

-- Unknown sender, not a keyword: stored with no tenant, audited, no body in the audit.
insert into outcome values ('unknown', private.handle_inbound_sms(
  '{"message_sid": "SMin0000000000000000000000000004", "from": "+15145550149", "to": "+15145550199",
    "body": "Please stop sending me these", "keyword_kind": null, "keyword": null}'));
select is((select result from outcome where label = 'unknown'),
  '{"duplicate": false, "kind": null, "workers": []}'::jsonb, 'unknown sender: no workers');
select results_eq(
  $$ select tenant_id, body from public.sms_alerts where provider_message_id = 'SMin0000000000000000000000000004' $$,
  $$ values (null::uuid, 'Please stop sending me these') $$, 'unknown sender: stored with null tenant');
select is((select details from public.system_audit_logs where target = 'SMin0000000000000000000000000004'),
  '{"kind": null, "keyword": null, "workers_matched": 0, "workers_consent_changed": 0, "known_sender": false}'::jsonb,
  'unknown sender: audited without the text');

select throws_ok($$ select private.handle_inbound_sms('{"from": "+15145550142", "to": "+15145550199"}') $$,
  '22023', null, 'missing message_sid: invalid_parameter_value');

select tests.clear_authentication();
select * from finish();
rollback;
