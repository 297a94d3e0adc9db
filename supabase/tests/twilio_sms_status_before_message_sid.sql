-- A status callback that arrives before the send path has stored its MessageSid is not lost: it is
-- parked (private.sms_status_parked) and applied, in lifecycle order, the moment the MessageSid is
-- stored (private.record_sms_sent → trigger), ending in the state the callbacks would have given
-- had they come after it, 21610 included. Parked callbacks of MessageSids that never become ours
-- expire after a day. API roles cannot see the parking table. Called as service_role.
begin;
select plan(14);

select tests.create_tenant('Early status', id => '5d000000-0000-4000-8000-00000000000a');
select tests.create_worker('5d000000-0000-4000-8000-00000000000a', 'Tot', '+15145550153',
  id => '5d000000-0000-4000-8000-0000000000a1');
select tests.create_worker('5d000000-0000-4000-8000-00000000000a', 'Refus', '+15145550154',
  id => '5d000000-0000-4000-8000-0000000000a2');
update public.workers set sms_consent = true, phone_verified = true
 where tenant_id = '5d000000-0000-4000-8000-00000000000a';

-- Two reserved rows, as private.reserve_outbound_sms leaves them: no MessageSid yet.
insert into public.sms_alerts (id, tenant_id, worker_id, direction, from_number, to_number, body, status)
overriding system value values
  (990001, '5d000000-0000-4000-8000-00000000000a', '5d000000-0000-4000-8000-0000000000a1', 'outbound',
   '+15145550199', '+15145550153', 'Alerte test', 'queued'),
  (990002, '5d000000-0000-4000-8000-00000000000a', '5d000000-0000-4000-8000-0000000000a2', 'outbound',
   '+15145550199', '+15145550154', 'Alerte test', 'queued');

select tests.authenticate_as_service_role();
-- Twilio calls back before record_sms_sent has run: delivered first, then sent (out of order).
select is(private.apply_sms_status(jsonb_build_object('message_sid', 'SMea0000000000000000000000000001',
  'status', 'delivered', 'at', '2026-11-20T10:00:02Z')) ->> 'known', 'false',
  'a callback for a MessageSid not stored yet is acknowledged as unknown');
select is(private.apply_sms_status(jsonb_build_object('message_sid', 'SMea0000000000000000000000000001',
  'status', 'sent', 'at', '2026-11-20T10:00:01Z')) ->> 'known', 'false', 'a second early callback too');
select is(private.apply_sms_status(jsonb_build_object('message_sid', 'SMea0000000000000000000000000002',
  'status', 'failed', 'error_code', '21610', 'error_message', 'Attempt to send to unsubscribed recipient')) ->> 'known', 'false',
  'an early failure with 21610');
select tests.clear_authentication();

select is((select count(*)::int from private.sms_status_parked where message_sid like 'SMea%'), 3,
  'the three early callbacks are parked');
select is((select status from public.sms_alerts where id = 990001), 'queued', 'the row is not touched yet');
select is((select count(*)::int from public.system_audit_logs
            where target = 'SMea0000000000000000000000000001' and (details ->> 'parked')::boolean), 2,
  'each parked callback is audited as parked');

-- The send path stores the MessageSid Twilio answered, with Twilio's initial status.
select tests.authenticate_as_service_role();
select is(private.record_sms_sent(jsonb_build_object('alert_id', 990001,
  'message_sid', 'SMea0000000000000000000000000001', 'status', 'accepted')) ->> 'message_sid',
  'SMea0000000000000000000000000001', 'record_sms_sent stores the MessageSid');
select private.record_sms_sent(jsonb_build_object('alert_id', 990002,
  'message_sid', 'SMea0000000000000000000000000002', 'status', 'accepted'));
select tests.clear_authentication();

select is((select row(status, sent_at, delivered_at)::text from public.sms_alerts where id = 990001),
  row('delivered', '2026-11-20T10:00:01Z'::timestamptz, '2026-11-20T10:00:02Z'::timestamptz)::text,
  'the parked callbacks are applied: delivered, with sent_at and delivered_at from the callbacks');
select is((select row(status, error_code)::text from public.sms_alerts where id = 990002),
  row('failed', 21610)::text, 'the parked failure is applied with its error code');
select is((select sms_consent from public.workers where id = '5d000000-0000-4000-8000-0000000000a2'), false,
  'a parked 21610 revokes consent once applied');
-- (source <> 'admin': the fixture's own consent grants above have their 'admin' proof rows, 20261130020100)
select is((select source from public.sms_consent_events where worker_id = '5d000000-0000-4000-8000-0000000000a2' and source <> 'admin'),
  'carrier_error', '... with its carrier_error proof row');
select is((select count(*)::int from private.sms_status_parked where message_sid like 'SMea%'), 0,
  'applied callbacks leave the parking table');

-- A MessageSid that never becomes ours: its callback is dropped after a day, when another is parked.
insert into private.sms_status_parked (message_sid, callback, parked_at)
values ('SMea00000000000000000000000000ff', '{"message_sid": "SMea00000000000000000000000000ff", "status": "sent"}',
        now() - interval '25 hours');
select tests.authenticate_as_service_role();
select private.apply_sms_status(jsonb_build_object('message_sid', 'SMea00000000000000000000000000fe', 'status', 'sent'));
select tests.clear_authentication();
select is((select array_agg(message_sid order by message_sid) from private.sms_status_parked where message_sid like 'SMea%'),
  array['SMea00000000000000000000000000fe'], 'parked callbacks older than a day are deleted as new ones are parked');

select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from private.sms_status_parked $$, '42501', null,
  'API roles cannot read the parking table');
select tests.clear_authentication();

select * from finish();
rollback;
