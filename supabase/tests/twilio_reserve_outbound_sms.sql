-- private.reserve_outbound_sms / private.record_sms_sent: rows are reserved only for consenting,
-- verified workers (the others come back skipped with reasons), a site alert picks each worker's
-- language, the Idempotency-Key replays the first answer without new rows, a tenant admin reaches
-- only their tenant (the RLS helper decides), members and bare numbers are refused to users, the
-- sms_send audit rows are counted by the operators' "SMS sent today", and the provider's answer
-- (MessageSid, or an error with details.error; 21610 revokes consent) is recorded.
begin;
select plan(27);

select tests.create_tenant('Reserve A', id => '7e000000-0000-4000-8000-00000000000a');
select tests.create_tenant('Reserve B', id => '7e000000-0000-4000-8000-00000000000b');
select tests.create_site('7e000000-0000-4000-8000-00000000000a', 'Chantier A', id => '7e000000-0000-4000-8000-0000000000c1');
select tests.create_site('7e000000-0000-4000-8000-00000000000b', 'Chantier B', id => '7e000000-0000-4000-8000-0000000000c2');
select tests.create_member('7e000000-0000-4000-8000-00000000000a', 'admin', 'admin-a@reserve.example.com',
  id => '7e000000-0000-4000-8000-0000000000d1');
select tests.create_member('7e000000-0000-4000-8000-00000000000b', 'admin', 'admin-b@reserve.example.com',
  id => '7e000000-0000-4000-8000-0000000000d2');
select tests.create_member('7e000000-0000-4000-8000-00000000000a', 'member', 'member-a@reserve.example.com',
  id => '7e000000-0000-4000-8000-0000000000d3');
-- Site A: e1 ok (fr), e2 ok (en), e3 no consent, e4 not verified, e5 neither.
select tests.create_worker('7e000000-0000-4000-8000-00000000000a', 'OK fr', '+15145550161',
  '7e000000-0000-4000-8000-0000000000c1', id => '7e000000-0000-4000-8000-0000000000e1');
select tests.create_worker('7e000000-0000-4000-8000-00000000000a', 'OK en', '+15145550162',
  '7e000000-0000-4000-8000-0000000000c1', id => '7e000000-0000-4000-8000-0000000000e2');
select tests.create_worker('7e000000-0000-4000-8000-00000000000a', 'Opted out', '+15145550163',
  '7e000000-0000-4000-8000-0000000000c1', id => '7e000000-0000-4000-8000-0000000000e3');
select tests.create_worker('7e000000-0000-4000-8000-00000000000a', 'Unverified', '+15145550164',
  '7e000000-0000-4000-8000-0000000000c1', id => '7e000000-0000-4000-8000-0000000000e4');
select tests.create_worker('7e000000-0000-4000-8000-00000000000a', 'Neither', '+15145550165',
  '7e000000-0000-4000-8000-0000000000c1', id => '7e000000-0000-4000-8000-0000000000e5');
select tests.create_worker('7e000000-0000-4000-8000-00000000000b', 'B worker', '+15145550166',
  '7e000000-0000-4000-8000-0000000000c2', id => '7e000000-0000-4000-8000-0000000000e6');
update public.workers set sms_consent = true, phone_verified = true
 where id in ('7e000000-0000-4000-8000-0000000000e1', '7e000000-0000-4000-8000-0000000000e2',
              '7e000000-0000-4000-8000-0000000000e6');
update public.workers set preferred_language = 'en' where id = '7e000000-0000-4000-8000-0000000000e2';
update public.workers set phone_verified = true where id = '7e000000-0000-4000-8000-0000000000e3';
update public.workers set sms_consent = true where id = '7e000000-0000-4000-8000-0000000000e4';

create temp table sent_today_before as
SELECT COUNT(*) FROM system_audit_logs 
WHERE area = 'twilio' 
AND action = 'sms_send'
AND created_at::date = CURRENT_DATE;

create temp table answer (label text primary key, result jsonb);
grant select, insert on answer to authenticated, service_role;

-- Site alert by tenant A's admin, in each worker's language.
select tests.authenticate_as('7e000000-0000-4000-8000-0000000000d1');
insert into answer values ('site', private.reserve_outbound_sms(
  '{"site_id": "7e000000-0000-4000-8000-0000000000c1", "from": "+15145550199",
    "body_fr": "Alerte: evacuez", "body_en": "Alert: evacuate", "idempotency_key": "site-alert-1"}'));
select tests.clear_authentication();

select is((select jsonb_agg(jsonb_build_array(m ->> 'worker_id', m ->> 'body', m ->> 'to', m ->> 'status') order by m ->> 'worker_id')
             from answer, jsonb_array_elements(result -> 'messages') as m where label = 'site'),
  '[["7e000000-0000-4000-8000-0000000000e1", "Alerte: evacuez", "+15145550161", "queued"],
    ["7e000000-0000-4000-8000-0000000000e2", "Alert: evacuate", "+15145550162", "queued"]]'::jsonb,
  'site alert: one message per consenting verified worker, in their language');
select is((select result -> 'skipped' from answer where label = 'site'),
  '[{"worker_id": "7e000000-0000-4000-8000-0000000000e3", "reasons": ["no_consent"]},
    {"worker_id": "7e000000-0000-4000-8000-0000000000e4", "reasons": ["phone_not_verified"]},
    {"worker_id": "7e000000-0000-4000-8000-0000000000e5", "reasons": ["no_consent", "phone_not_verified"]}]'::jsonb,
  'site alert: the others skipped with their reasons');
select is_empty($$ select from public.sms_alerts
                    where worker_id in ('7e000000-0000-4000-8000-0000000000e3', '7e000000-0000-4000-8000-0000000000e4',
                                        '7e000000-0000-4000-8000-0000000000e5') $$,
  'site alert: no row for an opted-out or unverified worker');
select results_eq(
  $$ select tenant_id, direction, from_number, status, provider_message_id from public.sms_alerts
      where worker_id in ('7e000000-0000-4000-8000-0000000000e1', '7e000000-0000-4000-8000-0000000000e2') $$,
  $$ values ('7e000000-0000-4000-8000-00000000000a'::uuid, 'outbound', '+15145550199', 'queued', null::text),
            ('7e000000-0000-4000-8000-00000000000a'::uuid, 'outbound', '+15145550199', 'queued', null::text) $$,
  'site alert: queued outbound rows, no MessageSid yet');
select is((select count(*)::int from public.system_audit_logs
            where area = 'twilio' and action = 'sms_send' and tenant_id = '7e000000-0000-4000-8000-00000000000a'
              and actor = '7e000000-0000-4000-8000-0000000000d1'), 2,
  'site alert: one sms_send audit row per message, actor the admin');
select is((select details from public.system_audit_logs
            where action = 'sms_send_skipped' and tenant_id = '7e000000-0000-4000-8000-00000000000a'),
  jsonb_build_object('request', 'site', 'skipped', (select result -> 'skipped' from answer where label = 'site')),
  'site alert: the skipped recipients are audited');

-- The provider answers: a MessageSid for e1, 21610 for e2.
select tests.authenticate_as_service_role();
select is(private.record_sms_sent(jsonb_build_object(
  'alert_id', (select id from public.sms_alerts where worker_id = '7e000000-0000-4000-8000-0000000000e1'),
  'message_sid', 'SMrs0000000000000000000000000001', 'status', 'accepted')) ->> 'status', 'accepted',
  'record: the MessageSid and the provider''s status are stored');
select is(private.record_sms_sent(jsonb_build_object(
  'alert_id', (select id from public.sms_alerts where worker_id = '7e000000-0000-4000-8000-0000000000e2'),
  'error_code', 21610, 'error_message', 'Attempt to send to unsubscribed recipient')) ->> 'status', 'failed',
  'record: a provider refusal marks the row failed');
select tests.clear_authentication();
select is((select sms_consent from public.workers where id = '7e000000-0000-4000-8000-0000000000e2'), false,
  'record 21610: consent revoked');
-- (source <> 'admin': the fixture's own consent grants above have their 'admin' proof rows, 20261130020100)
select is((select source from public.sms_consent_events where worker_id = '7e000000-0000-4000-8000-0000000000e2' and source <> 'admin'),
  'carrier_error', 'record 21610: carrier_error proof row');
select is((select details ->> 'error' from public.system_audit_logs where action = 'sms_send_failed'
            and tenant_id = '7e000000-0000-4000-8000-00000000000a'),
  '21610 Attempt to send to unsubscribed recipient', 'record failure: audited with details.error');

-- Replay with the same key: the first answer, with the current status and MessageSid; no new rows.
select tests.authenticate_as('7e000000-0000-4000-8000-0000000000d1');
insert into answer values ('site_replay', private.reserve_outbound_sms(
  '{"site_id": "7e000000-0000-4000-8000-0000000000c1", "from": "+15145550199",
    "body_fr": "Alerte: evacuez", "body_en": "Alert: evacuate", "idempotency_key": "site-alert-1"}'));
select throws_ok($$ select private.reserve_outbound_sms(
  '{"site_id": "7e000000-0000-4000-8000-0000000000c1", "from": "+15145550199",
    "body": "Autre chose", "idempotency_key": "site-alert-1"}') $$,
  '22023', null, 'the same key with another request is refused');
select tests.clear_authentication();
select is((select result -> 'duplicate' from answer where label = 'site_replay'), 'true', 'replay: duplicate');
select is((select jsonb_agg(jsonb_build_array(m ->> 'worker_id', m ->> 'status', m ->> 'message_sid') order by m ->> 'worker_id')
             from answer, jsonb_array_elements(result -> 'messages') as m where label = 'site_replay'),
  '[["7e000000-0000-4000-8000-0000000000e1", "accepted", "SMrs0000000000000000000000000001"],
    ["7e000000-0000-4000-8000-0000000000e2", "failed", null]]'::jsonb,
  'replay: the first messages with their current status and MessageSid');
select is((select result -> 'skipped' from answer where label = 'site_replay'),
          (select result -> 'skipped' from answer where label = 'site'), 'replay: the same skipped list');
select is((select count(*)::int from public.sms_alerts where tenant_id = '7e000000-0000-4000-8000-00000000000a'), 2,
  'replay: no new sms_alerts row');

-- Tenant isolation: B's admin cannot reach A's worker or site; A's member reaches nothing; a user
-- cannot send to a bare number.
select tests.authenticate_as('7e000000-0000-4000-8000-0000000000d2');
select throws_ok($$ select private.reserve_outbound_sms(
  '{"worker_id": "7e000000-0000-4000-8000-0000000000e1", "from": "+15145550199", "body": "x"}') $$,
  'P0002', 'reserve_outbound_sms: worker not found', 'admin of tenant B: A''s worker is not found');
select throws_ok($$ select private.reserve_outbound_sms(
  '{"site_id": "7e000000-0000-4000-8000-0000000000c1", "from": "+15145550199", "body": "x"}') $$,
  'P0002', 'reserve_outbound_sms: site not found', 'admin of tenant B: A''s site is not found');
select throws_ok($$ select private.reserve_outbound_sms(
  '{"to": "+15145550199", "from": "+15145550199", "body": "x"}') $$,
  '42501', null, 'a user cannot send to a bare number');
insert into answer values ('b_own', private.reserve_outbound_sms(
  '{"worker_id": "7e000000-0000-4000-8000-0000000000e6", "from": "+15145550199", "body": "Bonjour"}'));
select tests.authenticate_as('7e000000-0000-4000-8000-0000000000d3');
select throws_ok($$ select private.reserve_outbound_sms(
  '{"worker_id": "7e000000-0000-4000-8000-0000000000e1", "from": "+15145550199", "body": "x"}') $$,
  'P0002', null, 'a plain member of tenant A reaches no worker');
select tests.authenticate_as_anon();
select throws_ok($$ select private.reserve_outbound_sms('{}') $$, '42501', null, 'anon cannot call it');
select tests.clear_authentication();
select is((select jsonb_array_length(result -> 'messages') from answer where label = 'b_own'), 1,
  'admin of tenant B reserves for their own worker');
select is((select count(*)::int from public.sms_alerts where tenant_id = '7e000000-0000-4000-8000-00000000000a'), 2,
  'isolation: nothing reserved in tenant A by others');

-- Service: a single worker without consent is skipped, nothing reserved; the operator's test to a number.
select tests.authenticate_as_service_role();
insert into answer values ('svc_optout', private.reserve_outbound_sms(
  '{"worker_id": "7e000000-0000-4000-8000-0000000000e3", "from": "+15145550199", "body": "x"}'));
insert into answer values ('svc_phone', private.reserve_outbound_sms(
  '{"to": "+15145550198", "from": "+15145550199", "body": "Test SMS", "idempotency_key": "ops-test-1"}'));
insert into answer values ('svc_phone_optout', private.reserve_outbound_sms(
  '{"to": "+15145550163", "from": "+15145550199", "body": "Test SMS"}'));
select tests.clear_authentication();
select is((select result from answer where label = 'svc_optout'),
  '{"duplicate": false, "messages": [], "skipped": [{"worker_id": "7e000000-0000-4000-8000-0000000000e3", "reasons": ["no_consent"]}]}'::jsonb,
  'service, opted-out worker: skipped, no message');
select is((select result -> 'messages' -> 0 ->> 'to' from answer where label = 'svc_phone'), '+15145550198',
  'service, bare number: reserved');
select is((select result -> 'skipped' -> 0 -> 'reasons' from answer where label = 'svc_phone_optout'), '["no_consent"]',
  'service, bare number of an opted-out worker: refused');

-- The operators' "SMS sent today" counts the 4 reservations (2 site, 1 B, 1 test number).
select is(
  (SELECT COUNT(*) FROM system_audit_logs 
WHERE area = 'twilio' 
AND action = 'sms_send'
AND created_at::date = CURRENT_DATE) - (select count from sent_today_before),
  4::bigint, 'the operators'' "SMS sent today" query counts each reserved message');

select * from finish();
rollback;
