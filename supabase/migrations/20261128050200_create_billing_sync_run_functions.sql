-- billing-sync's run lifecycle in SQL (the page itself is 20261128050300):
--
--   private.billing_sync_claim(request jsonb)           an invocation takes a run (new or to resume)
--   private.billing_sync_finish(run, lease, report)     it stops: complete (missing-row check),
--                                                       incomplete (checkpoint kept) or failed
--   private.billing_sync_audit(run, status)             the drift report in system_audit_logs
--
-- The drift report is the contract the system status reads (do not change its shape): one
-- system_audit_logs row per invocation, area 'billing', action 'billing_sync' for a full run
-- ('billing_sync_tenant' for one tenant's, so that it never counts as the daily reconciliation),
-- target 'billing_sync_runs:<run id>', details:
--   {"run_id", "status": "complete" | "incomplete" | "failed",
--    "drift": {"customers": {"created", "changed", "missing", …}, "subscriptions": {…}, "invoices": {…}},
--    "api_calls", "events_replayed", "error" (only when failed), "stop_reason" (why incomplete), …}
-- A run that stopped on a limit (time or page budget, rate limit, Stripe unavailable) is
-- incomplete, never complete; its counters are the run's so far.

-- The report of a run (details of its audit row, and the function's answer).
create function private.billing_sync_report(p_run private.billing_sync_runs, p_status text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'run_id', p_run.id,
    'status', p_status,
    'scope', p_run.scope,
    'tenant_id', p_run.tenant_id,
    'trigger', p_run.trigger,
    'local_date', p_run.local_date,
    'livemode', p_run.livemode,
    'phase', p_run.phase,
    'cursor', p_run.cursor,
    'invocations', p_run.invocations,
    'pages', p_run.pages,
    'drift', p_run.drift,
    'api_calls', p_run.api_calls,
    'rate_limited', p_run.rate_limited,
    'events_seen', p_run.events_seen,
    'events_replayed', p_run.events_replayed,
    'failures', case when pg_catalog.jsonb_array_length(p_run.failures) > 0 then p_run.failures end,
    'stop_reason', case when p_status = 'incomplete' then p_run.stop_reason end,
    'error', case when p_status = 'failed' then coalesce(p_run.error, 'failed') end,
    'started_at', p_run.started_at,
    'finished_at', p_run.finished_at))
$$;

create function private.billing_sync_audit(p_run private.billing_sync_runs, p_status text)
returns void
language sql
set search_path = ''
as $$
  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('billing',
          case p_run.scope when 'full' then 'billing_sync' else 'billing_sync_tenant' end,
          p_run.requested_by,
          p_run.tenant_id,
          'billing_sync_runs:' || p_run.id,
          private.billing_sync_report(p_run, p_status));
$$;

-- request: {"scope": "full" | "tenant", "tenant_id", "stripe_customer_id" (tenant scope),
--           "trigger": "cron" | "service" | "admin", "requested_by", "livemode" (the key's mode),
--           "run_id" (continue this run: the schedule's requests), "restart" (abandon the open run
--           and start over), "lease_seconds" (the invocation's budget and a margin),
--           "cooldown_seconds" (tenant scope: refuse a new run that soon after the last one)}
-- Returns {"outcome": "started" | "resumed" | "busy" | "cooldown" | "not_found" | "finished", "run": {…},
--          "retry_after_seconds" (cooldown), "took_over" (the previous invocation's lease had expired)}.
-- The run is resumed where its checkpoint says; a run whose lease is live is "busy" (another
-- invocation works on it). Claims are serialised by a transaction-level advisory lock (session
-- locks would not survive the transaction pooler).
create function private.billing_sync_claim(p_request jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_scope text := coalesce(p_request ->> 'scope', 'full');
  v_tenant uuid := (p_request ->> 'tenant_id')::uuid;
  v_customer text := p_request ->> 'stripe_customer_id';
  v_trigger text := coalesce(p_request ->> 'trigger', 'service');
  v_by text := coalesce(p_request ->> 'requested_by', current_user::text);
  v_livemode boolean := (p_request ->> 'livemode')::boolean;
  v_run_id uuid := (p_request ->> 'run_id')::uuid;
  v_restart boolean := coalesce((p_request ->> 'restart')::boolean, false);
  v_lease interval := pg_catalog.make_interval(secs => coalesce((p_request ->> 'lease_seconds')::integer, 300));
  v_cooldown interval := pg_catalog.make_interval(secs => coalesce((p_request ->> 'cooldown_seconds')::integer, 0));
  v_run private.billing_sync_runs;
  v_last timestamptz;
  v_took_over boolean := false;
begin
  if v_scope not in ('full', 'tenant') or (v_scope = 'tenant') <> (v_tenant is not null)
     or (v_scope = 'tenant' and v_customer is null) or v_livemode is null then
    raise exception 'billing_sync_claim: scope full, or tenant with tenant_id and stripe_customer_id; livemode required'
      using errcode = 'invalid_parameter_value';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('billing_sync_claim', 0));

  if v_run_id is not null then
    select * into v_run from private.billing_sync_runs as r where r.id = v_run_id for update;
    if not found then
      return pg_catalog.jsonb_build_object('outcome', 'not_found', 'run_id', v_run_id);
    end if;
    if v_run.status in ('complete', 'failed', 'abandoned') then
      return pg_catalog.jsonb_build_object('outcome', 'finished', 'run', private.billing_sync_report(v_run, v_run.status));
    end if;
  else
    select * into v_run
      from private.billing_sync_runs as r
     where r.scope = v_scope and r.tenant_id is not distinct from v_tenant
       and r.status in ('pending', 'running', 'incomplete')
       for update;
  end if;

  if v_run.id is not null then
    if v_run.lease_until > pg_catalog.now() then
      return pg_catalog.jsonb_build_object('outcome', 'busy', 'run_id', v_run.id, 'lease_until', v_run.lease_until);
    end if;
    if v_run.status = 'running' then
      -- The invocation that held the lease never reported (killed at the platform's wall-clock
      -- limit, or crashed): its pages are stored; say so in the trail, then carry on.
      v_took_over := true;
      update private.billing_sync_runs as r
         set status = 'incomplete', stop_reason = 'lease_expired', lease_id = null, lease_until = null
       where r.id = v_run.id
      returning * into v_run;
      perform private.billing_sync_audit(v_run, 'incomplete');
    end if;
    if v_restart or (v_run.livemode is not null and v_run.livemode <> v_livemode)
       or (v_run.scope = 'tenant' and v_run.stripe_customer_id <> v_customer) then
      -- Start over: asked to, or the API key changed mode (a test-mode checkpoint means nothing in
      -- live mode), or the tenant's customer changed. The old run keeps its trail.
      update private.billing_sync_runs as r
         set status = 'abandoned', finished_at = pg_catalog.now(), lease_id = null, lease_until = null,
             stop_reason = case when v_restart then 'restarted' else 'key_mode_changed' end
       where r.id = v_run.id;
      delete from private.billing_sync_seen as s where s.run_id = v_run.id;
      if v_run_id is not null then
        return pg_catalog.jsonb_build_object('outcome', 'finished', 'run_id', v_run.id);
      end if;
      v_run := null;
    else
      update private.billing_sync_runs as r
         set status = 'running', lease_id = pg_catalog.gen_random_uuid(), lease_until = pg_catalog.now() + v_lease,
             invocations = r.invocations + 1, livemode = v_livemode, stop_reason = null, error = null
       where r.id = v_run.id
      returning * into v_run;
      return pg_catalog.jsonb_build_object(
        'outcome', case when v_run.invocations = 1 then 'started' else 'resumed' end,
        'took_over', v_took_over,
        'run', pg_catalog.to_jsonb(v_run));
    end if;
  end if;

  if v_run_id is not null then
    return pg_catalog.jsonb_build_object('outcome', 'not_found', 'run_id', v_run_id);
  end if;

  if v_scope = 'tenant' and v_cooldown > interval '0' then
    select max(r.started_at) into v_last
      from private.billing_sync_runs as r
     where r.tenant_id = v_tenant and r.scope = 'tenant';
    if v_last > pg_catalog.now() - v_cooldown then
      return pg_catalog.jsonb_build_object('outcome', 'cooldown',
        'retry_after_seconds', greatest(1, ceil(extract(epoch from v_last + v_cooldown - pg_catalog.now())))::integer);
    end if;
  end if;

  -- Runs are kept 90 days (enough to compare a month of drift reports; the audit rows stay a year).
  delete from private.billing_sync_runs as r where r.finished_at < pg_catalog.now() - interval '90 days';

  insert into private.billing_sync_runs (scope, tenant_id, stripe_customer_id, trigger, requested_by, livemode,
                                         status, phase, lease_id, lease_until, invocations)
  values (v_scope, v_tenant, v_customer, v_trigger, v_by, v_livemode,
          'running', case v_scope when 'full' then 'events' else 'customers' end,
          pg_catalog.gen_random_uuid(), pg_catalog.now() + v_lease, 1)
  returning * into v_run;
  return pg_catalog.jsonb_build_object('outcome', 'started', 'took_over', false, 'run', pg_catalog.to_jsonb(v_run));
end
$$;

comment on function private.billing_sync_claim(jsonb) is
  'billing-sync: an invocation takes the open run of its scope (resumed at its checkpoint) or starts one, under a lease; busy while another invocation''s lease is live.';

-- Rows of ours that a complete run did not list, per table: stamped stripe_missing_since (kept if
-- already set), never deleted. Only rows that existed before the run started (anything made later
-- was made after the lists were read), of the key's mode (a test key cannot see live objects), of
-- the tenant for a tenant run; customers Stripe reported deleted are not missing. Rows listed again
-- lose their stamp. Returns {"customers": n, "subscriptions": n, "invoices": n}.
create function private.billing_sync_mark_missing(p_run private.billing_sync_runs)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_customers integer;
  v_subscriptions integer;
  v_invoices integer;
begin
  with absent as (
    select c.id, c.stripe_missing_since
      from public.customers as c
     where c.livemode = p_run.livemode
       and c.deleted_at is null
       and c.created_at < p_run.started_at
       and (p_run.scope = 'full' or c.tenant_id = p_run.tenant_id)
       and not exists (select from private.billing_sync_seen as s
                        where s.run_id = p_run.id and s.object_type = 'customer' and s.stripe_id = c.stripe_customer_id)
  ), stamped as (
    update public.customers as c set stripe_missing_since = pg_catalog.now()
      from absent as a
     where c.id = a.id and a.stripe_missing_since is null
  )
  select count(*)::integer into v_customers from absent;

  with absent as (
    select s.id, s.stripe_missing_since
      from public.subscriptions as s
      join public.customers as c on c.id = s.customer_id
     where c.livemode = p_run.livemode
       and s.created_at < p_run.started_at
       and (p_run.scope = 'full' or s.tenant_id = p_run.tenant_id)
       and not exists (select from private.billing_sync_seen as x
                        where x.run_id = p_run.id and x.object_type = 'subscription' and x.stripe_id = s.stripe_subscription_id)
  ), stamped as (
    update public.subscriptions as s set stripe_missing_since = pg_catalog.now()
      from absent as a
     where s.id = a.id and a.stripe_missing_since is null
  )
  select count(*)::integer into v_subscriptions from absent;

  with absent as (
    select i.id, i.stripe_missing_since
      from public.invoices as i
      join public.customers as c on c.id = i.customer_id
     where c.livemode = p_run.livemode
       and i.created_at < p_run.started_at
       and (p_run.scope = 'full' or i.tenant_id = p_run.tenant_id)
       and not exists (select from private.billing_sync_seen as x
                        where x.run_id = p_run.id and x.object_type = 'invoice' and x.stripe_id = i.stripe_invoice_id)
  ), stamped as (
    update public.invoices as i set stripe_missing_since = pg_catalog.now()
      from absent as a
     where i.id = a.id and a.stripe_missing_since is null
  )
  select count(*)::integer into v_invoices from absent;

  -- Listed again: no longer missing.
  update public.customers as c set stripe_missing_since = null
   where c.stripe_missing_since is not null
     and exists (select from private.billing_sync_seen as s
                  where s.run_id = p_run.id and s.object_type = 'customer' and s.stripe_id = c.stripe_customer_id);
  update public.subscriptions as t set stripe_missing_since = null
   where t.stripe_missing_since is not null
     and exists (select from private.billing_sync_seen as s
                  where s.run_id = p_run.id and s.object_type = 'subscription' and s.stripe_id = t.stripe_subscription_id);
  update public.invoices as i set stripe_missing_since = null
   where i.stripe_missing_since is not null
     and exists (select from private.billing_sync_seen as s
                  where s.run_id = p_run.id and s.object_type = 'invoice' and s.stripe_id = i.stripe_invoice_id);

  return pg_catalog.jsonb_build_object('customers', v_customers, 'subscriptions', v_subscriptions, 'invoices', v_invoices);
end
$$;

comment on function private.billing_sync_mark_missing(private.billing_sync_runs) is
  'billing-sync: stamps stripe_missing_since on rows a complete run did not list (never deletes), clears it on rows listed again; counts per table.';

-- report: {"status": "complete" | "incomplete" | "failed", "stop_reason", "error",
--          "api_calls", "rate_limited" (not yet stored with a page)}
-- complete: only once every list is done (phase 'missing'); the missing rows are stamped and
-- counted; a run in which some object could not be applied ends failed (its drift stands).
-- Returns {"outcome": "finished" | "lease_lost", "report": {…}} (report as in the audit row).
create function private.billing_sync_finish(p_run_id uuid, p_lease_id uuid, p_report jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_run private.billing_sync_runs;
  v_status text := p_report ->> 'status';
  v_missing jsonb;
  v_failed integer;
begin
  if v_status is null or v_status not in ('complete', 'incomplete', 'failed') then
    raise exception 'billing_sync_finish: status must be complete, incomplete or failed' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_run from private.billing_sync_runs as r where r.id = p_run_id for update;
  if not found or v_run.lease_id is distinct from p_lease_id or v_run.status <> 'running' then
    return pg_catalog.jsonb_build_object('outcome', 'lease_lost', 'run_id', p_run_id);
  end if;

  update private.billing_sync_runs as r
     set api_calls = r.api_calls + coalesce((p_report ->> 'api_calls')::integer, 0),
         rate_limited = r.rate_limited + coalesce((p_report ->> 'rate_limited')::integer, 0),
         lease_id = null, lease_until = null
   where r.id = p_run_id
  returning * into v_run;

  if v_status = 'complete' then
    if v_run.phase <> 'missing' then
      raise exception 'billing_sync_finish: run % is at phase %: its lists are not done', p_run_id, v_run.phase
        using errcode = 'invalid_parameter_value';
    end if;
    v_missing := private.billing_sync_mark_missing(v_run);
    -- Objects that could not be applied: per table (drift) and undelivered events (failures).
    select coalesce(sum((t.value ->> 'failed')::integer), 0)::integer
             + (select count(*)::integer from pg_catalog.jsonb_array_elements(v_run.failures) as f
                 where f.value ->> 'type' = 'event')
      into v_failed
      from pg_catalog.jsonb_each(v_run.drift) as t;
    update private.billing_sync_runs as r
       set drift = pg_catalog.jsonb_set(pg_catalog.jsonb_set(pg_catalog.jsonb_set(r.drift,
                     '{customers,missing}', v_missing -> 'customers'),
                     '{subscriptions,missing}', v_missing -> 'subscriptions'),
                     '{invoices,missing}', v_missing -> 'invoices'),
           phase = 'done', cursor = null, stop_reason = null,
           status = case when v_failed > 0 then 'failed' else 'complete' end,
           error = case when v_failed > 0 then pg_catalog.left(pg_catalog.format(
                     '%s Stripe object(s) could not be applied (first ones in failures); first: %s %s: %s', v_failed,
                     r.failures -> 0 ->> 'type', r.failures -> 0 ->> 'id', r.failures -> 0 ->> 'error'), 2000) end,
           finished_at = pg_catalog.now()
     where r.id = p_run_id
    returning * into v_run;
    delete from private.billing_sync_seen as s where s.run_id = p_run_id;
  elsif v_status = 'incomplete' then
    update private.billing_sync_runs as r
       set status = 'incomplete', stop_reason = coalesce(p_report ->> 'stop_reason', 'time_budget'), error = null
     where r.id = p_run_id
    returning * into v_run;
  else
    update private.billing_sync_runs as r
       set status = 'failed', error = pg_catalog.left(coalesce(p_report ->> 'error', 'failed'), 2000),
           stop_reason = p_report ->> 'stop_reason', finished_at = pg_catalog.now()
     where r.id = p_run_id
    returning * into v_run;
    delete from private.billing_sync_seen as s where s.run_id = p_run_id;
  end if;

  perform private.billing_sync_audit(v_run, v_run.status);
  return pg_catalog.jsonb_build_object('outcome', 'finished', 'report', private.billing_sync_report(v_run, v_run.status));
end
$$;

comment on function private.billing_sync_finish(uuid, uuid, jsonb) is
  'billing-sync: an invocation stops: complete (missing rows stamped), incomplete (checkpoint kept) or failed; writes the drift report (system_audit_logs, billing_sync).';

revoke all on function private.billing_sync_report(private.billing_sync_runs, text),
  private.billing_sync_audit(private.billing_sync_runs, text),
  private.billing_sync_claim(jsonb),
  private.billing_sync_mark_missing(private.billing_sync_runs),
  private.billing_sync_finish(uuid, uuid, jsonb)
  from public, anon, authenticated, service_role;
