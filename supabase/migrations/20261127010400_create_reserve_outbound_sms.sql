-- private.reserve_outbound_sms(p jsonb): the sms_alerts rows of a send-sms request, reserved
-- BEFORE the provider call, and private.record_sms_sent(p jsonb): the provider's answer, after.
--
-- reserve input: { from (our number, TWILIO_PHONE_NUMBER: sms_alerts.from_number), exactly one of
--   worker_id | site_id | to (E.164; service only: the operator's test SMS), body | body_fr + body_en,
--   idempotency_key (optional) }.
-- reserve output: { duplicate, messages: [{ alert_id, worker_id, tenant_id, to, body,
--   preferred_language, status, message_sid }], skipped: [{ worker_id, reasons: [no_consent |
--   phone_not_verified] }] }.
--
-- "Impossible by construction": the only rows inserted are for workers who have sms_consent and
-- phone_verified at the moment of the insert (rows locked FOR SHARE, so a concurrent STOP waits or
-- is seen); the others come back as skipped with their reasons. A bare number (`to`) is refused
-- when it belongs to any worker without consent.
--
-- Who calls it, and why RLS still decides: SECURITY DEFINER (authenticated has no INSERT on
-- sms_alerts or system_audit_logs, and must not: direct inserts would forge alerts and audit rows),
-- executable by authenticated, service_role and postgres.
--   * The service (edge function on its own connection: postgres, or service_role) may target
--     any worker, site or number, as service_role bypasses RLS.
--   * A tenant admin (edge function `asUser`: role authenticated with the user's JWT claims) only
--     reaches workers and sites of private.admin_tenant_ids(), the very helper the workers/sites
--     write policies use: the same rule as RLS, evaluated with the caller's claims. A worker or
--     site outside it is "not found" (no_data_found), exactly as RLS would hide it; a plain member
--     reaches nothing; a bare number is refused (insufficient_privilege).
-- The caller's role is the session's SET ROLE (current_setting('role')), which SECURITY DEFINER
-- does not change (it changes current_user only); 'none' means the session role itself.
--
-- One `sms_send` audit row per reserved message (the operators' "SMS sent today" counts them),
-- target 'sms_alerts:<id>', no body nor number (the trail outlives the 180-day SMS retention).
-- Skipped recipients: one `sms_send_skipped` row with the worker ids and reasons.
create function private.reserve_outbound_sms(p jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_role text := case when pg_catalog.current_setting('role') = 'none' then session_user::text
                      else pg_catalog.current_setting('role') end;
  v_is_service boolean;
  v_admin_tenants uuid[];
  v_actor text;
  v_from text := nullif(btrim(p ->> 'from'), '');
  v_worker_id uuid;
  v_site_id uuid;
  v_to text := nullif(btrim(p ->> 'to'), '');
  v_body text := nullif(p ->> 'body', '');
  v_body_fr text := nullif(p ->> 'body_fr', '');
  v_body_en text := nullif(p ->> 'body_en', '');
  v_key text := nullif(btrim(p ->> 'idempotency_key'), '');
  v_hash text := pg_catalog.md5((p - 'idempotency_key')::text);
  v_tenant_id uuid;
  v_scope text;
  v_request private.sms_send_requests;
  v_recipients jsonb;
  v_messages jsonb;
  v_skipped jsonb;
  v_kind text;
begin
  if v_role = 'authenticated' then
    v_is_service := false;
    v_admin_tenants := array(select private.admin_tenant_ids());
    v_actor := (select auth.uid())::text;
  elsif v_role in ('service_role', 'postgres') then
    v_is_service := true;
    v_actor := coalesce((select auth.uid())::text, 'service_role');
  else
    raise exception 'reserve_outbound_sms: not allowed for role %', v_role
      using errcode = 'insufficient_privilege';
  end if;

  -- Input checks (the edge function validates first; these keep the guarantees on their own).
  if ((p ? 'worker_id')::int + (p ? 'site_id')::int + (p ? 'to')::int) <> 1 then
    raise exception 'reserve_outbound_sms: exactly one of worker_id, site_id, to is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if v_from is null then
    raise exception 'reserve_outbound_sms: from is required' using errcode = 'invalid_parameter_value';
  end if;
  if v_body is null and (v_body_fr is null or v_body_en is null) then
    raise exception 'reserve_outbound_sms: body, or body_fr and body_en, is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if greatest(length(v_body), length(v_body_fr), length(v_body_en)) > 1600 then
    raise exception 'reserve_outbound_sms: a body is longer than 1600 characters'
      using errcode = 'invalid_parameter_value';
  end if;
  begin
    v_worker_id := (p ->> 'worker_id')::uuid;
    v_site_id := (p ->> 'site_id')::uuid;
  exception when invalid_text_representation then
    raise exception 'reserve_outbound_sms: worker_id / site_id must be a uuid'
      using errcode = 'invalid_parameter_value';
  end;

  -- The recipients, resolved within the caller's reach (see header).
  if p ? 'to' then
    v_kind := 'phone';
    if not v_is_service then
      raise exception 'reserve_outbound_sms: sending to a bare number is for the service only'
        using errcode = 'insufficient_privilege';
    end if;
    if v_to is null or v_to !~ '^\+[1-9][0-9]{7,14}$' then
      raise exception 'reserve_outbound_sms: to must be an E.164 number'
        using errcode = 'invalid_parameter_value';
    end if;
    v_scope := 'service';
    select pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
             'worker_id', null, 'tenant_id', null, 'phone', v_to, 'preferred_language', 'fr',
             'reasons', case when exists (select from public.workers as w
                                           where w.phone = v_to and not w.sms_consent)
                             then '["no_consent"]'::jsonb else '[]'::jsonb end))
      into v_recipients;
  elsif v_worker_id is not null then
    v_kind := 'worker';
    select w.tenant_id into v_tenant_id
      from public.workers as w
     where w.id = v_worker_id and (v_is_service or w.tenant_id = any (v_admin_tenants));
    if not found then
      raise exception 'reserve_outbound_sms: worker not found' using errcode = 'no_data_found';
    end if;
  else
    v_kind := 'site';
    select s.tenant_id into v_tenant_id
      from public.sites as s
     where s.id = v_site_id and (v_is_service or s.tenant_id = any (v_admin_tenants));
    if not found then
      raise exception 'reserve_outbound_sms: site not found' using errcode = 'no_data_found';
    end if;
  end if;
  v_scope := coalesce(v_scope, v_tenant_id::text);

  -- Idempotency: the first request with a key inserts it; a retry (even concurrent: it waits on
  -- the primary key until the first commits) finds it and gets the first answer back.
  if v_key is not null then
    delete from private.sms_send_requests as r where r.created_at < pg_catalog.now() - interval '24 hours';
    insert into private.sms_send_requests (scope, idempotency_key, tenant_id, request_hash)
    values (v_scope, v_key, v_tenant_id, v_hash)
    on conflict (scope, idempotency_key) do nothing;
    if not found then
      select * into v_request from private.sms_send_requests as r
       where r.scope = v_scope and r.idempotency_key = v_key;
      if v_request.request_hash <> v_hash then
        raise exception 'reserve_outbound_sms: idempotency key already used for another request'
          using errcode = 'invalid_parameter_value';
      end if;
      -- The first answer, with each message's current status and MessageSid.
      select coalesce(pg_catalog.jsonb_agg(m || pg_catalog.jsonb_build_object(
               'status', a.status, 'message_sid', a.provider_message_id, 'error_code', a.error_code)
               order by (m ->> 'alert_id')::bigint), '[]')
        into v_messages
        from pg_catalog.jsonb_array_elements(v_request.result -> 'messages') as m
        left join public.sms_alerts as a on a.id = (m ->> 'alert_id')::bigint;
      return pg_catalog.jsonb_build_object('duplicate', true, 'messages', v_messages,
                                           'skipped', v_request.result -> 'skipped');
    end if;
  end if;

  if v_kind <> 'phone' then
    -- Locked FOR SHARE: a STOP for one of them waits for this reservation (and is applied after
    -- it), or has been applied already and is seen here.
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'worker_id', w.id, 'tenant_id', w.tenant_id, 'phone', w.phone,
             'preferred_language', w.preferred_language,
             'reasons', pg_catalog.to_jsonb(array_remove(array[
               case when not w.sms_consent then 'no_consent' end,
               case when not w.phone_verified then 'phone_not_verified' end], null)))
             order by w.id), '[]')
      into v_recipients
      from (select * from public.workers as w
             where w.tenant_id = v_tenant_id
               and (case when v_kind = 'worker' then w.id = v_worker_id else w.site_id = v_site_id end)
             order by w.id
               for share) as w;
  end if;

  with eligible as (
    select r, (r ->> 'preferred_language') as lang
      from pg_catalog.jsonb_array_elements(v_recipients) as r
     where r -> 'reasons' = '[]'::jsonb
  ), inserted as (
    insert into public.sms_alerts (tenant_id, worker_id, direction, from_number, to_number, body, status)
    select (e.r ->> 'tenant_id')::uuid, (e.r ->> 'worker_id')::uuid, 'outbound', v_from, e.r ->> 'phone',
           coalesce(case when e.lang = 'en' then v_body_en else v_body_fr end, v_body), 'queued'
      from eligible as e
    returning id, tenant_id, worker_id, to_number, body
  ), audited as (
    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    select 'twilio', 'sms_send', v_actor, i.tenant_id, 'sms_alerts:' || i.id,
           pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
             'status', 'queued', 'request', v_kind, 'worker_id', i.worker_id,
             'site_id', v_site_id, 'idempotency_key', v_key))
      from inserted as i
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'alert_id', i.id, 'worker_id', i.worker_id, 'tenant_id', i.tenant_id, 'to', i.to_number,
           'body', i.body,
           'preferred_language', (select e.lang from eligible as e
                                   where (e.r ->> 'worker_id')::uuid is not distinct from i.worker_id
                                   limit 1))
           order by i.id), '[]')
    into v_messages
    from inserted as i;

  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'worker_id', r -> 'worker_id', 'reasons', r -> 'reasons')), '[]')
    into v_skipped
    from pg_catalog.jsonb_array_elements(v_recipients) as r
   where r -> 'reasons' <> '[]'::jsonb;

  if v_skipped <> '[]'::jsonb then
    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    values ('twilio', 'sms_send_skipped', v_actor, v_tenant_id,
            coalesce('workers:' || v_worker_id, 'sites:' || v_site_id, 'phone'),
            pg_catalog.jsonb_build_object('request', v_kind, 'skipped', v_skipped));
  end if;

  if v_key is not null then
    update private.sms_send_requests as r
       set result = pg_catalog.jsonb_build_object('messages', v_messages, 'skipped', v_skipped)
     where r.scope = v_scope and r.idempotency_key = v_key;
  end if;

  select coalesce(pg_catalog.jsonb_agg(m || '{"status": "queued", "message_sid": null, "error_code": null}'::jsonb
                                       order by (m ->> 'alert_id')::bigint), '[]')
    into v_messages
    from pg_catalog.jsonb_array_elements(v_messages) as m;
  return pg_catalog.jsonb_build_object('duplicate', false, 'messages', v_messages, 'skipped', v_skipped);
end
$$;

comment on function private.reserve_outbound_sms(jsonb) is
  'Reserves queued sms_alerts rows (one per consenting, verified recipient) before the provider call, returns the others as skipped with reasons; idempotent on idempotency_key; audits sms_send. Tenant admins (role authenticated) reach only private.admin_tenant_ids().';

revoke all on function private.reserve_outbound_sms(jsonb) from public, anon;
grant execute on function private.reserve_outbound_sms(jsonb) to authenticated, service_role, postgres;

-- private.record_sms_sent(p jsonb): the provider's answer for one reserved row.
-- Input: { alert_id, message_sid, status } after success, or { alert_id, error_code, error_message }
-- after a refusal. Service only (the edge function records on its own connection whoever asked:
-- the row was reserved under the caller's rights, this only stores what Twilio answered).
-- Success sets the MessageSid once (a retry with the same SID changes nothing) and moves the status
-- forward only (a status callback may have been applied already). Failure marks the row failed
-- with the error, writes an `sms_send_failed` audit row with details.error (the operators'
-- "errors of the last 24 h"), and for 21610 (recipient unsubscribed at the carrier) revokes the
-- worker's consent with a carrier_error proof row, as private.apply_sms_status does.
create function private.record_sms_sent(p jsonb)
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
      with revoked as (
        update public.workers as w
           set sms_consent = false
         where w.id = v_alert.worker_id and w.sms_consent
        returning w.id, w.tenant_id, w.phone
      )
      insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source, actor)
      select r.tenant_id, r.id, r.phone, false, 'carrier_error', 'twilio' from revoked as r;
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
