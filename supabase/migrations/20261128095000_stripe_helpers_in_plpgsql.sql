-- stripe-webhook's hot path: its small helpers in PL/pgSQL instead of SQL. Same names, arguments,
-- results, volatility and privileges (CREATE OR REPLACE keeps the owner and the grants); what each
-- one does is unchanged (see 20261128041200 and 20261128041300 for what they are for).
--
-- Why: a `language sql` function with a SET clause (here `set search_path = ''`, which every
-- function of ours carries) is never inlined, and PostgreSQL before 18 parses, analyses and plans
-- its body again at every call. The webhook calls these ~20 times per event (stripe_time for each
-- timestamp of an item, stripe_ref for each reference, a lock per Stripe id, one audit row), so a
-- perf profile of the backend applying the benchmark's stream (`npm run bench -- stripe`) spent
-- about a fifth of its CPU in fmgr_sql → raw_parser / parse analysis / planner. PL/pgSQL keeps
-- each statement's plan for the session (and evaluates simple expressions without the executor),
-- so the same bodies cost a fraction of that.

-- Seconds since the epoch (Stripe's timestamps) → timestamptz; anything else → null.
create or replace function private.stripe_time(v jsonb)
returns timestamptz
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when pg_catalog.jsonb_typeof(v) = 'number'
              then pg_catalog.to_timestamp((v #>> '{}')::double precision) end;
end
$$;

-- An id, or an expanded object's id (Stripe's `customer` is "cus_…" or {id: "cus_…", …}).
create or replace function private.stripe_ref(v jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case pg_catalog.jsonb_typeof(v) when 'string' then v #>> '{}' when 'object' then v ->> 'id' end;
end
$$;

-- The tenant a metadata value / client_reference_id names, when it is one of ours.
create or replace function private.stripe_tenant_hint(v text)
returns uuid
language plpgsql
stable
set search_path = ''
as $$
begin
  if v is null or v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  return (select t.id from public.tenants as t where t.id = v::uuid);
end
$$;

-- newer | stale | same_second. A row never seen (null) is older than anything.
create or replace function private.stripe_watermark_verdict(stored timestamptz, seen timestamptz, authoritative boolean)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case
    when stored is null or seen > stored then 'newer'
    when seen < stored then 'stale'
    when authoritative then 'newer'
    else 'same_second'
  end;
end
$$;

create or replace function private.stripe_lock(stripe_id text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('stripe:' || stripe_id, 0));
end
$$;

-- One system_audit_logs row per processed event (area stripe, action webhook_event, target the
-- event id, as the operations guide reads them); details.error on failure.
create or replace function private.audit_stripe_event(p_event jsonb, p_tenant_id uuid, p_details jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('stripe', 'webhook_event', 'stripe', p_tenant_id, p_event ->> 'id',
          pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'type', p_event ->> 'type', 'object_id', p_event -> 'data' -> 'object' ->> 'id',
            'api_version', p_event ->> 'api_version', 'created', p_event -> 'created') || p_details));
end
$$;
