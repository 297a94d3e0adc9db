-- Status callbacks that arrive before their MessageSid is stored are kept, then applied.
--
-- The send path reserves the sms_alerts row, calls Twilio, and only then stores the MessageSid
-- Twilio answered (private.record_sms_sent). Twilio may call sms-status in between: its first
-- callback ("sent") often comes within a second, and under load the send path's second round trip
-- can be slower than that. private.apply_sms_status used to acknowledge such a callback as an
-- unknown MessageSid and forget it, so the message stayed "accepted" for ever (seen with the fake
-- Twilio, which calls back within milliseconds). Twilio does not retry a status callback that was
-- answered 200, so nothing would have repaired it.
--
-- Now an unknown MessageSid's callback is parked in private.sms_status_parked, and the moment a
-- MessageSid is stored on an outbound row (whoever stores it) a trigger applies the parked
-- callbacks of that MessageSid through private.apply_sms_status, in lifecycle order, and removes
-- them. The end state is the same as if the callbacks had come after the MessageSid.
--
-- No lost update between the two: both sides take a transaction-level advisory lock on the
-- MessageSid before looking at the other's data. If the callback locks first, it parks and commits
-- before the trigger reads the parked rows; if the trigger locks first, the callback's lookup runs
-- after the MessageSid is committed and finds the row. (Without the lock, a callback could miss the
-- uncommitted MessageSid and park after the trigger had looked.)
--
-- Callbacks for MessageSids that never become ours (another application on the same account, or a
-- message already purged) would otherwise pile up: parked rows older than a day are deleted as new
-- ones are parked (index on parked_at), the way sms_send_requests expires its keys.
create table private.sms_status_parked (
  id bigint generated always as identity primary key,
  message_sid text not null,
  -- The callback as private.apply_sms_status takes it: { message_sid, status, error_code, error_message, at }.
  callback jsonb not null check (jsonb_typeof(callback) = 'object'),
  parked_at timestamptz not null default now()
);
create index sms_status_parked_message_sid_idx on private.sms_status_parked (message_sid);
create index sms_status_parked_parked_at_idx on private.sms_status_parked (parked_at);

comment on table private.sms_status_parked is
  'Twilio status callbacks that arrived before their MessageSid was stored on an sms_alerts row; applied and removed when it is (trigger), deleted after a day otherwise.';

-- In `private` (not exposed by the Data API) and used only by the two functions below, which run
-- as the service: no API role has a privilege on it, so it needs no policy.
revoke all on private.sms_status_parked from public, anon, authenticated, service_role;
grant select, insert, delete on private.sms_status_parked to service_role;
alter table private.sms_status_parked enable row level security;
create policy sms_status_parked_service on private.sms_status_parked
  for all to service_role using (true) with check (true);

-- The lock both sides take: one per MessageSid, for the rest of the transaction.
create function private.lock_message_sid(p_sid text)
returns void
language sql
volatile
set search_path = ''
as $$
  select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('sms_status:' || p_sid, 0));
$$;
comment on function private.lock_message_sid(text) is
  'Transaction-level advisory lock on a Twilio MessageSid: orders a status callback against the storing of that MessageSid.';
revoke all on function private.lock_message_sid(text) from public, anon, authenticated;
grant execute on function private.lock_message_sid(text) to service_role, postgres;

-- apply_sms_status as in 20261127010200, except: the MessageSid is locked before the lookup, and an
-- unknown MessageSid's callback is parked (audited with details.parked) instead of forgotten.
create or replace function private.apply_sms_status(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_sid text := nullif(btrim(p ->> 'message_sid'), '');
  v_status text := pg_catalog.lower(nullif(btrim(p ->> 'status'), ''));
  v_error_code int;
  v_error_message text := pg_catalog.left(nullif(btrim(p ->> 'error_message'), ''), 1000);
  v_at timestamptz := coalesce((p ->> 'at')::timestamptz, pg_catalog.now());
  v_alert public.sms_alerts;
  v_applied boolean;
  v_consent_revoked boolean := false;
  v_error text;
begin
  if v_sid is null or v_status is null then
    raise exception 'apply_sms_status: message_sid and status are required'
      using errcode = 'invalid_parameter_value';
  end if;
  if private.sms_status_rank(v_status) is null then
    raise exception 'apply_sms_status: unknown status %', v_status
      using errcode = 'invalid_parameter_value';
  end if;
  if coalesce(p ->> 'error_code', '') !~ '^[0-9]{0,9}$' then
    raise exception 'apply_sms_status: error_code must be a number'
      using errcode = 'invalid_parameter_value';
  end if;
  v_error_code := nullif(p ->> 'error_code', '')::int;

  perform private.lock_message_sid(v_sid);

  -- Locked: two callbacks of the same message apply one after the other.
  select * into v_alert
    from public.sms_alerts as a
   where a.provider_message_id = v_sid and a.direction = 'outbound'
     for update;

  if not found then
    -- Not (yet) ours: kept until the send path stores this MessageSid (see the header).
    delete from private.sms_status_parked as s where s.parked_at < pg_catalog.now() - interval '1 day';
    insert into private.sms_status_parked (message_sid, callback)
    values (v_sid, pg_catalog.jsonb_build_object('message_sid', v_sid, 'status', v_status,
                                                 'error_code', v_error_code, 'error_message', v_error_message,
                                                 'at', v_at));
    insert into public.system_audit_logs (area, action, actor, target, details)
    values ('twilio', 'sms_status', 'twilio', v_sid,
            pg_catalog.jsonb_build_object('status', v_status, 'unknown', true, 'parked', true,
                                          'error_code', v_error_code));
    return pg_catalog.jsonb_build_object('known', false, 'applied', false, 'status', null,
                                         'previous_status', null, 'consent_revoked', false);
  end if;

  v_applied := private.sms_status_rank(v_status) > private.sms_status_rank(v_alert.status)
    -- read follows delivered only; a failed message is never "read".
    and (v_status <> 'read' or v_alert.status not in ('undelivered', 'failed', 'canceled'));

  -- The timestamps follow the callbacks that imply them (sent, delivered, read), applied or late:
  -- a "sent" arriving after "failed" still tells when it left. Each is set once, by the first.
  update public.sms_alerts as a
     set status = case when v_applied then v_status else a.status end,
         sent_at = case when v_status in ('sent', 'delivered', 'read')
                        then coalesce(a.sent_at, v_at) else a.sent_at end,
         delivered_at = case when v_status in ('delivered', 'read')
                             then coalesce(a.delivered_at, v_at) else a.delivered_at end,
         error_code = case when v_applied then coalesce(v_error_code, a.error_code) else a.error_code end,
         error_message = case when v_applied then coalesce(v_error_message, a.error_message) else a.error_message end
   where a.id = v_alert.id
     and (v_applied
          or (v_status in ('sent', 'delivered', 'read') and a.sent_at is null)
          or (v_status in ('delivered', 'read') and a.delivered_at is null));
  if v_applied and v_status in ('undelivered', 'failed') then
    v_error := pg_catalog.concat_ws(' ', v_error_code::text, coalesce(v_error_message, v_status));
  end if;

  -- 21610: the carrier says the recipient unsubscribed. Revoke consent (once) with its proof row,
  -- whether or not this callback moved the status (a duplicate finds consent already off).
  if v_error_code = 21610 and v_alert.worker_id is not null then
    with revoked as (
      update public.workers as w
         set sms_consent = false
       where w.id = v_alert.worker_id and w.sms_consent
      returning w.id, w.tenant_id, w.phone
    )
    insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source,
                                           provider_message_id, actor, created_at)
    select r.tenant_id, r.id, r.phone, false, 'carrier_error', v_sid, 'twilio', v_at
      from revoked as r;
    v_consent_revoked := found;
  end if;

  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('twilio', 'sms_status', 'twilio', v_alert.tenant_id, v_sid,
          pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'status', v_status,
            'previous_status', v_alert.status,
            'applied', v_applied,
            'error_code', v_error_code,
            'error', v_error,
            'consent_revoked', v_consent_revoked)));

  return pg_catalog.jsonb_build_object(
    'known', true, 'applied', v_applied,
    'status', case when v_applied then v_status else v_alert.status end,
    'previous_status', v_alert.status, 'consent_revoked', v_consent_revoked);
end
$$;

comment on function private.apply_sms_status(jsonb) is
  'Applies a Twilio status callback: status only moves forward, timestamps set once, error stored, 21610 revokes consent with a carrier_error proof row, audited (details.error on failure); a callback for a MessageSid not stored yet is parked and applied when it is. Called by the sms-status edge function.';

-- AFTER UPDATE OF provider_message_id on outbound rows, when it goes from null to a value: the
-- parked callbacks of that MessageSid, in lifecycle order (then arrival), through apply_sms_status.
-- apply_sms_status's own UPDATE of the row does not fire this again (provider_message_id is
-- already set, the WHEN clause is false).
create function private.apply_parked_sms_status()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_callback jsonb;
begin
  perform private.lock_message_sid(new.provider_message_id);
  for v_callback in
    select s.callback
      from private.sms_status_parked as s
     where s.message_sid = new.provider_message_id
     order by private.sms_status_rank(s.callback ->> 'status'), s.id
  loop
    perform private.apply_sms_status(v_callback);
  end loop;
  delete from private.sms_status_parked as s where s.message_sid = new.provider_message_id;
  return null;
end
$$;
comment on function private.apply_parked_sms_status() is
  'AFTER UPDATE trigger on sms_alerts: when an outbound row gets its MessageSid, applies and removes the status callbacks parked for it.';
revoke all on function private.apply_parked_sms_status() from public, anon, authenticated;

create trigger apply_parked_sms_status
  after update of provider_message_id on public.sms_alerts
  for each row
  when (old.provider_message_id is null and new.provider_message_id is not null and new.direction = 'outbound')
  execute function private.apply_parked_sms_status();
