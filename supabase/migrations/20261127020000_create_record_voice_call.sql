-- private.record_voice_call(p jsonb): voice-inbound's database work in one call (one round trip).
--
-- Input: { call_sid (CA…), from (E.164 or e.g. 'anonymous'), to (our number, E.164),
--          call_status (Twilio's CallStatus) } for the first webhook of a call, plus
--        { dial_status, dial_duration, forwarded_to } for the <Dial action> request.
-- Output: { call_id, status, first_result } where first_result is true when this request is the
--   first to record the dial's result (a retried action request gets false: the caller then does
--   not act on it twice; the missed-call SMS has its own idempotency key anyway).
--
-- First webhook: the voice_calls row (a retried webhook changes nothing). Action request: the row's
-- status becomes the dial result, with forwarded_to, the duration and ended_at, and one
-- `voice_forward` audit row (area twilio) with the CallSid and the dial result; if the first
-- webhook never reached us the row is created here. No phone number in the audit details: the trail
-- outlives the call log's retention.
create function private.record_voice_call(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_sid text := p ->> 'call_sid';
  v_from text := nullif(btrim(p ->> 'from'), '');
  v_to text := p ->> 'to';
  v_call_status text := pg_catalog.lower(coalesce(p ->> 'call_status', 'ringing'));
  v_dial_status text := pg_catalog.lower(nullif(p ->> 'dial_status', ''));
  v_duration int;
  v_forwarded_to text := nullif(p ->> 'forwarded_to', '');
  v_call public.voice_calls;
  v_first boolean := false;
  c_statuses constant text[] := array['queued', 'ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled'];
begin
  if v_sid is null or v_sid !~ '^CA[0-9A-Za-z]{1,62}$' or v_from is null or v_to is null
     or coalesce(p ->> 'dial_duration', '') !~ '^[0-9]{0,9}$' then
    raise exception 'record_voice_call: call_sid, from, to are required (dial_duration a number)'
      using errcode = 'invalid_parameter_value';
  end if;
  if not (v_call_status = any (c_statuses)) or (v_dial_status is not null and not (v_dial_status = any (c_statuses))) then
    raise exception 'record_voice_call: unknown call status' using errcode = 'invalid_parameter_value';
  end if;
  v_duration := nullif(p ->> 'dial_duration', '')::int;

  if v_dial_status is null then
    insert into public.voice_calls (provider_call_sid, from_number, to_number, status)
    values (v_sid, pg_catalog.left(v_from, 64), v_to, v_call_status)
    on conflict (provider_call_sid) do nothing;
    select * into v_call from public.voice_calls as c where c.provider_call_sid = v_sid;
  else
    insert into public.voice_calls (provider_call_sid, from_number, to_number, status)
    values (v_sid, pg_catalog.left(v_from, 64), v_to, v_call_status)
    on conflict (provider_call_sid) do nothing;
    -- ended_at is set once: a retried action request finds it and changes nothing.
    update public.voice_calls as c
       set status = v_dial_status, forwarded_to = v_forwarded_to, duration_seconds = v_duration,
           ended_at = greatest(pg_catalog.now(), c.started_at)
     where c.provider_call_sid = v_sid and c.ended_at is null
    returning * into v_call;
    v_first := found;
    if v_first then
      insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
      values ('twilio', 'voice_forward', 'twilio', v_call.tenant_id, 'voice_calls:' || v_call.id,
              pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'call_sid', v_sid, 'dial_status', v_dial_status, 'dial_duration', v_duration,
                'forwarded', v_forwarded_to is not null)));
    else
      select * into v_call from public.voice_calls as c where c.provider_call_sid = v_sid;
    end if;
  end if;

  return pg_catalog.jsonb_build_object('call_id', v_call.id, 'status', v_call.status, 'first_result', v_first);
end
$$;

comment on function private.record_voice_call(jsonb) is
  'voice-inbound: the voice_calls row of a call (first webhook), then the <Dial> result once (status, forwarded_to, duration, ended_at) with a voice_forward audit row.';

revoke all on function private.record_voice_call(jsonb) from public, anon, authenticated;
grant execute on function private.record_voice_call(jsonb) to service_role, postgres;
