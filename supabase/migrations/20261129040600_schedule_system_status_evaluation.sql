-- The automatic alerts (the guide's "Alertes automatiques"): every 5 minutes pg_cron asks the
-- system-status function to evaluate the status and the alerts (POST, the service's secret key),
-- through pg_net. The function, not the database, sends the SMS: the evaluation needs the
-- functions' settings (only they can say a setting is missing) and the normal send path.
--
-- The call reads two Vault secrets, which the operator creates once on a hosted project (README,
-- "Alerts"); the local stack writes them at each start (scripts/stack.ts), as billing-sync's
-- schedule reads them too:
--   functions_url       https://<ref>.supabase.co/functions/v1
--   service_secret_key  a secret API key of the project (sb_secret_…), which _shared/auth.ts
--                       recognises as the service (one of SUPABASE_SECRET_KEYS)
-- When one is missing the run fails with a message naming it (never a value): the status's cron
-- check and dashboard.cron_runs show it, and db-status lists the missing secret.
--
-- net.http_post only queues the request (pg_net sends it after commit): the cron run succeeds as
-- soon as it is queued; the function's answer lands in net._http_response.
create function private.request_status_evaluation()
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_url text;
  v_key text;
  v_missing text[];
begin
  select s.decrypted_secret into v_url from vault.decrypted_secrets as s where s.name = 'functions_url';
  select s.decrypted_secret into v_key from vault.decrypted_secrets as s where s.name = 'service_secret_key';
  v_missing := array_remove(array[case when nullif(btrim(v_url), '') is null then 'functions_url' end,
                                  case when nullif(btrim(v_key), '') is null then 'service_secret_key' end], null);
  if cardinality(v_missing) > 0 then
    raise exception 'request_status_evaluation: Vault secret(s) % missing (README, "Alerts")', array_to_string(v_missing, ', ')
      using errcode = 'invalid_parameter_value';
  end if;
  return net.http_post(
    url := rtrim(btrim(v_url), '/') || '/system-status',
    body := '{"evaluate": true}'::jsonb,
    headers := jsonb_build_object('content-type', 'application/json', 'apikey', v_key, 'authorization', 'Bearer ' || v_key),
    -- The evaluation plus its SMS (each bounded by the send path's retries) fits well within this.
    timeout_milliseconds := 30000);
end
$$;
comment on function private.request_status_evaluation() is
  'Queues the scheduled evaluation: POST {functions_url}/system-status with the Vault''s service_secret_key (pg_net). Fails naming a missing Vault secret. Called by the pg_cron job system-status-evaluate every 5 minutes.';
revoke all on function private.request_status_evaluation() from public, anon, authenticated, service_role;

-- cron.schedule(job_name, …) updates the job of that name if it exists: re-applying keeps one job.
select cron.schedule('system-status-evaluate', '*/5 * * * *', 'select private.request_status_evaluation()');
