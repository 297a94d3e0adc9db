-- private.handle_inbound_sms(p jsonb): everything an inbound SMS changes, in one transaction and
-- one round trip from the sms-inbound edge function (which verifies the signature and recognises
-- the keyword; this function applies it).
--
-- Input: { message_sid, from, to, body, keyword_kind: 'opt_out' | 'opt_in' | 'help' | null,
--          keyword (normalised, e.g. STOP, ARRET), received_at (optional, default now()) }.
-- Output: { duplicate, kind, workers: [{ worker_id, tenant_id, preferred_language, consent_changed }] }
--   so the function can answer in the worker's language.
--
-- Idempotent on message_sid: the inbound sms_alerts row carries it in provider_message_id
-- (unique), and its INSERT ... ON CONFLICT DO NOTHING is the gate. A concurrent replay waits on
-- the unique index until the first transaction commits, then sees the conflict. A replay changes
-- nothing and rebuilds the first outcome from what the first call wrote (the consent proof rows
-- carry the MessageSid), so nothing extra has to be stored.
--
-- A number can belong to workers of several tenants (phone is unique per tenant only): a keyword
-- applies to each of them, with one proof row each. The sms_alerts row is attributed to a tenant
-- and worker only when exactly one worker has that number: picking one of several tenants would
-- show the message to that employer and not the others; the per-tenant proof rows carry the text.
--
-- The audit row holds no message body and no phone number: the trail is kept one year, while
-- message texts (sms_alerts, sms_consent_events.message_body) are kept 180 days (Loi 25: no
-- personal information past its purpose). A recognised keyword (STOP, ARRET…) is not free text,
-- so it is kept; the MessageSid is the target and leads to the message while it is retained.
--
-- SECURITY INVOKER: the edge function calls it as postgres (owner of the tables) or service_role
-- (bypasses RLS, has the needed privileges). No API role other than service_role may call it.
create function private.handle_inbound_sms(p jsonb)
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
    with changed as (
      update public.workers as w
         set sms_consent = v_new_consent
       where w.phone = v_from and w.sms_consent is distinct from v_new_consent
      returning w.id, w.tenant_id, w.phone
    )
    insert into public.sms_consent_events (tenant_id, worker_id, phone, new_consent, source, keyword,
                                           message_body, provider_message_id, actor, created_at)
    select c.tenant_id, c.id, c.phone, v_new_consent, 'keyword', pg_catalog.left(v_keyword, 64),
           pg_catalog.left(v_body, 1600), v_sid, 'twilio', v_at
      from changed as c;
    get diagnostics v_changed = row_count;
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
