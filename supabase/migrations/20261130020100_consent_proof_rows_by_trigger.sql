-- Every change of workers.sms_consent writes its proof row (sms_consent_events) by trigger.
--
-- Before, each code path that flipped consent inserted the proof row itself (inbound STOP/START,
-- a 21610 status callback, a 21610 send refusal), and an edit made any other way (the dashboard's
-- table editor, a script) left none. Now the trigger writes it, whatever changed the column, so
-- the proof trail is complete by construction; and because of that the generic audit trigger
-- leaves consent-only updates to it (workers.sms_consent is a "quiet" column, 20261130020000):
-- one record per flip instead of two, which was ~40 % of an inbound STOP's database time.
--
-- What the proof row says comes from the caller, through a transaction-local setting that the
-- caller sets just before its UPDATE and clears right after:
--   c_secur360.consent_change = {"source": "keyword"|"carrier_error"|"api"|"admin", "keyword",
--                                "message_body", "provider_message_id", "actor", "at"}
-- Without it (an edit by hand): source 'admin', the actor as the audit trail names it (the
-- signed-in user's id, else the role), now(). Only roles that can run SQL can set it, and those can
-- write sms_consent_events anyway; a signed-in user through the Data API cannot (set_config is not
-- exposed), so a user's own edit is always recorded as 'admin' under their id.
create function private.record_consent_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  ctx jsonb := nullif(pg_catalog.current_setting('c_secur360.consent_change', true), '')::jsonb;
begin
  insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source, keyword,
                                         message_body, provider_message_id, actor, created_at)
  values (new.tenant_id, new.id, new.phone, new.sms_consent,
          coalesce(ctx ->> 'source', 'admin'),
          pg_catalog.left(ctx ->> 'keyword', 64),
          pg_catalog.left(ctx ->> 'message_body', 1600),
          ctx ->> 'provider_message_id',
          coalesce(ctx ->> 'actor',
                   (select auth.uid())::text,
                   nullif((select auth.role()), ''),
                   nullif(pg_catalog.current_setting('role'), 'none'),
                   session_user::text),
          coalesce((ctx ->> 'at')::timestamptz, pg_catalog.now()));
  return null;
end
$$;

comment on function private.record_consent_change() is
  'AFTER UPDATE trigger of workers.sms_consent: writes the sms_consent_events proof row of every consent change, with source/keyword/message/actor from the transaction-local setting c_secur360.consent_change (else source admin, the current user).';

revoke all on function private.record_consent_change() from public, anon, authenticated;

create trigger record_consent_change
  after update of sms_consent on public.workers
  for each row
  when (old.sms_consent is distinct from new.sms_consent)
  execute function private.record_consent_change();

-- The generic row-change audit leaves consent-only updates to the proof rows above.
select private.enable_audit('public.workers', array['sms_consent']);

-- The three callers set the context instead of inserting the proof row themselves.
-- private.handle_inbound_sms (last defined in 20261127010100): STOP/START from the worker.
create or replace function private.handle_inbound_sms(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_sid text := nullif(btrim(p ->> 'message_sid'), '');
  v_from text := nullif(btrim(p ->> 'from'), '');
  v_to text := nullif(btrim(p ->> 'to'), '');
  v_body text := coalesce(p ->> 'body', '');
  v_kind text := p ->> 'keyword_kind';
  v_keyword text := nullif(btrim(p ->> 'keyword'), '');
  v_at timestamptz := coalesce((p ->> 'received_at')::timestamptz, pg_catalog.now());
  v_new_consent boolean;
  v_alert_id bigint;
  v_worker_count int;
  v_matched jsonb;
  v_single_tenant uuid;
  v_single_worker uuid;
  v_workers jsonb;
  v_changed int;
begin
  if v_sid is null or v_from is null or v_to is null then
    raise exception 'handle_inbound_sms: message_sid, from and to are required'
      using errcode = 'invalid_parameter_value';
  end if;
  if v_kind is not null and v_kind not in ('opt_out', 'opt_in', 'help') then
    raise exception 'handle_inbound_sms: keyword_kind must be opt_out, opt_in, help or null'
      using errcode = 'invalid_parameter_value';
  end if;
  if v_kind in ('opt_out', 'opt_in') and v_keyword is null then
    raise exception 'handle_inbound_sms: keyword is required with keyword_kind %', v_kind
      using errcode = 'invalid_parameter_value';
  end if;
  v_new_consent := case v_kind when 'opt_out' then false when 'opt_in' then true end;

  -- Workers with that number, locked: a concurrent STOP and START for the same number apply one
  -- after the other, each seeing the other's result. Their consent before this message decides
  -- consent_changed.
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'worker_id', w.id, 'tenant_id', w.tenant_id, 'preferred_language', w.preferred_language,
           'sms_consent', w.sms_consent) order by w.id), '[]'),
         count(*)
    into v_matched, v_worker_count
    from (select w.id, w.tenant_id, w.preferred_language, w.sms_consent
            from public.workers as w
           where w.phone = v_from
           order by w.id
             for update) as w;

  if v_worker_count = 1 then
    v_single_tenant := (v_matched -> 0 ->> 'tenant_id')::uuid;
    v_single_worker := (v_matched -> 0 ->> 'worker_id')::uuid;
  end if;

  insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body,
                                 status, provider_message_id, created_at)
  values (v_single_tenant, v_single_worker, 'inbound', v_from, v_to, pg_catalog.left(v_body, 1600),
          'received', v_sid, v_at)
  on conflict (provider_message_id) do nothing
  returning id into v_alert_id;

  if v_alert_id is null then
    -- Replay: the first call's outcome, read back from its proof rows.
    select coalesce(pg_catalog.jsonb_agg((m - 'sms_consent') || pg_catalog.jsonb_build_object(
             'consent_changed', exists (
               select from public.sms_consent_events as e
                where e.phone = v_from and e.provider_message_id = v_sid
                  and e.worker_id = (m ->> 'worker_id')::uuid))
             order by m ->> 'worker_id'), '[]')
      into v_workers
      from pg_catalog.jsonb_array_elements(v_matched) as m;
    return pg_catalog.jsonb_build_object('duplicate', true, 'kind', v_kind, 'workers', v_workers);
  end if;

  if v_new_consent is not null then
    -- Flip only the workers whose consent changes; one proof row per changed worker.
    -- The proof rows come from the trigger private.record_consent_change, one per worker changed.
    perform pg_catalog.set_config('c_secur360.consent_change', pg_catalog.jsonb_build_object(
      'source', 'keyword', 'keyword', pg_catalog.left(v_keyword, 64), 'message_body', pg_catalog.left(v_body, 1600),
      'provider_message_id', v_sid, 'actor', 'twilio', 'at', v_at)::text, true);
    update public.workers as w
       set sms_consent = v_new_consent
     where w.phone = v_from and w.sms_consent is distinct from v_new_consent;
    get diagnostics v_changed = row_count;
    perform pg_catalog.set_config('c_secur360.consent_change', '', true);
  else
    v_changed := 0;
  end if;

  select coalesce(pg_catalog.jsonb_agg((m - 'sms_consent') || pg_catalog.jsonb_build_object(
           'consent_changed',
           v_new_consent is not null and (m -> 'sms_consent') is distinct from pg_catalog.to_jsonb(v_new_consent))
           order by m ->> 'worker_id'), '[]')
    into v_workers
    from pg_catalog.jsonb_array_elements(v_matched) as m;

  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('twilio', 'inbound', 'twilio', v_single_tenant, v_sid,
          pg_catalog.jsonb_build_object(
            'kind', v_kind,
            'keyword', case when v_kind is not null then pg_catalog.left(v_keyword, 64) end,
            'workers_matched', v_worker_count,
            'workers_consent_changed', v_changed,
            'known_sender', v_worker_count > 0));

  return pg_catalog.jsonb_build_object('duplicate', false, 'kind', v_kind, 'workers', v_workers);
end
$$;

comment on function private.handle_inbound_sms(jsonb) is
  'Applies an inbound SMS in one transaction: stores it, flips consent of every worker with that number for STOP/START keywords (one proof row each), audits it; idempotent on message_sid. Called by the sms-inbound edge function.';

revoke all on function private.handle_inbound_sms(jsonb) from public, anon, authenticated;
grant execute on function private.handle_inbound_sms(jsonb) to service_role, postgres;

-- private.apply_sms_status (last defined in 20261128040000): 21610 in a status callback.
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
    -- The carrier_error proof row comes from the trigger private.record_consent_change.
    perform pg_catalog.set_config('c_secur360.consent_change', pg_catalog.jsonb_build_object(
      'source', 'carrier_error', 'provider_message_id', v_sid, 'actor', 'twilio', 'at', v_at)::text, true);
    update public.workers as w
       set sms_consent = false
     where w.id = v_alert.worker_id and w.sms_consent;
    v_consent_revoked := found;
    perform pg_catalog.set_config('c_secur360.consent_change', '', true);
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

revoke all on function private.apply_sms_status(jsonb) from public, anon, authenticated;
grant execute on function private.apply_sms_status(jsonb) to service_role, postgres;

-- private.record_sms_sent (20261127010400): 21610 in the answer to a send.
create or replace function private.record_sms_sent(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_alert_id bigint;
  v_sid text := nullif(btrim(p ->> 'message_sid'), '');
  v_status text := coalesce(pg_catalog.lower(nullif(btrim(p ->> 'status'), '')), 'queued');
  v_error_code int;
  v_error_message text := pg_catalog.left(nullif(btrim(p ->> 'error_message'), ''), 1000);
  v_alert public.sms_alerts;
begin
  if coalesce(p ->> 'alert_id', '') !~ '^[0-9]{1,18}$' or coalesce(p ->> 'error_code', '') !~ '^[0-9]{0,9}$' then
    raise exception 'record_sms_sent: alert_id (and error_code) must be numbers'
      using errcode = 'invalid_parameter_value';
  end if;
  v_alert_id := (p ->> 'alert_id')::bigint;
  v_error_code := nullif(p ->> 'error_code', '')::int;
  if (v_sid is null) = (v_error_code is null and v_error_message is null) then
    raise exception 'record_sms_sent: either message_sid or an error is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if private.sms_status_rank(v_status) is null then
    raise exception 'record_sms_sent: unknown status %', v_status using errcode = 'invalid_parameter_value';
  end if;

  select * into v_alert from public.sms_alerts as a
   where a.id = v_alert_id and a.direction = 'outbound'
     for update;
  if not found then
    raise exception 'record_sms_sent: no outbound sms_alerts row %', v_alert_id using errcode = 'no_data_found';
  end if;

  if v_sid is not null then
    if v_alert.provider_message_id is not null and v_alert.provider_message_id <> v_sid then
      raise exception 'record_sms_sent: row % already has another MessageSid', v_alert_id
        using errcode = 'invalid_parameter_value';
    end if;
    update public.sms_alerts as a
       set provider_message_id = v_sid,
           status = case when private.sms_status_rank(v_status) > private.sms_status_rank(a.status)
                         then v_status else a.status end
     where a.id = v_alert_id
    returning * into v_alert;
  else
    update public.sms_alerts as a
       set status = 'failed', error_code = v_error_code, error_message = v_error_message
     where a.id = v_alert_id
    returning * into v_alert;

    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    values ('twilio', 'sms_send_failed', 'service_role', v_alert.tenant_id, 'sms_alerts:' || v_alert_id,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
              'error_code', v_error_code,
              'error', pg_catalog.concat_ws(' ', v_error_code::text, coalesce(v_error_message, 'send failed')))));

    if v_error_code = 21610 and v_alert.worker_id is not null then
      -- The carrier_error proof row comes from the trigger private.record_consent_change.
      perform pg_catalog.set_config('c_secur360.consent_change', pg_catalog.jsonb_build_object(
        'source', 'carrier_error', 'actor', 'twilio')::text, true);
      update public.workers as w
         set sms_consent = false
       where w.id = v_alert.worker_id and w.sms_consent;
      perform pg_catalog.set_config('c_secur360.consent_change', '', true);
    end if;
  end if;

  return pg_catalog.jsonb_build_object('alert_id', v_alert.id, 'status', v_alert.status,
                                       'message_sid', v_alert.provider_message_id,
                                       'error_code', v_alert.error_code);
end
$$;

comment on function private.record_sms_sent(jsonb) is
  'Stores Twilio''s answer for a reserved sms_alerts row: the MessageSid (status forward only), or the failure (audited with details.error; 21610 revokes consent). Called by send-sms on its service connection.';

revoke all on function private.record_sms_sent(jsonb) from public, anon, authenticated;
grant execute on function private.record_sms_sent(jsonb) to service_role, postgres;
