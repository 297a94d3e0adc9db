-- private.record_voice_call: the first webhook creates the voice_calls row once; the <Dial> result
-- is recorded once (status, forwarded_to, duration, ended_at) with one voice_forward audit row; a
-- retried action request changes nothing and says so; bad input is refused; API roles cannot call it.
begin;
select plan(14);

select is(private.record_voice_call('{"call_sid": "CA0001", "from": "+15145550181", "to": "+15145550199", "call_status": "ringing"}') ->> 'first_result',
          'false', 'first webhook: no dial result yet');
select private.record_voice_call('{"call_sid": "CA0001", "from": "+15145550181", "to": "+15145550199", "call_status": "ringing"}');
select is((select count(*)::int from public.voice_calls where provider_call_sid = 'CA0001'), 1, 'a retried first webhook adds no row');
select is((select status from public.voice_calls where provider_call_sid = 'CA0001'), 'ringing', 'status from CallStatus');

select is(private.record_voice_call('{"call_sid": "CA0001", "from": "+15145550181", "to": "+15145550199", "call_status": "in-progress",
                                      "dial_status": "busy", "dial_duration": "0", "forwarded_to": "+15145550100"}') ->> 'first_result',
          'true', 'the action request records the dial result');
select row_eq($$select status, forwarded_to, duration_seconds, ended_at is not null from public.voice_calls where provider_call_sid = 'CA0001'$$,
              row('busy'::text, '+15145550100'::text, 0, true), 'status, forwarded_to, duration, ended_at');
select is((select count(*)::int from public.system_audit_logs where action = 'voice_forward' and details ->> 'call_sid' = 'CA0001'), 1,
          'one voice_forward audit row');
select is((select details ->> 'dial_status' from public.system_audit_logs where action = 'voice_forward' and details ->> 'call_sid' = 'CA0001'),
          'busy', 'the audit row has the dial result');

select is(private.record_voice_call('{"call_sid": "CA0001", "from": "+15145550181", "to": "+15145550199", "call_status": "in-progress",
                                      "dial_status": "completed", "dial_duration": "9", "forwarded_to": "+15145550100"}') ->> 'first_result',
          'false', 'a retried action request is not first');
select is((select count(*)::int from public.system_audit_logs where action = 'voice_forward' and details ->> 'call_sid' = 'CA0001'), 1,
          'and writes no second audit row');
select is((select status from public.voice_calls where provider_call_sid = 'CA0001'), 'busy', 'nor changes the result');

select is(private.record_voice_call('{"call_sid": "CA0002", "from": "anonymous", "to": "+15145550199", "call_status": "in-progress",
                                      "dial_status": "no-answer", "forwarded_to": "+15145550100"}') ->> 'status',
          'no-answer', 'an action request without a first webhook creates the row (anonymous caller)');

select throws_ok($$select private.record_voice_call('{"call_sid": "XX1", "from": "+15145550181", "to": "+15145550199"}')$$,
                 '22023', null, 'a malformed CallSid is refused');
select throws_ok($$select private.record_voice_call('{"call_sid": "CA0003", "from": "+15145550181", "to": "+15145550199", "dial_status": "exploded"}')$$,
                 '22023', null, 'an unknown dial status is refused');

select ok(not has_function_privilege('authenticated', 'private.record_voice_call(jsonb)', 'execute')
          and not has_function_privilege('anon', 'private.record_voice_call(jsonb)', 'execute'),
          'API roles cannot call it');

select * from finish();
rollback;
