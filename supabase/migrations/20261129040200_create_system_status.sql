-- private.system_status(p jsonb): everything the `system-status` function reports that lives in
-- the database, gathered in ONE call (one round trip: the function's p99 stays well under 100 ms
-- locally), the verdict of each check, the overall verdict, and one history row.
--
-- Input (built by supabase/functions/system-status/handler.ts):
--   { "caller": { "kind": "service" | "user" | "nobody", "user_id": "<uuid of a verified session>" },
--     "settings": [ { "name", "status": ok | missing | malformed, "reason"?, "optional", "seed",
--                     "facts"? } ],   -- _shared/env.ts settingsReport(): verdicts, never values
--     "db_size_quota_mb": 500,
--     "record": true,                -- write the history row (authorised callers only anyway)
--     "evaluate_alerts": false }     -- recorded in the history row
-- Output, for an authorised caller (the service, or a user who is owner/admin of a tenant):
--   { "authorized": true, "caller": "service" | "admin", "overall": "ok" | "degraded",
--     "checked_at", "settings": [ …the input list, with the live-mode cross-check applied ],
--     "checks": { settings, database, cron, sms, stripe_webhooks, billing_sync, database_size },
--     "thresholds": {…}, "open_alerts": [ … ] }
-- and for anyone else only { "authorized": false, "overall": … }: the bare liveness answer.
--
-- Each check: "status" ok | fail | unknown (no data to judge: does not degrade) and its numbers.
--   settings        fail: one of the 17 settings of the operations guide is not ok, or any other
--                   setting is malformed, or missing and required. A test-mode Stripe key
--                   (sk_test_/rk_test_) is malformed when live-mode events arrived in the last 30
--                   days ("test key in a live project": the webhook's account is live).
--   database        reachable (it answered this call) and the last applied migration
--                   (supabase_migrations.schema_migrations, written by `supabase db push` / `migration up`).
--   cron            each pg_cron job with its last run; fail: an active job's last run failed.
--   sms             outbound SMS created in the last 24 h (canceled ones aside): delivery rate =
--                   delivered (or read) / decided (delivered, read, undelivered, failed); error rate =
--                   undelivered or failed / all. fail: delivery rate not above 95 % or error rate
--                   above 5 % (the guide's figures). No message: unknown.
--   stripe_webhooks Stripe events received in the last 24 h (public.billing_events): failed =
--                   not processed with an error. fail: 1 % or more failed. No event: unknown.
--   billing_sync    time since the last billing_sync audit row whose details.status is complete
--                   (area 'billing'; written by billing-sync). fail: more than 26 h (a daily run at
--                   04:00 plus slack), counted from the first run when none completed yet; no run
--                   ever: unknown.
--   database_size   all databases of the cluster (as the hosted plan counts them) against
--                   DB_SIZE_QUOTA_MB; fail: above 80 %.
-- No error text is ever returned (a provider's message can quote a fragment of a key): statuses,
-- counts and times only.
--
-- Runs as its caller, postgres (the functions' SUPABASE_DB_URL role, as on hosted Supabase):
-- postgres bypasses RLS and reads cron.job / cron.job_run_details (pg_cron's after-create grants),
-- supabase_migrations (it created it) and pg_database_size (pg_monitor). No API role may call it.
create function private.system_status(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  -- Thresholds: the operations guide's "Surveillance système" and "Alertes automatiques".
  c_delivery_min constant numeric := 0.95;
  c_sms_error_max constant numeric := 0.05;
  c_webhook_failure_max constant numeric := 0.01;
  c_db_size_max constant numeric := 0.80;
  c_billing_sync_max constant interval := interval '26 hours';
  c_window constant interval := interval '24 hours';
  c_live_events_window constant interval := interval '30 days';
  c_history_kept constant interval := interval '30 days';
  v_now constant timestamptz := now();
  v_caller text := coalesce(p #>> '{caller,kind}', 'nobody');
  v_user_text text := p #>> '{caller,user_id}';
  v_role text;
  v_settings jsonb := coalesce(p -> 'settings', '[]'::jsonb);
  v_quota_mb numeric;
  v_checks jsonb;
  v_overall text;
  -- settings
  v_seed_total integer;
  v_seed_ok integer;
  v_setting_problems jsonb;
  -- database
  v_last_migration jsonb;
  v_migrations integer;
  -- cron
  v_cron_jobs jsonb;
  v_cron_failed jsonb;
  -- sms
  v_sms_total bigint;
  v_sms_delivered bigint;
  v_sms_failed bigint;
  v_delivery_rate numeric;
  v_sms_error_rate numeric;
  -- stripe webhooks
  v_events bigint;
  v_events_failed bigint;
  v_events_pending bigint;
  v_webhook_failure_rate numeric;
  -- billing sync
  v_sync_last_at timestamptz;
  v_sync_last_status text;
  v_sync_first_at timestamptz;
  v_sync_complete_at timestamptz;
  v_sync_status text;
  -- database size
  v_db_bytes bigint;
  v_quota_bytes bigint;
  v_db_ratio numeric;
begin
  if p is null or jsonb_typeof(p) <> 'object' or jsonb_typeof(v_settings) <> 'array' then
    raise exception 'system_status: p must be an object with a settings array' using errcode = 'invalid_parameter_value';
  end if;
  if jsonb_typeof(p -> 'db_size_quota_mb') is distinct from 'number' or (p ->> 'db_size_quota_mb')::numeric <= 0 then
    raise exception 'system_status: db_size_quota_mb must be a positive number' using errcode = 'invalid_parameter_value';
  end if;
  v_quota_mb := (p ->> 'db_size_quota_mb')::numeric;

  -- Who may see the full answer: the service, or a user who is owner/admin of at least one tenant.
  if v_caller = 'service' then
    v_role := 'service';
  elsif v_caller = 'user'
    and v_user_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    and exists (select from public.tenant_members as tm
                where tm.user_id = v_user_text::uuid and tm.role in ('owner', 'admin')) then
    v_role := 'admin';
  end if;

  -- ---- settings ------------------------------------------------------------------------------
  -- A test-mode key in a project whose Stripe webhook delivers live-mode events.
  if exists (select from public.billing_events as e
             where e.livemode and e.received_at > v_now - c_live_events_window) then
    select coalesce(jsonb_agg(
             case when s.e ->> 'name' = 'STRIPE_SECRET_KEY' and s.e ->> 'status' = 'ok'
                       and s.e #>> '{facts,stripeMode}' = 'test'
                  then s.e || jsonb_build_object(
                         'status', 'malformed',
                         'reason', 'is a test-mode key (sk_test_ or rk_test_) but this project receives live-mode Stripe events: use the live key')
                  else s.e end
             order by s.ord), '[]'::jsonb)
      into v_settings
      from jsonb_array_elements(v_settings) with ordinality as s (e, ord);
  end if;

  select count(*) filter (where coalesce((s.e ->> 'seed')::boolean, false)),
         count(*) filter (where coalesce((s.e ->> 'seed')::boolean, false) and s.e ->> 'status' = 'ok'),
         coalesce(jsonb_agg(jsonb_build_object('name', s.e ->> 'name', 'status', s.e ->> 'status') order by s.ord)
                    filter (where s.e ->> 'status' = 'malformed'
                               or (s.e ->> 'status' = 'missing'
                                   and (coalesce((s.e ->> 'seed')::boolean, false)
                                        or not coalesce((s.e ->> 'optional')::boolean, false)))),
                  '[]'::jsonb)
    into v_seed_total, v_seed_ok, v_setting_problems
    from jsonb_array_elements(v_settings) with ordinality as s (e, ord);

  -- ---- database: the last applied migration --------------------------------------------------
  if to_regclass('supabase_migrations.schema_migrations') is not null then
    select jsonb_build_object('version', m.version, 'name', m.name)
      into v_last_migration
      from supabase_migrations.schema_migrations as m
     order by m.version desc
     limit 1;
    select count(*) into v_migrations from supabase_migrations.schema_migrations;
  end if;

  -- ---- pg_cron: each job and its last run ----------------------------------------------------
  -- cron.job_run_details has no index on jobid (pg_cron's table, not ours): the lateral walks the
  -- run ids backwards from the newest; private.evaluate_system_alerts keeps that history to 30 days.
  select coalesce(jsonb_agg(jsonb_build_object(
           'name', coalesce(j.jobname, 'job ' || j.jobid),
           'schedule', j.schedule,
           'active', j.active,
           'last_run', case when r.runid is null then null
                            else jsonb_build_object('status', r.status, 'started_at', r.start_time,
                                                    'finished_at', r.end_time) end)
           order by coalesce(j.jobname, 'job ' || j.jobid)), '[]'::jsonb),
         coalesce(jsonb_agg(coalesce(j.jobname, 'job ' || j.jobid) order by coalesce(j.jobname, 'job ' || j.jobid))
                    filter (where j.active and r.status = 'failed'), '[]'::jsonb)
    into v_cron_jobs, v_cron_failed
    from cron.job as j
    left join lateral (
      select d.runid, d.status, d.start_time, d.end_time
        from cron.job_run_details as d
       where d.jobid = j.jobid
       order by d.runid desc
       limit 1
    ) as r on true;

  -- ---- SMS over 24 h ---------------------------------------------------------------------------
  select count(*),
         count(*) filter (where a.status in ('delivered', 'read')),
         count(*) filter (where a.status in ('undelivered', 'failed'))
    into v_sms_total, v_sms_delivered, v_sms_failed
    from public.sms_alerts as a
   where a.direction = 'outbound' and a.created_at > v_now - c_window and a.status <> 'canceled';
  v_delivery_rate := round(v_sms_delivered::numeric / nullif(v_sms_delivered + v_sms_failed, 0), 4);
  v_sms_error_rate := round(v_sms_failed::numeric / nullif(v_sms_total, 0), 4);

  -- ---- Stripe webhook events over 24 h -------------------------------------------------------
  select count(*),
         count(*) filter (where e.processed_at is null and e.error is not null),
         count(*) filter (where e.processed_at is null and e.error is null)
    into v_events, v_events_failed, v_events_pending
    from public.billing_events as e
   where e.received_at > v_now - c_window;
  v_webhook_failure_rate := round(v_events_failed::numeric / nullif(v_events, 0), 4);

  -- ---- billing sync ----------------------------------------------------------------------------
  -- Index (area, action, created_at): each lookup reads a few entries from one end.
  select l.created_at, l.details ->> 'status'
    into v_sync_last_at, v_sync_last_status
    from public.system_audit_logs as l
   where l.area = 'billing' and l.action = 'billing_sync'
   order by l.created_at desc
   limit 1;
  select l.created_at
    into v_sync_complete_at
    from public.system_audit_logs as l
   where l.area = 'billing' and l.action = 'billing_sync' and l.details ->> 'status' = 'complete'
   order by l.created_at desc
   limit 1;
  if v_sync_complete_at is null then
    select l.created_at
      into v_sync_first_at
      from public.system_audit_logs as l
     where l.area = 'billing' and l.action = 'billing_sync'
     order by l.created_at
     limit 1;
  end if;
  v_sync_status := case
    when v_sync_last_at is null then 'unknown'
    when v_now - coalesce(v_sync_complete_at, v_sync_first_at) > c_billing_sync_max then 'fail'
    else 'ok' end;

  -- ---- database size ---------------------------------------------------------------------------
  select sum(pg_catalog.pg_database_size(d.datname))::bigint into v_db_bytes from pg_catalog.pg_database as d;
  v_quota_bytes := round(v_quota_mb * 1024 * 1024)::bigint;
  v_db_ratio := round(v_db_bytes::numeric / v_quota_bytes, 4);

  v_checks := jsonb_build_object(
    'settings', jsonb_build_object(
      'status', case when jsonb_array_length(v_setting_problems) = 0 then 'ok' else 'fail' end,
      'seed_total', v_seed_total, 'seed_ok', v_seed_ok, 'problems', v_setting_problems),
    'database', jsonb_build_object(
      'status', 'ok', 'reachable', true, 'last_migration', v_last_migration, 'migrations_applied', v_migrations),
    'cron', jsonb_build_object(
      'status', case when jsonb_array_length(v_cron_failed) = 0 then 'ok' else 'fail' end,
      'failed_jobs', v_cron_failed, 'jobs', v_cron_jobs),
    'sms', jsonb_build_object(
      'status', case when v_sms_total = 0 then 'unknown'
                     when v_delivery_rate <= c_delivery_min or v_sms_error_rate > c_sms_error_max then 'fail'
                     else 'ok' end,
      'window_hours', 24, 'outbound', v_sms_total, 'delivered', v_sms_delivered, 'failed', v_sms_failed,
      'pending', v_sms_total - v_sms_delivered - v_sms_failed,
      'delivery_rate', v_delivery_rate, 'error_rate', v_sms_error_rate),
    'stripe_webhooks', jsonb_build_object(
      'status', case when v_events = 0 then 'unknown'
                     when v_webhook_failure_rate >= c_webhook_failure_max then 'fail'
                     else 'ok' end,
      'window_hours', 24, 'received', v_events, 'failed', v_events_failed, 'pending', v_events_pending,
      'failure_rate', v_webhook_failure_rate),
    'billing_sync', jsonb_build_object(
      'status', v_sync_status,
      'last_complete_at', v_sync_complete_at,
      'hours_since_complete', round((extract(epoch from v_now - v_sync_complete_at) / 3600)::numeric, 1),
      'last_run_at', v_sync_last_at, 'last_run_status', v_sync_last_status),
    'database_size', jsonb_build_object(
      'status', case when v_db_ratio > c_db_size_max then 'fail' else 'ok' end,
      'bytes', v_db_bytes, 'quota_bytes', v_quota_bytes, 'used_ratio', v_db_ratio)
  );

  select case when exists (select from jsonb_each(v_checks) as c where c.value ->> 'status' = 'fail')
              then 'degraded' else 'ok' end
    into v_overall;

  if v_role is null then
    return jsonb_build_object('authorized', false, 'overall', v_overall);
  end if;

  if coalesce((p ->> 'record')::boolean, true) then
    insert into private.system_status_history (checked_at, overall, caller, evaluated_alerts, checks, db_size_bytes, db_size_quota_bytes)
    select v_now, v_overall, v_role, coalesce((p ->> 'evaluate_alerts')::boolean, false),
           -- The numbers of each check, without the long lists (jobs, problems stay as counts).
           jsonb_object_agg(c.key, c.value - 'jobs' - 'problems' - 'failed_jobs'
                                   || case when c.key = 'settings' then jsonb_build_object('problems', c.value -> 'problems')
                                           when c.key = 'cron' then jsonb_build_object('failed_jobs', c.value -> 'failed_jobs')
                                           else '{}'::jsonb end),
           v_db_bytes, v_quota_bytes
      from jsonb_each(v_checks) as c;
    delete from private.system_status_history as h where h.checked_at < v_now - c_history_kept;
  end if;

  return jsonb_build_object(
    'authorized', true,
    'caller', v_role,
    'overall', v_overall,
    'checked_at', v_now,
    'settings', v_settings,
    'checks', v_checks,
    'thresholds', jsonb_build_object(
      'sms_delivery_rate_above', c_delivery_min, 'sms_error_rate_max', c_sms_error_max,
      'stripe_webhook_failure_rate_below', c_webhook_failure_max, 'database_size_ratio_max', c_db_size_max,
      'billing_sync_max_hours', (extract(epoch from c_billing_sync_max) / 3600)::integer, 'window_hours', 24),
    'open_alerts', (
      select coalesce(jsonb_agg(jsonb_build_object(
               'id', a.id, 'kind', a.kind, 'subject', a.subject, 'state', a.state, 'raised_at', a.raised_at,
               'acked_at', a.acked_at, 'last_notified_at', a.last_notified_at,
               'last_notification_status', a.last_notification_status, 'details', a.details)
               order by a.raised_at, a.id), '[]'::jsonb)
        from public.system_alerts as a
       where a.state <> 'cleared')
  );
end
$$;

comment on function private.system_status(jsonb) is
  'The database side of the system-status function in one call: settings verdicts combined (live-mode cross-check), last migration, pg_cron last runs, SMS delivery/error rates and Stripe webhook failure rate over 24 h, time since the last complete billing sync, database size vs quota, open alerts; overall ok|degraded; one private.system_status_history row per authorised call (30 days kept). Full answer for the service or a tenant owner/admin, {authorized:false, overall} otherwise.';

revoke all on function private.system_status(jsonb) from public, anon, authenticated, service_role;
