-- Every change of workers.sms_consent leaves exactly one sms_consent_events proof row, whatever
-- made it (20261130020100): the SMS functions (source and message from their context), a tenant
-- admin through the API, a script or the dashboard (source 'admin', the actor named). A
-- consent-only change is recorded there and not a second time by the generic row audit
-- (sms_consent is a quiet column of workers, 20261130020000); any other change still is.
begin;
select plan(17);

select tests.create_tenant('Consent proof (test)', id => 'fc000000-0000-4000-8000-000000000000');
select tests.create_member('fc000000-0000-4000-8000-000000000000', 'admin', 'admin.consent@proof.example.com',
  id => 'fc000000-0000-4000-8000-0000000000a1');
insert into public.workers (id, tenant_id, full_name, phone, preferred_language, sms_consent, phone_verified)
values ('fc000000-0000-4000-8000-000000000001', 'fc000000-0000-4000-8000-000000000000', 'Preuve Un', '+15145550161', 'fr', true, true),
       ('fc000000-0000-4000-8000-000000000002', 'fc000000-0000-4000-8000-000000000000', 'Preuve Deux', '+15145550162', 'en', true, true);

select has_trigger('public', 'workers', 'record_consent_change', 'workers has the consent proof trigger');
select is_definer('private', 'record_consent_change', array[]::name[],
  'the proof trigger is security definer (an admin cannot write sms_consent_events directly)');

-- 1. By hand, as the database role (a script, the dashboard's SQL editor): source admin.
update public.workers set sms_consent = false where id = 'fc000000-0000-4000-8000-000000000001';
select results_eq(
  $$ select tenant_id, phone, new_consent, source, keyword, message_body, provider_message_id, actor
       from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000001' $$,
  $$ values ('fc000000-0000-4000-8000-000000000000'::uuid, '+15145550161', false, 'admin', null::text, null::text, null::text, 'postgres') $$,
  'a change by hand: one proof row, source admin, actor the database role');
select is_empty(
  $$ select from public.system_audit_logs
      where target = 'workers:fc000000-0000-4000-8000-000000000001' and action = 'update' $$,
  'a consent-only change is not recorded a second time by the row audit');

-- 2. The same value again, and a change of another column: no proof row.
update public.workers set sms_consent = false where id = 'fc000000-0000-4000-8000-000000000001';
update public.workers set full_name = 'Preuve Un Bis' where id = 'fc000000-0000-4000-8000-000000000001';
select is((select count(*)::int from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000001'), 1,
  'no proof row when consent does not change');
select results_eq(
  $$ select details -> 'changed' from public.system_audit_logs
      where target = 'workers:fc000000-0000-4000-8000-000000000001' and action = 'update' $$,
  $$ values ('{"full_name": {"old": "Preuve Un", "new": "Preuve Un Bis"}}'::jsonb) $$,
  'a change of another column is audited as before');

-- 3. Consent and another column together: proof row AND row audit with both columns.
update public.workers set sms_consent = true, preferred_language = 'en' where id = 'fc000000-0000-4000-8000-000000000001';
select is((select count(*)::int from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000001'), 2,
  'consent changed with another column: a proof row');
select results_eq(
  $$ select details -> 'changed' -> 'sms_consent', details -> 'changed' -> 'preferred_language'
       from public.system_audit_logs
      where target = 'workers:fc000000-0000-4000-8000-000000000001' and action = 'update' order by id desc limit 1 $$,
  $$ values ('{"old": false, "new": true}'::jsonb, '{"old": "fr", "new": "en"}'::jsonb) $$,
  '... and the row audit keeps every changed column, consent included');

-- 4. A tenant admin through the API (JWT): source admin, actor the user.
select tests.authenticate_as('fc000000-0000-4000-8000-0000000000a1');
update public.workers set sms_consent = false where id = 'fc000000-0000-4000-8000-000000000002';
select tests.clear_authentication();
select results_eq(
  $$ select source, actor from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000002' $$,
  $$ values ('admin', 'fc000000-0000-4000-8000-0000000000a1') $$,
  'a tenant admin''s change: source admin, actor the signed-in user');

-- 5. An inbound START through private.handle_inbound_sms: the keyword, the message, Twilio.
select is(
  (private.handle_inbound_sms(jsonb_build_object(
     'message_sid', 'SM' || repeat('c', 32), 'from', '+15145550162', 'to', '+15145550199',
     'body', ' Start! ', 'keyword_kind', 'opt_in', 'keyword', 'START', 'received_at', '2026-11-20T12:00:00Z'))
   -> 'workers' -> 0 ->> 'consent_changed')::boolean,
  true, 'inbound START: reported as a consent change');
select results_eq(
  $$ select new_consent, source, keyword, message_body, provider_message_id, actor, created_at
       from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000002' order by id desc limit 1 $$,
  $$ values (true, 'keyword', 'START', ' Start! ', 'SM' || repeat('c', 32), 'twilio', '2026-11-20T12:00:00Z'::timestamptz) $$,
  'inbound START: the proof row carries the keyword, the message, its SID, Twilio and when it came');
select is((select count(*)::int from public.sms_consent_events where worker_id = 'fc000000-0000-4000-8000-000000000002'), 2,
  'inbound START: one proof row, not two');
select is(current_setting('c_secur360.consent_change', true), '',
  'the SMS function clears its context after its update');

-- 6. ... so a later change in the same transaction is not passed off as the worker's keyword.
update public.workers set sms_consent = false where id = 'fc000000-0000-4000-8000-000000000002';
select results_eq(
  $$ select source, keyword, actor from public.sms_consent_events
      where worker_id = 'fc000000-0000-4000-8000-000000000002' order by id desc limit 1 $$,
  $$ values ('admin', null::text, 'postgres') $$,
  'a change after the SMS function in the same transaction: source admin');

-- 7. A carrier refusal (21610) in a status callback: source carrier_error, once.
insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id)
values ('fc000000-0000-4000-8000-000000000000', 'fc000000-0000-4000-8000-000000000001', 'outbound',
        '+15145550199', '+15145550161', 'Alerte', 'sent', 'SM' || repeat('d', 32));
select is(
  (private.apply_sms_status(jsonb_build_object('message_sid', 'SM' || repeat('d', 32), 'status', 'undelivered',
     'error_code', '21610', 'error_message', 'unsubscribed')) ->> 'consent_revoked')::boolean,
  true, '21610: consent revoked');
select results_eq(
  $$ select new_consent, source, provider_message_id, actor from public.sms_consent_events
      where worker_id = 'fc000000-0000-4000-8000-000000000001' order by id desc limit 1 $$,
  $$ values (false, 'carrier_error', 'SM' || repeat('d', 32), 'twilio') $$,
  '21610: one carrier_error proof row with the message''s SID');

-- 8. enable_audit refuses a quiet column the table does not have (it would silence nothing).
select throws_ok($$ select private.enable_audit('public.workers', array['sms_consnet']) $$, '42703', null,
  'enable_audit: a misspelt quiet column is refused');

select * from finish();
rollback;
