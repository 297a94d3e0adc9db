-- Daily billing-sync, 04:00 America/Montreal (operations guide, "Quotidien 04:00"), DST-proof and at
-- most once a local day, like the weekly retention (20261125020300):
--
-- pg_cron runs in UTC on hosted Supabase; Montreal is UTC-4 in summer (EDT) and UTC-5 in winter
-- (EST). Two jobs fire every day, at 08:00 and 09:00 UTC, and both call
-- private.run_daily_billing_sync(), which acts only when it is 04:00 in Montreal:
--   summer: 08:00 UTC = 04:00 EDT (acts), 09:00 UTC = 05:00 EDT (nothing);
--   winter: 08:00 UTC = 03:00 EST (nothing), 09:00 UTC = 04:00 EST (acts).
-- On the DST switch days the change happens at 02:00 local, before 04:00, so exactly one of the two
-- is 04:00 local. The day it acted for is recorded (system_audit_logs, area billing, action
-- billing_sync_scheduled, details.local_date): a second call that local day does nothing.
--
-- Acting = asking the billing-sync function to work, through pg_net (the HTTP request is sent after
-- commit by the pg_net worker), authenticated as the service with a secret API key read from Vault:
--   select vault.create_secret('https://<ref>.supabase.co/functions/v1', 'functions_url');
--   select vault.create_secret('<an sb_secret_… key of the project>', 'service_secret_key');
-- It resumes the open full run if there is one (an incomplete run of an earlier day, or one an
-- operator left), else it starts a new run ('pending' here, taken by the function's first call).
--
-- A run larger than one invocation's budget (BILLING_SYNC_TIME_BUDGET_SECONDS under the platform's
-- 150 s request limit, 100 pages under its 2 s of CPU) stops as incomplete with its checkpoint. A
-- third job, billing-sync-continue, every 10 minutes, asks the function to go on with the open run
-- the schedule started when no invocation holds it and none was asked for in the last 10 minutes,
-- up to 100 invocations per run; a run an operator or a script started is continued by them (npm
-- run ops -- billing sync calls again until complete), or by the next 04:00. An open run older
-- than a day is abandoned (reported incomplete, stop_reason abandoned) and the next 04:00 starts
-- afresh: resuming day-old checkpoints would only delay a complete picture.

-- Abandons the open full run when it started more than a day before p_now; true if it did.
create function private.abandon_stale_billing_sync(p_run private.billing_sync_runs, p_now timestamptz)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_run private.billing_sync_runs;
begin
  if p_run.id is null or p_run.started_at >= p_now - interval '1 day'
     or p_run.status not in ('pending', 'incomplete') then
    return false;
  end if;
  update private.billing_sync_runs as r
     set status = 'abandoned', stop_reason = 'abandoned', finished_at = pg_catalog.now(), lease_id = null, lease_until = null
   where r.id = p_run.id
  returning * into v_run;
  delete from private.billing_sync_seen as s where s.run_id = p_run.id;
  perform private.billing_sync_audit(v_run, 'incomplete');
  return true;
end
$$;

comment on function private.abandon_stale_billing_sync(private.billing_sync_runs, timestamptz) is
  'Abandons an open full billing-sync run that started more than a day before p_now (reported incomplete/abandoned).';

-- The function's URL and the service key from Vault, and one net.http_post; returns its request id.
create function private.request_billing_sync(p_body jsonb)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_url text;
  v_key text;
begin
  select s.decrypted_secret into v_url from vault.decrypted_secrets as s where s.name = 'functions_url';
  select s.decrypted_secret into v_key from vault.decrypted_secrets as s where s.name = 'service_secret_key';
  if v_url is null or v_key is null then
    raise exception 'billing-sync cannot be called: Vault secret(s) % missing (see README, "Deploying")',
      concat_ws(' and ', case when v_url is null then 'functions_url' end, case when v_key is null then 'service_secret_key' end)
      using errcode = 'no_data_found';
  end if;
  return net.http_post(
    url := pg_catalog.rtrim(v_url, '/') || '/billing-sync',
    body := p_body,
    headers := pg_catalog.jsonb_build_object('Content-Type', 'application/json', 'apikey', v_key,
                                             'Authorization', 'Bearer ' || v_key),
    -- The function answers within its time budget (at most the platform's 150 s).
    timeout_milliseconds := 150000);
end
$$;

comment on function private.request_billing_sync(jsonb) is
  'POSTs a body to the billing-sync function (URL and service secret key from Vault: functions_url, service_secret_key) through pg_net; returns the request id.';

create function private.run_daily_billing_sync(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  -- p_now is the clock the schedule is checked against; tests pass summer and winter instants.
  local_time constant timestamp := p_now at time zone 'America/Montreal';
  local_date constant date := (p_now at time zone 'America/Montreal')::date;
  outcome jsonb := pg_catalog.jsonb_build_object('local_time', p_now at time zone 'America/Montreal');
  v_run private.billing_sync_runs;
  v_resumed boolean := false;
  v_request bigint;
  v_error text;
begin
  if extract(hour from local_time) <> 4 then
    return outcome || pg_catalog.jsonb_build_object('ran', false, 'reason', 'not 04:00 in America/Montreal');
  end if;
  -- One caller at a time (a manual run of the cron command while the job runs).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('billing_sync_schedule', 0));

  -- Today's row, if any (index on (area, action, created_at)); local_date says which day it was for.
  if exists (
    select from public.system_audit_logs as l
     where l.area = 'billing' and l.action = 'billing_sync_scheduled'
       and l.created_at > pg_catalog.now() - interval '2 days'
       and l.details ->> 'local_date' = local_date::text
  ) then
    return outcome || pg_catalog.jsonb_build_object('ran', false, 'reason', 'already ran today');
  end if;

  select * into v_run
    from private.billing_sync_runs as r
   where r.scope = 'full' and r.status in ('pending', 'running', 'incomplete')
     for update;
  if found and private.abandon_stale_billing_sync(v_run, p_now) then
    v_run := null;
  end if;
  if v_run.id is not null then
    v_resumed := true;
  else
    insert into private.billing_sync_runs (scope, trigger, requested_by, local_date, status)
    values ('full', 'cron', 'pg_cron', local_date, 'pending')
    returning * into v_run;
  end if;

  if v_run.lease_until > pg_catalog.now() then
    -- An invocation is working on the open run right now: nothing to ask; it goes on by itself.
    v_request := null;
  else
    begin
      v_request := private.request_billing_sync(pg_catalog.jsonb_build_object('run_id', v_run.id, 'trigger', 'cron'));
      update private.billing_sync_runs as r set requested_at = p_now where r.id = v_run.id;
    exception when others then
      get stacked diagnostics v_error = message_text;
    end;
  end if;

  -- The day's record, with details.error when the function could not be asked (the operations
  -- guide's "errors of the last 24 h" finds it).
  insert into public.system_audit_logs (area, action, actor, target, details)
  values ('billing', 'billing_sync_scheduled', 'pg_cron', 'billing_sync_runs:' || v_run.id,
          pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'local_date', local_date, 'run_id', v_run.id, 'resumed', v_resumed,
            'busy', v_run.lease_until > pg_catalog.now(), 'request_id', v_request, 'error', v_error)));

  return outcome || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'ran', true, 'run_id', v_run.id, 'resumed', v_resumed, 'request_id', v_request, 'error', v_error));
end
$$;

comment on function private.run_daily_billing_sync(timestamptz) is
  'Called by pg_cron at 08:00 and 09:00 UTC; when p_now (default now()) is 04:00 in America/Montreal and not yet done that local day, asks billing-sync (pg_net) to start a run or resume the open one.';

create function private.continue_billing_sync(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_run private.billing_sync_runs;
  v_request bigint;
  v_error text;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('billing_sync_schedule', 0));
  select * into v_run
    from private.billing_sync_runs as r
   where r.scope = 'full' and r.trigger = 'cron'
     and (r.status in ('pending', 'incomplete') or (r.status = 'running' and r.lease_until < p_now))
     for update;
  if not found then
    return pg_catalog.jsonb_build_object('ran', false, 'reason', 'no run of the schedule to continue');
  end if;
  if private.abandon_stale_billing_sync(v_run, p_now) then
    return pg_catalog.jsonb_build_object('ran', false, 'reason', 'run older than a day abandoned', 'run_id', v_run.id);
  end if;
  if v_run.requested_at > p_now - interval '10 minutes' then
    return pg_catalog.jsonb_build_object('ran', false, 'reason', 'asked less than 10 minutes ago', 'run_id', v_run.id);
  end if;
  if v_run.invocations >= 100 then
    return pg_catalog.jsonb_build_object('ran', false, 'reason', 'run has had 100 invocations: left to the next 04:00 or an operator',
                                         'run_id', v_run.id);
  end if;
  -- Missing Vault secrets: said in the answer (cron.job_run_details); the day's billing_sync_scheduled
  -- row already carries the error, so the job does not fail every 10 minutes for it.
  begin
    v_request := private.request_billing_sync(pg_catalog.jsonb_build_object('run_id', v_run.id, 'trigger', 'cron'));
  exception when no_data_found then
    get stacked diagnostics v_error = message_text;
    return pg_catalog.jsonb_build_object('ran', false, 'run_id', v_run.id, 'error', v_error);
  end;
  update private.billing_sync_runs as r set requested_at = p_now where r.id = v_run.id;
  return pg_catalog.jsonb_build_object('ran', true, 'run_id', v_run.id, 'request_id', v_request);
end
$$;

comment on function private.continue_billing_sync(timestamptz) is
  'Called by pg_cron every 10 minutes: asks billing-sync to go on with the schedule''s open run when nothing works on it and it was not asked in the last 10 minutes (at most 100 invocations a run; abandoned after a day).';

revoke all on function private.request_billing_sync(jsonb), private.run_daily_billing_sync(timestamptz),
  private.abandon_stale_billing_sync(private.billing_sync_runs, timestamptz),
  private.continue_billing_sync(timestamptz)
  from public, anon, authenticated, service_role;

-- pg_cron 1.4's cron.schedule(job_name, ...) updates the job of that name if it exists, so
-- re-applying this file keeps one job per name.
select cron.schedule('billing-sync-0800-utc', '0 8 * * *', 'select private.run_daily_billing_sync()');
select cron.schedule('billing-sync-0900-utc', '0 9 * * *', 'select private.run_daily_billing_sync()');
select cron.schedule('billing-sync-continue', '*/10 * * * *', 'select private.continue_billing_sync()');
