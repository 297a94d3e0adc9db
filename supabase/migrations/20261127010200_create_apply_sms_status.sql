-- private.apply_sms_status(p jsonb): a Twilio delivery status callback, applied in one round trip
-- from the sms-status edge function (which verifies the signature and parses the form).
--
-- Input: { message_sid, status, error_code (optional), error_message (optional), at (optional,
--          default now()) }. Output: { known, applied, status (the row's status afterwards),
--          previous_status, consent_revoked }.
--
-- Callbacks arrive late, twice or out of order, so the status only moves forward along Twilio's
-- lifecycle, by rank:
--   queued 0 -> accepted, scheduled 1 -> sending 2 -> sent 3 -> delivered, undelivered, failed,
--   canceled 4 (terminal) -> read 5 (only after delivered).
-- A callback whose rank is not above the row's is recorded in the audit trail and changes nothing,
-- so any order of the same set of callbacks ends in the same state (the highest one). sent_at and
-- delivered_at are set once, by the first callback that implies them (sent / delivered / read),
-- even a late one that does not move the status; an error code is stored with the failure that
-- carried it.
--
-- Error 21610 ("Attempt to send to unsubscribed recipient") means the carrier has the number
-- opted out: the worker's consent is revoked with a proof row (source carrier_error), so no later
-- alert is reserved for them (private.reserve_outbound_sms refuses workers without consent).
--
-- Every callback writes one audit row (area twilio, action sms_status; the operators' "last 10
-- SMS events" query matches sms_%). A callback that moved the message to failed/undelivered sets
-- details.error, which the operators' "errors of the last 24 h" query finds. An unknown MessageSid
-- (not ours, or already purged) is acknowledged, changes nothing and is audited with details.unknown.
--
-- SECURITY INVOKER, service only (postgres / service_role), like private.handle_inbound_sms.
create function private.sms_status_rank(status text)
returns int
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case status
    when 'queued' then 0
    when 'accepted' then 1 when 'scheduled' then 1
    when 'sending' then 2
    when 'sent' then 3
    when 'delivered' then 4 when 'undelivered' then 4 when 'failed' then 4 when 'canceled' then 4
    when 'read' then 5
  end
$$;
comment on function private.sms_status_rank(text) is
  'Position of an outbound Twilio message status in its lifecycle (null for unknown statuses); a status callback applies only if it ranks higher than the current status.';
revoke all on function private.sms_status_rank(text) from public, anon, authenticated;
grant execute on function private.sms_status_rank(text) to service_role, postgres;

create function private.apply_sms_status(p jsonb)
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

  -- Locked: two callbacks of the same message apply one after the other.
  select * into v_alert
    from public.sms_alerts as a
   where a.provider_message_id = v_sid and a.direction = 'outbound'
     for update;

  if not found then
    insert into public.system_audit_logs (area, action, actor, target, details)
    values ('twilio', 'sms_status', 'twilio', v_sid,
            pg_catalog.jsonb_build_object('status', v_status, 'unknown', true, 'error_code', v_error_code));
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
  'Applies a Twilio status callback: status only moves forward, timestamps set once, error stored, 21610 revokes consent with a carrier_error proof row, audited (details.error on failure). Called by the sms-status edge function.';

revoke all on function private.apply_sms_status(jsonb) from public, anon, authenticated;
grant execute on function private.apply_sms_status(jsonb) to service_role, postgres;
