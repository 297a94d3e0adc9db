-- Object-level Stripe upserts: ONE place that turns a Stripe customer, subscription (with its items)
-- or invoice into our rows, shared by the stripe-webhook (events) and billing-sync (lists). Each
-- reads the current (2025-03-31.basil and later) and the 2020-era shapes, and returns what it did:
--
--   {"result": created | changed | unchanged | skipped_stale | needs_fetch | unknown_customer | deleted | ignored,
--    "tenant_id", "<object>_id" (our uuid), "stripe_customer_id", "linked_customer" (a customer row was just made)}
--
-- Ordering (Stripe delivers at least once, in any order; `created` has one-second resolution):
-- every row carries stripe_updated_at = the time the state it holds was seen at Stripe: an event's
-- `created`, or the Date of a Stripe API response (a fetched copy, a list page). For an incoming
-- copy seen at s against a row seen at w:
--   s > w                  newer: applied;
--   s < w                  older: skipped_stale (the trigger skip_stale_stripe_update would skip it too);
--   s = w, same content    unchanged (an invoice.paid and an invoice.payment_succeeded hold the same invoice);
--   s = w, other content   needs_fetch: two states of the same second cannot be ordered by `created`;
--                          the caller fetches the object from Stripe and applies that copy with
--                          p_authoritative = true (a copy fetched now is at least as new as any
--                          event of that second: applied when s >= w).
-- A newer copy with the same content still moves the watermark forward (not audited, see
-- 20261128041100), or an older event arriving later would look newer than the row.
--
-- Tenants: a customer row ties a Stripe customer to a tenant. billing-checkout makes it when it
-- creates the customer (private.link_stripe_customer(jsonb)); otherwise the first object that
-- names the tenant does: the checkout session (client_reference_id / metadata.tenant_id, see
-- private.apply_stripe_checkout_session in 20261128041300), the subscription's metadata.tenant_id
-- (billing-checkout sets subscription_data.metadata), an invoice's
-- parent.subscription_details.metadata, or the caller of upsert_stripe_customer (p_tenant_id).
-- A customer's own metadata does not: customer.created arrives while billing-checkout is still
-- linking the customer it just made, and that link (with its audit row) is the one that counts.
-- An object about a customer no row ties to a tenant returns unknown_customer and writes nothing
-- (the webhook parks the event, 20261128041300).
--
-- Concurrency: a transaction-level advisory lock per Stripe id, always the customer's first, then
-- the object's, so two deliveries about the same object apply one after the other.

-- Seconds since the epoch (Stripe's timestamps) → timestamptz; anything else → null.
create function private.stripe_time(v jsonb)
returns timestamptz
language sql
immutable
set search_path = ''
as $$
  select case when pg_catalog.jsonb_typeof(v) = 'number'
              then pg_catalog.to_timestamp((v #>> '{}')::double precision) end
$$;

-- An id, or an expanded object's id (Stripe's `customer` is "cus_…" or {id: "cus_…", …}).
create function private.stripe_ref(v jsonb)
returns text
language sql
immutable
set search_path = ''
as $$
  select case pg_catalog.jsonb_typeof(v) when 'string' then v #>> '{}' when 'object' then v ->> 'id' end
$$;

-- The tenant a metadata value / client_reference_id names, when it is one of ours.
create function private.stripe_tenant_hint(v text)
returns uuid
language sql
stable
set search_path = ''
as $$
  select t.id
    from public.tenants as t
   where t.id = case when v ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then v::uuid end
$$;

-- newer | stale | same_second (see the header). A row never seen (null) is older than anything.
create function private.stripe_watermark_verdict(stored timestamptz, seen timestamptz, authoritative boolean)
returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when stored is null or seen > stored then 'newer'
    when seen < stored then 'stale'
    when authoritative then 'newer'
    else 'same_second'
  end
$$;

create function private.stripe_lock(stripe_id text)
returns void
language sql
set search_path = ''
as $$
  select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('stripe:' || stripe_id, 0))
$$;

-- Ties a Stripe customer to a tenant (the customers row), once, for the webhook and billing-sync
-- (billing-checkout links the customer it creates with private.link_stripe_customer(jsonb), which
-- audits who caused it). Refuses a customer already tied to another tenant, and a second customer
-- for a tenant (one Stripe customer per tenant): both are data conflicts an operator must look at
-- (the error names the ids, never personal data).
create function private.tie_stripe_customer(p_tenant_id uuid, p_stripe_customer_id text, p_email text, p_livemode boolean)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_row public.customers;
  v_other text;
begin
  perform private.stripe_lock(p_stripe_customer_id);
  select * into v_row from public.customers as c where c.stripe_customer_id = p_stripe_customer_id for update;
  if found then
    if v_row.tenant_id <> p_tenant_id then
      raise exception 'Stripe customer % belongs to tenant %, not to tenant %', p_stripe_customer_id, v_row.tenant_id, p_tenant_id
        using errcode = 'unique_violation';
    end if;
    return pg_catalog.jsonb_build_object('customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'created', false);
  end if;
  select c.stripe_customer_id into v_other from public.customers as c where c.tenant_id = p_tenant_id;
  if found then
    raise exception 'tenant % is already billed through Stripe customer %, not %', p_tenant_id, v_other, p_stripe_customer_id
      using errcode = 'unique_violation';
  end if;
  insert into public.customers (tenant_id, stripe_customer_id, email, livemode)
  values (p_tenant_id, p_stripe_customer_id,
          case when p_email ~ '^[^@[:space:]]+@[^@[:space:]]+$' then p_email end,
          coalesce(p_livemode, false))
  returning * into v_row;
  return pg_catalog.jsonb_build_object('customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'created', true);
end
$$;

comment on function private.tie_stripe_customer(uuid, text, text, boolean) is
  'Ties a Stripe customer to a tenant (customers row) once; refuses another tenant''s customer or a second customer for a tenant.';

-- ---------------------------------------------------------------------------------------------
-- Customers
-- ---------------------------------------------------------------------------------------------
-- p_obj: a Stripe customer ({id, email, livemode, metadata, deleted?}); a deleted one (the
-- customer.deleted event's object with "deleted": true, or the {id, deleted: true} stub Stripe
-- returns for it) sets deleted_at. p_tenant_id: the tenant when the caller knows it (billing-sync
-- reading metadata.tenant_id, say); without it an unknown customer is unknown_customer.
create function private.upsert_stripe_customer(
  p_obj jsonb,
  p_seen_at timestamptz,
  p_authoritative boolean default false,
  p_tenant_id uuid default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id text := p_obj ->> 'id';
  v_deleted boolean := coalesce((p_obj ->> 'deleted')::boolean, false);
  v_email text := p_obj ->> 'email';
  v_row public.customers;
  v_tenant uuid;
  v_link jsonb;
  v_verdict text;
  v_new_deleted_at timestamptz;
begin
  if v_id is null or v_id !~ '^cus_[0-9A-Za-z]+$' or p_seen_at is null then
    raise exception 'upsert_stripe_customer: a customer id (cus_…) and a time are required' using errcode = 'invalid_parameter_value';
  end if;
  if v_email is not null and v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' then
    v_email := null;  -- Stripe accepts addresses our column does not: keep the row, drop the address
  end if;
  perform private.stripe_lock(v_id);
  select * into v_row from public.customers as c where c.stripe_customer_id = v_id for update;

  if not found then
    v_tenant := p_tenant_id;
    if v_tenant is null then
      return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_id);
    end if;
    v_link := private.tie_stripe_customer(v_tenant, v_id, v_email, (p_obj ->> 'livemode')::boolean);
    update public.customers as c
       set stripe_updated_at = p_seen_at,
           deleted_at = case when v_deleted then p_seen_at end
     where c.id = (v_link ->> 'customer_id')::uuid;
    return pg_catalog.jsonb_build_object('result', 'created', 'customer_id', v_link -> 'customer_id', 'tenant_id', v_tenant,
      'stripe_customer_id', v_id, 'linked_customer', v_id);
  end if;

  if p_tenant_id is not null and p_tenant_id <> v_row.tenant_id then
    raise exception 'Stripe customer % belongs to tenant %, not to tenant %', v_id, v_row.tenant_id, p_tenant_id
      using errcode = 'unique_violation';
  end if;
  v_verdict := private.stripe_watermark_verdict(v_row.stripe_updated_at, p_seen_at, p_authoritative);
  if v_verdict = 'stale' then
    return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
  end if;
  v_new_deleted_at := case when v_deleted then coalesce(v_row.deleted_at, p_seen_at) end;
  -- A deleted stub carries no e-mail: keep the one we have.
  if v_deleted and not (p_obj ? 'email') then
    v_email := v_row.email;
  end if;
  if (v_row.email, v_row.livemode, v_row.deleted_at is not null)
     is not distinct from (v_email, coalesce((p_obj ->> 'livemode')::boolean, v_row.livemode), v_deleted) then
    update public.customers as c set stripe_updated_at = p_seen_at
     where c.id = v_row.id and c.stripe_updated_at is distinct from p_seen_at and (c.stripe_updated_at is null or c.stripe_updated_at < p_seen_at);
    return pg_catalog.jsonb_build_object('result', 'unchanged', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
  end if;
  if v_verdict = 'same_second' then
    return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
  end if;
  update public.customers as c
     set email = v_email,
         livemode = coalesce((p_obj ->> 'livemode')::boolean, c.livemode),
         deleted_at = v_new_deleted_at,
         stripe_updated_at = greatest(c.stripe_updated_at, p_seen_at)
   where c.id = v_row.id;
  return pg_catalog.jsonb_build_object('result', 'changed', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
end
$$;

comment on function private.upsert_stripe_customer(jsonb, timestamptz, boolean, uuid) is
  'Stripe customer → customers row (tied to p_tenant_id on first sight when given); watermark-ordered; returns {result, customer_id, tenant_id, …}.';

-- The customers row of a Stripe customer, tying it to a tenant from `hint` when it has none yet;
-- null when neither exists (the caller reports unknown_customer).
create function private.stripe_customer_for(p_stripe_customer_id text, p_hint text, p_livemode boolean)
returns public.customers
language plpgsql
set search_path = ''
as $$
declare
  v_row public.customers;
  v_tenant uuid;
begin
  if p_stripe_customer_id is null or p_stripe_customer_id !~ '^cus_[0-9A-Za-z]+$' then
    return null;
  end if;
  perform private.stripe_lock(p_stripe_customer_id);
  select * into v_row from public.customers as c where c.stripe_customer_id = p_stripe_customer_id;
  if found then
    return v_row;
  end if;
  v_tenant := private.stripe_tenant_hint(p_hint);
  if v_tenant is null then
    return null;
  end if;
  perform private.tie_stripe_customer(v_tenant, p_stripe_customer_id, null, p_livemode);
  select * into v_row from public.customers as c where c.stripe_customer_id = p_stripe_customer_id;
  return v_row;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Subscriptions (with their items)
-- ---------------------------------------------------------------------------------------------
-- p_prices: {"<price id>": "plan" | "addon_site"} from the functions' settings (STRIPE_PRICE_*);
-- any other price is kind 'other'. The billing period: the plan item's (basil: the period lives on
-- the items), else the subscription's own current_period_* (2020-era shape).
create function private.upsert_stripe_subscription(
  p_obj jsonb,
  p_seen_at timestamptz,
  p_authoritative boolean default false,
  p_prices jsonb default '{}'::jsonb
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id text := p_obj ->> 'id';
  v_customer_ref text := private.stripe_ref(p_obj -> 'customer');
  v_customer public.customers;
  v_linked boolean;
  v_row public.subscriptions;
  v_items jsonb;
  v_plan jsonb;
  v_interval text;
  v_start timestamptz;
  v_end timestamptz;
  v_status text := p_obj ->> 'status';
  v_cancel_at_period_end boolean := coalesce((p_obj ->> 'cancel_at_period_end')::boolean, false);
  v_canceled_at timestamptz := private.stripe_time(p_obj -> 'canceled_at');
  v_complete boolean := jsonb_typeof(p_obj -> 'items' -> 'data') = 'array'
                        and coalesce((p_obj -> 'items' ->> 'has_more')::boolean, false) = false;
  v_verdict text;
  v_result text;
  v_stored_items jsonb;
begin
  if v_id is null or v_id !~ '^sub_[0-9A-Za-z]+$' or p_seen_at is null then
    raise exception 'upsert_stripe_subscription: a subscription id (sub_…) and a time are required' using errcode = 'invalid_parameter_value';
  end if;
  v_linked := not exists (select from public.customers as c where c.stripe_customer_id = v_customer_ref);
  v_customer := private.stripe_customer_for(v_customer_ref, p_obj -> 'metadata' ->> 'tenant_id', (p_obj ->> 'livemode')::boolean);
  if v_customer.id is null then
    return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
  end if;
  perform private.stripe_lock(v_id);

  -- Items, in Stripe's order: one configured plan item is the plan; a second one is 'other'.
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', x.id, 'price', x.price, 'quantity', x.quantity,
           'kind', case when x.kind = 'plan' and x.plan_rank > 1 then 'other' else x.kind end,
           'interval', x.item_interval, 'start', x.ps, 'end', x.pe) order by x.n), '[]'::jsonb)
    into v_items
  from (
    select it ->> 'id' as id,
           coalesce(private.stripe_ref(it -> 'price'), private.stripe_ref(it -> 'plan')) as price,
           coalesce((it ->> 'quantity')::integer, 1) as quantity,
           coalesce(case p_prices ->> coalesce(private.stripe_ref(it -> 'price'), private.stripe_ref(it -> 'plan'))
                      when 'plan' then 'plan' when 'addon_site' then 'addon_site' end, 'other') as kind,
           coalesce(it -> 'price' -> 'recurring' ->> 'interval', it -> 'plan' ->> 'interval') as item_interval,
           private.stripe_time(it -> 'current_period_start') as ps,
           private.stripe_time(it -> 'current_period_end') as pe,
           n,
           pg_catalog.count(*) filter (where p_prices ->> coalesce(private.stripe_ref(it -> 'price'), private.stripe_ref(it -> 'plan')) = 'plan')
             over (order by n) as plan_rank
      from pg_catalog.jsonb_array_elements(case when jsonb_typeof(p_obj -> 'items' -> 'data') = 'array'
                                                then p_obj -> 'items' -> 'data' else '[]'::jsonb end)
             with ordinality as e (it, n)
  ) as x;

  select i into v_plan from pg_catalog.jsonb_array_elements(v_items) as i where i ->> 'kind' = 'plan' limit 1;
  if v_plan is null then
    v_plan := v_items -> 0;
  end if;
  v_interval := coalesce(v_plan ->> 'interval', p_obj -> 'plan' ->> 'interval');
  if v_interval is null or v_interval not in ('month', 'year') then
    raise exception 'subscription %: billing interval % is not month or year', v_id, coalesce(v_interval, '(none)')
      using errcode = 'invalid_parameter_value';
  end if;
  v_start := coalesce((v_plan ->> 'start')::timestamptz, private.stripe_time(p_obj -> 'current_period_start'));
  v_end := coalesce((v_plan ->> 'end')::timestamptz, private.stripe_time(p_obj -> 'current_period_end'));
  if v_start is null or v_end is null or v_end <= v_start then
    v_start := null;
    v_end := null;
  end if;

  select * into v_row from public.subscriptions as s where s.stripe_subscription_id = v_id for update;
  if found then
    v_verdict := private.stripe_watermark_verdict(v_row.stripe_updated_at, p_seen_at, p_authoritative);
    if v_verdict = 'stale' then
      return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', si.stripe_subscription_item_id, 'price', si.stripe_price_id,
             'quantity', si.quantity, 'kind', si.kind) order by si.stripe_subscription_item_id), '[]'::jsonb)
      into v_stored_items
      from public.subscription_items as si where si.subscription_id = v_row.id;
    if (v_row.status, v_row.plan_interval, v_row.current_period_start, v_row.current_period_end, v_row.cancel_at_period_end, v_row.canceled_at)
         is not distinct from (v_status, v_interval, v_start, v_end, v_cancel_at_period_end, v_canceled_at)
       and (not v_complete or v_stored_items = (
             select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', i ->> 'id', 'price', i ->> 'price',
                      'quantity', (i ->> 'quantity')::integer, 'kind', i ->> 'kind') order by i ->> 'id'), '[]'::jsonb)
               from pg_catalog.jsonb_array_elements(v_items) as i)) then
      update public.subscriptions as s set stripe_updated_at = p_seen_at
       where s.id = v_row.id and s.stripe_updated_at < p_seen_at;
      return pg_catalog.jsonb_build_object('result', 'unchanged', 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    if v_verdict = 'same_second' then
      return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    update public.subscriptions as s
       set status = v_status, plan_interval = v_interval, current_period_start = v_start, current_period_end = v_end,
           cancel_at_period_end = v_cancel_at_period_end, canceled_at = v_canceled_at,
           stripe_updated_at = greatest(s.stripe_updated_at, p_seen_at)
     where s.id = v_row.id
    returning * into v_row;
    v_result := 'changed';
  else
    insert into public.subscriptions (tenant_id, customer_id, stripe_subscription_id, status, plan_interval,
                                      current_period_start, current_period_end, cancel_at_period_end, canceled_at, stripe_updated_at)
    values (v_customer.tenant_id, v_customer.id, v_id, v_status, v_interval, v_start, v_end, v_cancel_at_period_end, v_canceled_at, p_seen_at)
    returning * into v_row;
    v_result := 'created';
    -- Invoices that arrived before their subscription.
    update public.invoices as i set subscription_id = v_row.id
     where i.stripe_subscription_id = v_id and i.subscription_id is null and i.tenant_id = v_row.tenant_id;
  end if;

  -- Items: gone ones deleted (only when the list is complete), then non-plan ones, then the plan
  -- (so a plan moving from one item to another never meets the one-plan index half-way).
  if v_complete then
    delete from public.subscription_items as si
     where si.subscription_id = v_row.id
       and si.stripe_subscription_item_id <> all (array(select i ->> 'id' from pg_catalog.jsonb_array_elements(v_items) as i));
  end if;
  insert into public.subscription_items as si (tenant_id, subscription_id, stripe_subscription_item_id, stripe_price_id, quantity, kind)
  select v_row.tenant_id, v_row.id, i ->> 'id', i ->> 'price', (i ->> 'quantity')::integer, i ->> 'kind'
    from pg_catalog.jsonb_array_elements(v_items) as i
   order by (i ->> 'kind') = 'plan'
  on conflict (stripe_subscription_item_id) do update
     set stripe_price_id = excluded.stripe_price_id, quantity = excluded.quantity, kind = excluded.kind
   where (si.stripe_price_id, si.quantity, si.kind) is distinct from (excluded.stripe_price_id, excluded.quantity, excluded.kind);

  return pg_catalog.jsonb_build_object('result', v_result, 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
    'stripe_customer_id', v_customer_ref, 'linked_customer', case when v_linked then v_customer_ref end);
end
$$;

comment on function private.upsert_stripe_subscription(jsonb, timestamptz, boolean, jsonb) is
  'Stripe subscription (basil or 2020-era shape) → subscriptions + subscription_items rows; watermark-ordered; returns {result, subscription_id, tenant_id, …}.';

-- ---------------------------------------------------------------------------------------------
-- Invoices
-- ---------------------------------------------------------------------------------------------
-- The subscription: parent.subscription_details.subscription (basil), else `subscription`
-- (2020-era). Tax: the sum of total_taxes (basil), else `tax`. Period: the first line's (the
-- service period), else the invoice's. "deleted": true (the invoice.deleted event) deletes a draft.
create function private.upsert_stripe_invoice(
  p_obj jsonb,
  p_seen_at timestamptz,
  p_authoritative boolean default false
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id text := p_obj ->> 'id';
  v_customer_ref text := private.stripe_ref(p_obj -> 'customer');
  v_sub_ref text := coalesce(private.stripe_ref(p_obj -> 'parent' -> 'subscription_details' -> 'subscription'),
                             private.stripe_ref(p_obj -> 'subscription'));
  v_customer public.customers;
  v_linked boolean;
  v_row public.invoices;
  v_exists boolean;
  v_new public.invoices;
  v_verdict text;
  v_result text;
  v_first_line jsonb := p_obj -> 'lines' -> 'data' -> 0;
begin
  if v_id is null then
    -- invoice.upcoming describes an invoice that does not exist yet: nothing to store.
    return pg_catalog.jsonb_build_object('result', 'ignored', 'reason', 'invoice without an id (upcoming)');
  end if;
  if v_id !~ '^in_[0-9A-Za-z]+$' or p_seen_at is null then
    raise exception 'upsert_stripe_invoice: an invoice id (in_…) and a time are required' using errcode = 'invalid_parameter_value';
  end if;
  if v_sub_ref is not null and v_sub_ref !~ '^sub_[0-9A-Za-z]+$' then
    v_sub_ref := null;
  end if;
  v_linked := not exists (select from public.customers as c where c.stripe_customer_id = v_customer_ref);
  v_customer := private.stripe_customer_for(v_customer_ref,
    coalesce(p_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'tenant_id', p_obj -> 'metadata' ->> 'tenant_id'),
    (p_obj ->> 'livemode')::boolean);
  if v_customer.id is null then
    return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
  end if;
  perform private.stripe_lock(v_id);
  select * into v_row from public.invoices as i where i.stripe_invoice_id = v_id for update;
  v_exists := found;

  if coalesce((p_obj ->> 'deleted')::boolean, false) then
    if not v_exists then
      return pg_catalog.jsonb_build_object('result', 'unchanged', 'tenant_id', v_customer.tenant_id, 'stripe_customer_id', v_customer_ref);
    end if;
    if private.stripe_watermark_verdict(v_row.stripe_updated_at, p_seen_at, true) = 'stale' then
      return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    delete from public.invoices as i where i.id = v_row.id;
    return pg_catalog.jsonb_build_object('result', 'deleted', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
      'stripe_customer_id', v_customer_ref);
  end if;

  -- The row this copy describes (id, timestamps and watermark aside).
  v_new.tenant_id := v_customer.tenant_id;
  v_new.customer_id := v_customer.id;
  v_new.stripe_subscription_id := v_sub_ref;
  select s.id into v_new.subscription_id
    from public.subscriptions as s where s.stripe_subscription_id = v_sub_ref and s.tenant_id = v_customer.tenant_id;
  v_new.status := p_obj ->> 'status';
  v_new.currency := pg_catalog.lower(coalesce(p_obj ->> 'currency', 'cad'));
  v_new.subtotal_cents := coalesce((p_obj ->> 'subtotal')::bigint, 0);
  v_new.tax_cents := coalesce(
    (select sum((t ->> 'amount')::bigint)::bigint from pg_catalog.jsonb_array_elements(
       case when jsonb_typeof(p_obj -> 'total_taxes') = 'array' then p_obj -> 'total_taxes' end) as t),
    (p_obj ->> 'tax')::bigint, 0);
  v_new.total_cents := coalesce((p_obj ->> 'total')::bigint, 0);
  v_new.amount_due_cents := coalesce((p_obj ->> 'amount_due')::bigint, 0);
  v_new.amount_paid_cents := coalesce((p_obj ->> 'amount_paid')::bigint, 0);
  v_new.amount_remaining_cents := coalesce((p_obj ->> 'amount_remaining')::bigint, 0);
  v_new.hosted_invoice_url := case when p_obj ->> 'hosted_invoice_url' ~ '^https://' then p_obj ->> 'hosted_invoice_url' end;
  v_new.period_start := coalesce(private.stripe_time(v_first_line -> 'period' -> 'start'), private.stripe_time(p_obj -> 'period_start'));
  v_new.period_end := coalesce(private.stripe_time(v_first_line -> 'period' -> 'end'), private.stripe_time(p_obj -> 'period_end'));
  if v_new.period_end < v_new.period_start then
    v_new.period_start := private.stripe_time(p_obj -> 'period_start');
    v_new.period_end := private.stripe_time(p_obj -> 'period_end');
  end if;
  v_new.paid_at := case when v_new.status = 'paid' then coalesce(
    private.stripe_time(p_obj -> 'status_transitions' -> 'paid_at'), private.stripe_time(p_obj -> 'effective_at'), p_seen_at) end;

  if v_exists then
    v_verdict := private.stripe_watermark_verdict(v_row.stripe_updated_at, p_seen_at, p_authoritative);
    if v_verdict = 'stale' then
      return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    if (v_row.subscription_id, v_row.stripe_subscription_id, v_row.status, v_row.currency, v_row.subtotal_cents, v_row.tax_cents,
        v_row.total_cents, v_row.amount_due_cents, v_row.amount_paid_cents, v_row.amount_remaining_cents, v_row.hosted_invoice_url,
        v_row.period_start, v_row.period_end, v_row.paid_at)
       is not distinct from
       (coalesce(v_new.subscription_id, v_row.subscription_id), v_new.stripe_subscription_id, v_new.status, v_new.currency,
        v_new.subtotal_cents, v_new.tax_cents, v_new.total_cents, v_new.amount_due_cents, v_new.amount_paid_cents,
        v_new.amount_remaining_cents, v_new.hosted_invoice_url, v_new.period_start, v_new.period_end, v_new.paid_at) then
      update public.invoices as i set stripe_updated_at = p_seen_at where i.id = v_row.id and i.stripe_updated_at < p_seen_at;
      return pg_catalog.jsonb_build_object('result', 'unchanged', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    if v_verdict = 'same_second' then
      return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    update public.invoices as i
       set subscription_id = coalesce(v_new.subscription_id, i.subscription_id), stripe_subscription_id = v_new.stripe_subscription_id,
           status = v_new.status, currency = v_new.currency, subtotal_cents = v_new.subtotal_cents, tax_cents = v_new.tax_cents,
           total_cents = v_new.total_cents, amount_due_cents = v_new.amount_due_cents, amount_paid_cents = v_new.amount_paid_cents,
           amount_remaining_cents = v_new.amount_remaining_cents, hosted_invoice_url = v_new.hosted_invoice_url,
           period_start = v_new.period_start, period_end = v_new.period_end, paid_at = v_new.paid_at,
           stripe_updated_at = greatest(i.stripe_updated_at, p_seen_at)
     where i.id = v_row.id
    returning * into v_row;
    v_result := 'changed';
  else
    insert into public.invoices (tenant_id, customer_id, subscription_id, stripe_subscription_id, stripe_invoice_id, status, currency,
                                 subtotal_cents, tax_cents, total_cents, amount_due_cents, amount_paid_cents, amount_remaining_cents,
                                 hosted_invoice_url, period_start, period_end, paid_at, stripe_updated_at)
    values (v_new.tenant_id, v_new.customer_id, v_new.subscription_id, v_new.stripe_subscription_id, v_id, v_new.status, v_new.currency,
            v_new.subtotal_cents, v_new.tax_cents, v_new.total_cents, v_new.amount_due_cents, v_new.amount_paid_cents,
            v_new.amount_remaining_cents, v_new.hosted_invoice_url, v_new.period_start, v_new.period_end, v_new.paid_at, p_seen_at)
    returning * into v_row;
    v_result := 'created';
  end if;
  return pg_catalog.jsonb_build_object('result', v_result, 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
    'stripe_customer_id', v_customer_ref, 'linked_customer', case when v_linked then v_customer_ref end);
end
$$;

comment on function private.upsert_stripe_invoice(jsonb, timestamptz, boolean) is
  'Stripe invoice (basil or 2020-era shape) → invoices row; invoice.deleted removes it; watermark-ordered; returns {result, invoice_id, tenant_id, …}.';

-- One entry point per object type, for copies fetched from Stripe (authoritative): the webhook's
-- follow-up fetches and billing-sync's list pages. p_type: customer | subscription | invoice.
create function private.apply_stripe_object(p_type text, p_obj jsonb, p_seen_at timestamptz, p_prices jsonb default '{}'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
  return case p_type
    when 'customer' then private.upsert_stripe_customer(p_obj, p_seen_at, true)
    when 'subscription' then private.upsert_stripe_subscription(p_obj, p_seen_at, true, p_prices)
    when 'invoice' then private.upsert_stripe_invoice(p_obj, p_seen_at, true)
  end;
end
$$;

comment on function private.apply_stripe_object(text, jsonb, timestamptz, jsonb) is
  'A copy of a Stripe customer/subscription/invoice fetched or listed from Stripe at p_seen_at (its response Date) → our rows.';

revoke all on function private.stripe_time(jsonb), private.stripe_ref(jsonb), private.stripe_tenant_hint(text),
  private.stripe_watermark_verdict(timestamptz, timestamptz, boolean), private.stripe_lock(text),
  private.tie_stripe_customer(uuid, text, text, boolean), private.stripe_customer_for(text, text, boolean),
  private.upsert_stripe_customer(jsonb, timestamptz, boolean, uuid),
  private.upsert_stripe_subscription(jsonb, timestamptz, boolean, jsonb),
  private.upsert_stripe_invoice(jsonb, timestamptz, boolean),
  private.apply_stripe_object(text, jsonb, timestamptz, jsonb)
  from public, anon, authenticated;
grant execute on function private.upsert_stripe_customer(jsonb, timestamptz, boolean, uuid),
  private.upsert_stripe_subscription(jsonb, timestamptz, boolean, jsonb),
  private.upsert_stripe_invoice(jsonb, timestamptz, boolean),
  private.apply_stripe_object(text, jsonb, timestamptz, jsonb),
  private.tie_stripe_customer(uuid, text, text, boolean)
  to service_role;
