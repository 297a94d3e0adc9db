-- private.apply_sms_status: whatever the order of a message's status callbacks (every permutation,
-- with duplicates and a late one), the row ends in the lifecycle's furthest state with sent_at /
-- delivered_at set once; failures carry details.error in the audit row (found by the operators'
-- "errors of the last 24 h"); 21610 revokes consent with a carrier_error proof row; an unknown
-- MessageSid is acknowledged, changes nothing and is audited. Called as service_role.
begin;
select plan(17);

select tests.create_tenant('Status', id => '5c000000-0000-4000-8000-00000000000a');
select tests.create_worker('5c000000-0000-4000-8000-00000000000a', 'Stat', '+15145550151',
  id => '5c000000-0000-4000-8000-0000000000a1');
update public.workers set sms_consent = true, phone_verified = true;

-- Every permutation of each callback set, applied to its own queued message.
create temp table scenario (name text primary key, callbacks text[] not null, expected text not null,
                            expect_sent_at boolean, expect_delivered_at boolean);
insert into scenario values
  ('delivered', array['sending', 'sent', 'delivered'], 'delivered', true, true),
  ('read',      array['accepted', 'sent', 'delivered', 'read'], 'read', true, true),
  ('failed',    array['sending', 'sent', 'failed'], 'failed', true, false),
  ('undeliv',   array['queued', 'sending', 'undelivered'], 'undelivered', false, false),
  ('canceled',  array['scheduled', 'canceled'], 'canceled', false, false);

create temp table runs (run_id serial primary key, scenario text, sid text, callbacks text[]);
-- All permutations (4! = 24 at most) of each scenario's callbacks, each with its first callback
-- repeated at the end (a duplicate, late callback).
with recursive perms (name, done, remaining) as (
  select name, array[]::text[], callbacks from scenario
  union all
  select p.name, p.done || r.c, array_remove(p.remaining, r.c)
    from perms as p, unnest(p.remaining) as r (c)
)
insert into runs (scenario, sid, callbacks)
select name, null, done || done[1] from perms where cardinality(remaining) = 0;
update runs set sid = 'SMst' || lpad(run_id::text, 28, '0');

insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id)
select '5c000000-0000-4000-8000-00000000000a', '5c000000-0000-4000-8000-0000000000a1', 'outbound',
       '+15145550199', '+15145550151', 'test', 'queued', sid
  from runs;

grant select on runs, scenario to service_role;
select tests.authenticate_as_service_role();
do $$
declare
  r record;
  c text;
  i int;
begin
  for r in select * from runs order by run_id loop
    i := 0;
    foreach c in array r.callbacks loop
      i := i + 1;
      perform private.apply_sms_status(jsonb_build_object(
        'message_sid', r.sid, 'status', c,
        'error_code', case when c in ('failed', 'undelivered') then '30003' end,
        'error_message', case when c in ('failed', 'undelivered') then 'Unreachable destination handset' end,
        'at', '2026-11-20T10:00:00Z'::timestamptz + i * interval '1 second'));
    end loop;
  end loop;
end
$$;
select tests.clear_authentication();

select is((select count(*)::int from runs), 6 + 24 + 6 + 6 + 2, 'every permutation of every scenario ran');
select is_empty($$
  select r.run_id, r.callbacks, a.status, s.expected
    from runs as r join scenario as s on s.name = r.scenario
    join public.sms_alerts as a on a.provider_message_id = r.sid
   where a.status <> s.expected
$$, 'every order ends in the furthest state (delivered, read, failed, undelivered, canceled)');
select is_empty($$
  select r.run_id from runs as r join scenario as s on s.name = r.scenario
    join public.sms_alerts as a on a.provider_message_id = r.sid
   where (a.sent_at is not null) <> s.expect_sent_at or (a.delivered_at is not null) <> s.expect_delivered_at
$$, 'sent_at / delivered_at set exactly when the final state implies them');
-- Set once: the first callback implying it wins, a later one (even the real "sent") does not move it.
select is(
  (select a.sent_at from runs as r join public.sms_alerts as a on a.provider_message_id = r.sid
    where r.callbacks = array['delivered', 'sent', 'sending', 'delivered']),
  '2026-11-20T10:00:01Z'::timestamptz, 'sent_at is set once, by the first callback implying it');
select is_empty($$
  select r.run_id from runs as r join public.sms_alerts as a on a.provider_message_id = r.sid
   where r.scenario in ('failed', 'undeliv') and (a.error_code is distinct from 30003
                                                  or a.error_message is distinct from 'Unreachable destination handset')
$$, 'failures store the error code and message');
-- One audit row per callback; exactly one with details.error per failing message.
select is(
  (select count(*)::int from public.system_audit_logs as l join runs as r on l.target = r.sid
    where l.area = 'twilio' and l.action = 'sms_status'),
  (select sum(cardinality(callbacks))::int from runs), 'one sms_status audit row per callback');
select is_empty($$
  select r.run_id, count(l.id) filter (where l.details ->> 'error' is not null)
    from runs as r left join public.system_audit_logs as l on l.target = r.sid
   group by r.run_id, r.scenario
  having count(l.id) filter (where l.details ->> 'error' is not null)
         <> case when r.scenario in ('failed', 'undeliv') then 1 else 0 end
$$, 'a failing message has exactly one audit row with details.error (the transition), others none');
-- The operators' query, verbatim, finds them.
select is(
  (select count(*)::int from (SELECT * FROM system_audit_logs 
WHERE created_at > NOW() - INTERVAL '24 hours'
AND details->>'error' IS NOT NULL
ORDER BY created_at DESC) as q where q.target like 'SMst%'),
  12, 'the operators'' "errors of the last 24 h" query finds the 12 failures');
select is(
  (select l.details ->> 'error' from runs as r join public.system_audit_logs as l on l.target = r.sid
    where r.callbacks = array['sending', 'sent', 'failed', 'sending'] and l.details ? 'error'),
  '30003 Unreachable destination handset', 'details.error holds the code and message');

-- 21610: consent revoked once, with a carrier proof row, even when the callback repeats.
insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status, provider_message_id)
values ('5c000000-0000-4000-8000-00000000000a', '5c000000-0000-4000-8000-0000000000a1', 'outbound',
        '+15145550199', '+15145550151', 'test', 'sent', 'SMst21610000000000000000000000000');
select tests.authenticate_as_service_role();
select is(private.apply_sms_status('{"message_sid": "SMst21610000000000000000000000000", "status": "undelivered", "error_code": "21610", "error_message": "Attempt to send to unsubscribed recipient"}') -> 'consent_revoked',
  'true', '21610: consent revoked');
select is(private.apply_sms_status('{"message_sid": "SMst21610000000000000000000000000", "status": "undelivered", "error_code": "21610"}'),
  '{"known": true, "applied": false, "status": "undelivered", "previous_status": "undelivered", "consent_revoked": false}'::jsonb,
  '21610 repeated: nothing applied, nothing revoked again');
select tests.clear_authentication();
select is((select sms_consent from public.workers where id = '5c000000-0000-4000-8000-0000000000a1'), false,
  '21610: the worker no longer consents');
-- (source <> 'admin': the fixture's own consent grant above has its 'admin' proof row, 20261130020100)
select results_eq(
  $$ select new_consent, source, provider_message_id, actor from public.sms_consent_events
      where worker_id = '5c000000-0000-4000-8000-0000000000a1' and source <> 'admin' $$,
  $$ values (false, 'carrier_error', 'SMst21610000000000000000000000000', 'twilio') $$,
  '21610: one carrier_error proof row with the MessageSid');

-- Unknown MessageSid.
select tests.authenticate_as_service_role();
select is(private.apply_sms_status('{"message_sid": "SMunknown00000000000000000000000", "status": "delivered"}'),
  '{"known": false, "applied": false, "status": null, "previous_status": null, "consent_revoked": false}'::jsonb,
  'unknown MessageSid: acknowledged, nothing applied');
select throws_ok($$ select private.apply_sms_status('{"message_sid": "SMx", "status": "bogus"}') $$,
  '22023', null, 'unknown status: invalid_parameter_value');
select tests.clear_authentication();
select is((select count(*)::int from public.sms_alerts where provider_message_id = 'SMunknown00000000000000000000000'), 0,
  'unknown MessageSid: no row created');
select is((select details from public.system_audit_logs where target = 'SMunknown00000000000000000000000'),
  '{"status": "delivered", "unknown": true, "parked": true, "error_code": null}'::jsonb,
  'unknown MessageSid: audited (and parked until the send path stores it)');

select * from finish();
rollback;
