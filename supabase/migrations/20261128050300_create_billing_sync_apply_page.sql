-- billing-sync's page: ONE call, ONE transaction per page of a Stripe list (issue 15).
--
--   private.billing_sync_apply_page(run_id, lease_id, page jsonb) → jsonb
--   private.billing_sync_apply_fetched_event(run_id, lease_id, event, options) → jsonb
--
-- A page applies each object through the very SQL the webhook uses, so a sync and a webhook can
-- never disagree on what a Stripe object means, and both obey the same watermark:
--   events         private.apply_stripe_event(event, {prices}): records the billing_events row and
--                  applies it (a duplicate event id changes nothing);
--   customers, subscriptions (with items), invoices
--                  private.apply_stripe_object(type, object, seen_at, prices): a listed copy, seen
--                  at the page's response Date (minus a second, see engine.ts), applied only if not
--                  older than the row (a webhook newer than the page wins, before or after it);
--                  for a customer, private.upsert_stripe_customer (what apply_stripe_object calls)
--                  with its metadata.tenant_id as the tenant, so a customer not yet tied to a
--                  tenant is tied by the sync.
-- Each object in its own subtransaction: one that cannot be applied is counted (failed, first 20
-- kept with their error) and the page goes on. Then, in the same transaction, the page's counters,
-- the ids seen (for the missing-row check) and the checkpoint (cursor = the page's last id; the
-- next phase when the list is done) are stored, so a resumed run starts exactly after this page.
--
-- page: {"phase", "objects": [...], "seen_at", "cursor", "done", "restart_list", "fetched" (the
--        batch took a request: counted in pages), "api_calls", "rate_limited",
--        "prices": {"<price id>": "plan" | "addon_site"}}
-- Returns {"outcome": "applied" | "lease_lost", "phase", "cursor", "counts": {...},
--          "needs_fetch": [{"event", "fetch": {type, id}}]} (events whose object must be fetched:
--          two states of the same second; the caller fetches it and calls apply_fetched_event).

-- The drift keys a Stripe upsert result counts under.
create function private.billing_sync_drift_key(p_result text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case p_result
    when 'created' then 'created'
    when 'changed' then 'changed'
    when 'deleted' then 'changed'          -- a deletion we had not heard of (customer, draft invoice)
    when 'unchanged' then 'unchanged'
    when 'skipped_stale' then 'stale'      -- a newer webhook got there first
    when 'failed' then 'failed'
    else 'skipped'                         -- unknown_customer (not tied to a tenant), ignored
  end
$$;

-- Adds counts {"table": {"key": n}} into a drift object.
create function private.billing_sync_add_drift(p_drift jsonb, p_counts jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_object_agg(t.key, coalesce((
           select pg_catalog.jsonb_object_agg(k.key, (k.value::text::bigint
                    + coalesce((p_counts -> t.key ->> k.key)::bigint, 0)))
             from pg_catalog.jsonb_each(t.value) as k), '{}'::jsonb)), '{}'::jsonb)
    from pg_catalog.jsonb_each(p_drift) as t
$$;

create function private.billing_sync_apply_page(p_run_id uuid, p_lease_id uuid, p_page jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_run private.billing_sync_runs;
  v_phase text := p_page ->> 'phase';
  v_prices jsonb := coalesce(p_page -> 'prices', '{}'::jsonb);
  v_seen_at timestamptz := (p_page ->> 'seen_at')::timestamptz;
  v_done boolean := coalesce((p_page ->> 'done')::boolean, false);
  v_type text;
  v_table text;
  v_obj jsonb;
  v_id text;
  r jsonb;
  v_key text;
  v_error text;
  v_counts jsonb := '{}'::jsonb;
  v_failures jsonb := '[]'::jsonb;
  v_needs_fetch jsonb := '[]'::jsonb;
  v_events_seen integer := 0;
  v_events_replayed integer := 0;
  v_next text;
begin
  select * into v_run from private.billing_sync_runs as x where x.id = p_run_id for update;
  if not found or v_run.lease_id is distinct from p_lease_id or v_run.status <> 'running' then
    return pg_catalog.jsonb_build_object('outcome', 'lease_lost', 'run_id', p_run_id);
  end if;
  if v_phase is distinct from v_run.phase then
    raise exception 'billing_sync_apply_page: run % is at phase %, the page is of phase %', p_run_id, v_run.phase, v_phase
      using errcode = 'invalid_parameter_value';
  end if;
  if pg_catalog.jsonb_typeof(p_page -> 'objects') is distinct from 'array' then
    raise exception 'billing_sync_apply_page: objects must be an array' using errcode = 'invalid_parameter_value';
  end if;

  if v_phase = 'events' then
    for v_obj in select e.value from pg_catalog.jsonb_array_elements(p_page -> 'objects') as e loop
      v_events_seen := v_events_seen + 1;
      begin
        r := private.apply_stripe_event(v_obj, pg_catalog.jsonb_build_object('prices', v_prices));
      exception when others then
        get stacked diagnostics v_error = message_text;
        r := pg_catalog.jsonb_build_object('outcome', 'failed', 'error', v_error);
      end;
      case r ->> 'outcome'
        when 'duplicate' then null;  -- already processed (delivered late, or replayed before)
        when 'needs_fetch' then
          v_needs_fetch := v_needs_fetch || pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object('event', v_obj, 'fetch', r -> 'fetch'));
        when 'failed' then
          v_failures := v_failures || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'type', 'event', 'id', v_obj ->> 'id', 'error', pg_catalog.left(r ->> 'error', 500)));
        else
          v_events_replayed := v_events_replayed + 1;  -- applied, ignored, parked: recorded now
      end case;
    end loop;
  elsif v_phase in ('customers', 'subscriptions', 'invoices') then
    v_table := v_phase;
    v_type := case v_phase when 'customers' then 'customer' when 'subscriptions' then 'subscription' else 'invoice' end;
    for v_obj in select o.value from pg_catalog.jsonb_array_elements(p_page -> 'objects') as o loop
      v_id := v_obj ->> 'id';
      begin
        if v_type = 'customer' then
          -- A customer no row ties to a tenant yet is tied by its metadata.tenant_id when that names
          -- one of ours (the webhook leaves that to billing-checkout's link, which a sync, reading
          -- Stripe later, does not race; if the link came first, this is the same tenant).
          r := private.upsert_stripe_customer(v_obj, v_seen_at, true,
                                              private.stripe_tenant_hint(v_obj -> 'metadata' ->> 'tenant_id'));
        else
          r := private.apply_stripe_object(v_type, v_obj, v_seen_at, v_prices);
        end if;
        v_key := private.billing_sync_drift_key(r ->> 'result');
      exception when others then
        get stacked diagnostics v_error = message_text;
        v_key := 'failed';
        v_failures := v_failures || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
          'type', v_type, 'id', v_id, 'error', pg_catalog.left(v_error, 500)));
      end;
      v_counts := pg_catalog.jsonb_set(v_counts, array[v_table], coalesce(v_counts -> v_table, '{}'::jsonb)
        || pg_catalog.jsonb_build_object('seen', coalesce((v_counts -> v_table ->> 'seen')::integer, 0) + 1,
                                         v_key, coalesce((v_counts -> v_table ->> v_key)::integer, 0) + 1));
      if v_id is not null then
        insert into private.billing_sync_seen (run_id, object_type, stripe_id)
        values (p_run_id, v_type, pg_catalog.left(v_id, 255))
        on conflict do nothing;
      end if;
      -- A customer tied to a tenant by this page: the events parked until then apply now, as the
      -- webhook does when an event ties one (best effort: the rest of the run lists their objects).
      if v_type = 'customer' and r ->> 'result' = 'created'
         and exists (select from public.billing_events as e where e.stripe_customer_id = v_id and e.outcome = 'parked') then
        begin
          perform private.replay_parked_stripe_events(v_id, v_prices);
        exception when others then
          null;
        end;
      end if;
    end loop;
  else
    raise exception 'billing_sync_apply_page: phase % has no list', v_phase using errcode = 'invalid_parameter_value';
  end if;

  v_next := case v_phase when 'events' then 'customers' when 'customers' then 'subscriptions'
                         when 'subscriptions' then 'invoices' else 'missing' end;
  update private.billing_sync_runs as x
     set drift = private.billing_sync_add_drift(x.drift, v_counts),
         failures = case when pg_catalog.jsonb_array_length(x.failures) >= 20 then x.failures
                         else (select coalesce(pg_catalog.jsonb_agg(f.value), '[]'::jsonb)
                                 from (select f.value from pg_catalog.jsonb_array_elements(x.failures || v_failures) as f
                                       limit 20) as f) end,
         events_seen = x.events_seen + v_events_seen,
         events_replayed = x.events_replayed + v_events_replayed,
         pages = x.pages + case when coalesce((p_page ->> 'fetched')::boolean, true) then 1 else 0 end,
         api_calls = x.api_calls + coalesce((p_page ->> 'api_calls')::integer, 0),
         rate_limited = x.rate_limited + coalesce((p_page ->> 'rate_limited')::integer, 0),
         phase = case when v_done then v_next else x.phase end,
         cursor = case when v_done or coalesce((p_page ->> 'restart_list')::boolean, false) then null
                       else coalesce(p_page ->> 'cursor', x.cursor) end
   where x.id = p_run_id
  returning * into v_run;

  return pg_catalog.jsonb_build_object(
    'outcome', 'applied', 'phase', v_run.phase, 'cursor', v_run.cursor,
    'counts', v_counts || pg_catalog.jsonb_build_object('events_seen', v_events_seen, 'events_replayed', v_events_replayed,
                                                        'failed', pg_catalog.jsonb_array_length(v_failures)),
    'needs_fetch', v_needs_fetch);
end
$$;

comment on function private.billing_sync_apply_page(uuid, uuid, jsonb) is
  'billing-sync: one page of a Stripe list applied through apply_stripe_event / apply_stripe_object, with its counters, seen ids and checkpoint, in one transaction (checks the invocation''s lease).';

-- An event the page could not order (same second, other content), again with the object Stripe
-- has now (options {"fetched": {...}} or {"fetch_error": "..."}), as the webhook does.
create function private.billing_sync_apply_fetched_event(p_run_id uuid, p_lease_id uuid, p_event jsonb, p_options jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_run private.billing_sync_runs;
  r jsonb;
  v_error text;
begin
  select * into v_run from private.billing_sync_runs as x where x.id = p_run_id for update;
  if not found or v_run.lease_id is distinct from p_lease_id or v_run.status <> 'running' then
    return pg_catalog.jsonb_build_object('outcome', 'lease_lost', 'run_id', p_run_id);
  end if;
  begin
    r := private.apply_stripe_event(p_event, p_options);
  exception when others then
    get stacked diagnostics v_error = message_text;
    r := pg_catalog.jsonb_build_object('outcome', 'failed', 'error', v_error);
  end;
  update private.billing_sync_runs as x
     set events_replayed = x.events_replayed + case when r ->> 'outcome' in ('applied', 'ignored', 'parked') then 1 else 0 end,
         failures = case when r ->> 'outcome' in ('failed', 'needs_fetch') and pg_catalog.jsonb_array_length(x.failures) < 20
                         then x.failures || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                                'type', 'event', 'id', p_event ->> 'id',
                                'error', pg_catalog.left(coalesce(r ->> 'error', 'no copy of the object from Stripe'), 500)))
                         else x.failures end
   where x.id = p_run_id;
  return pg_catalog.jsonb_build_object('outcome', 'applied', 'event_outcome', r ->> 'outcome');
end
$$;

comment on function private.billing_sync_apply_fetched_event(uuid, uuid, jsonb, jsonb) is
  'billing-sync: an undelivered event whose object had to be fetched (same second), applied again with that copy.';

revoke all on function private.billing_sync_drift_key(text), private.billing_sync_add_drift(jsonb, jsonb),
  private.billing_sync_apply_page(uuid, uuid, jsonb),
  private.billing_sync_apply_fetched_event(uuid, uuid, jsonb, jsonb)
  from public, anon, authenticated, service_role;
