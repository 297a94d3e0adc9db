-- Stripe upserts (20261128041200): same-second copies ordered by the object's own state machine,
-- invoice payments applied from the payment itself, no customer lock when the customer is known,
-- and a `changed` summary in each result (the webhook's one audit row per event carries it,
-- 20261130030200). Same names, arguments and privileges (CREATE OR REPLACE keeps them).
--
-- 1. Same second, other content. `created` has one-second resolution, so two copies of an object
--    from the same second cannot be ordered by it; 20261128041200 fetched the object from Stripe
--    every time (about a third of the deliveries of `npm run bench -- stripe`: a checkout's events
--    all come within a second). Most such pairs are ordered by the object itself, because some of
--    Stripe's state transitions only ever go one way:
--      invoices       draft (0) < open (1) < uncollectible (2) < paid | void (3): a draft is
--                     finalized once, an open invoice becomes paid, void or uncollectible, an
--                     uncollectible one paid or void; paid and void are final. A copy whose status
--                     ranks higher is the later one, whatever arrived first.
--      subscriptions  incomplete (0) < trialing | active | past_due | unpaid | paused (1) <
--                     canceled | incomplete_expired (2): an incomplete subscription becomes active
--                     (or trialing…) or expires, nothing goes back to incomplete, and canceled and
--                     incomplete_expired are final. Within rank 1 Stripe moves both ways
--                     (active ↔ past_due, paused ↔ active): not ordered.
--      customers      deleted is final.
--    Higher rank: the incoming copy is newer (applied); lower: it is older (skipped_stale). Equal
--    rank with other content is truly ambiguous (two updates of an active subscription in the same
--    second, a draft edited twice): the caller still fetches the object from Stripe and applies
--    that copy (needs_fetch), as the issue asks. One exception at equal rank: two copies of a paid
--    (or of a void) invoice. Such an invoice no longer changes in any field we store (amounts,
--    period, paid_at, URL are final), so both copies describe the same final state; they can only
--    differ because our row was derived from an invoice_payment (3. below), and the invoice's own
--    copy is then the more complete one: applied.
--    Identical content for the fields we store was already "unchanged" (nothing to decide).
--
-- 2. Locks. 20261128041200 took an advisory lock on the Stripe customer before anything, so every
--    event of a customer waited for the one before (lock waits made most of the webhook's tail
--    latency). The customer lock is needed only to TIE a customer to a tenant (and to park events
--    about one nobody tied yet, 20261128090000): a customers row, once there, never changes tenant
--    and is never deleted (customer.deleted sets deleted_at). So the row is read first, and the
--    lock taken only when there is none (stripe_customer_for, as before). What the customer lock
--    also serialised: an invoice looking up its subscription while the subscription row is being
--    inserted (the insert links the invoices that came first, the invoice links itself to a
--    subscription it finds; concurrently each would miss the other). Now the invoice takes the
--    subscription's lock when it does not find the subscription row (before its own lock and row
--    lock: always subscription, then invoice; the subscription upsert takes its own lock, then
--    the invoices' row locks, in the same order).
--
-- 3. invoice_payment.paid (private.apply_stripe_invoice_payment): 20261128041300 fetched the
--    invoice unless our row was already paid (two thirds of the benchmark's Stripe calls). The
--    payment says which invoice it paid, how much and when: an invoice of ours that is draft, open
--    or uncollectible, with nothing paid yet, whose amount due the payment covers, is paid
--    (status paid, amount_paid = the payment's, amount_remaining 0, paid_at = the payment's) —
--    paid is final and ranks above those states, so this holds whatever the events' order. A
--    partial payment, an invoice with earlier payments, or a void one still fetches the invoice.
--    An invoice we do not have yet: the payment is parked (result awaiting_invoice, see
--    20261130030200) and applied by upsert_stripe_invoice when the invoice's row is created.

-- The rank of a status in the one-way part of an object's life (see 1. above).
create function private.stripe_state_rank(p_kind text, p_status text)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case p_kind
    when 'invoice' then case p_status when 'draft' then 0 when 'open' then 1 when 'uncollectible' then 2
                                      when 'paid' then 3 when 'void' then 3 end
    when 'subscription' then case p_status when 'incomplete' then 0 when 'canceled' then 2 when 'incomplete_expired' then 2
                                           else 1 end
  end;
end
$$;

comment on function private.stripe_state_rank(text, text) is
  'Rank of a Stripe invoice/subscription status in its one-way transitions; orders two copies of the same second (higher = later).';

-- {"<column>": {"old", "new"}} for the keys of p_new whose value differs from p_old's (an absent
-- old key counts as null, so a created row lists its non-null fields).
create function private.stripe_changes(p_old jsonb, p_new jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return (select pg_catalog.jsonb_object_agg(n.key, pg_catalog.jsonb_build_object('old', p_old -> n.key, 'new', n.value))
            from pg_catalog.jsonb_each(p_new) as n
           where n.value <> coalesce(p_old -> n.key, 'null'::jsonb));
end
$$;

-- The customers row of a Stripe customer, tying it to a tenant from `hint` when it has none yet;
-- null when neither exists. The row is read without a lock first (see 2. above).
create or replace function private.stripe_customer_for(p_stripe_customer_id text, p_hint text, p_livemode boolean)
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
  select * into v_row from public.customers as c where c.stripe_customer_id = p_stripe_customer_id;
  if found then
    return v_row;
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
-- Customers: as 20261128041200, plus "deleted is final" for the same second, and `changed`.
-- ---------------------------------------------------------------------------------------------
create or replace function private.upsert_stripe_customer(
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
  v_livemode boolean;
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
      'stripe_customer_id', v_id, 'linked_customer', v_id,
      'changed', private.stripe_changes('{}', pg_catalog.jsonb_build_object('email', v_email, 'deleted', v_deleted)));
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
  v_livemode := coalesce((p_obj ->> 'livemode')::boolean, v_row.livemode);
  if (v_row.email, v_row.livemode, v_row.deleted_at is not null) is not distinct from (v_email, v_livemode, v_deleted) then
    update public.customers as c set stripe_updated_at = p_seen_at
     where c.id = v_row.id and c.stripe_updated_at is distinct from p_seen_at and (c.stripe_updated_at is null or c.stripe_updated_at < p_seen_at);
    return pg_catalog.jsonb_build_object('result', 'unchanged', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
  end if;
  if v_verdict = 'same_second' then
    -- Deletion is final: a deleted copy is the later one, a live copy of a deleted customer the older.
    if v_row.deleted_at is not null and not v_deleted then
      return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
    elsif not (v_deleted and v_row.deleted_at is null) then
      return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id);
    end if;
  end if;
  update public.customers as c
     set email = v_email,
         livemode = v_livemode,
         deleted_at = v_new_deleted_at,
         stripe_updated_at = greatest(c.stripe_updated_at, p_seen_at)
   where c.id = v_row.id;
  return pg_catalog.jsonb_build_object('result', 'changed', 'customer_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_id,
    'changed', private.stripe_changes(
      pg_catalog.jsonb_build_object('email', v_row.email, 'livemode', v_row.livemode, 'deleted', v_row.deleted_at is not null),
      pg_catalog.jsonb_build_object('email', v_email, 'livemode', v_livemode, 'deleted', v_deleted)));
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Subscriptions (with their items): as 20261128041200, plus the state rank, the customer read
-- without a lock, and `changed`.
-- ---------------------------------------------------------------------------------------------
create or replace function private.upsert_stripe_subscription(
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
  v_linked boolean := false;
  v_row public.subscriptions;
  v_old public.subscriptions;
  v_items jsonb;
  v_items_sorted jsonb;
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
  v_order integer;
  v_changed jsonb;
begin
  if v_id is null or v_id !~ '^sub_[0-9A-Za-z]+$' or p_seen_at is null then
    raise exception 'upsert_stripe_subscription: a subscription id (sub_…) and a time are required' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_customer from public.customers as c where c.stripe_customer_id = v_customer_ref;
  if not found then
    v_linked := true;
    v_customer := private.stripe_customer_for(v_customer_ref, p_obj -> 'metadata' ->> 'tenant_id', (p_obj ->> 'livemode')::boolean);
    if v_customer.id is null then
      return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
    end if;
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
  -- The items as stored rows compare (id order, no period).
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', i ->> 'id', 'price', i ->> 'price',
           'quantity', (i ->> 'quantity')::integer, 'kind', i ->> 'kind') order by i ->> 'id'), '[]'::jsonb)
    into v_items_sorted
    from pg_catalog.jsonb_array_elements(v_items) as i;

  select * into v_row from public.subscriptions as s where s.stripe_subscription_id = v_id for update;
  if found then
    v_old := v_row;
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
       and (not v_complete or v_stored_items = v_items_sorted) then
      update public.subscriptions as s set stripe_updated_at = p_seen_at
       where s.id = v_row.id and s.stripe_updated_at < p_seen_at;
      return pg_catalog.jsonb_build_object('result', 'unchanged', 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
        'stripe_customer_id', v_customer_ref);
    end if;
    if v_verdict = 'same_second' then
      -- Ordered by the status when its rank differs (incomplete → active… → canceled); else fetch.
      v_order := pg_catalog.sign(coalesce(private.stripe_state_rank('subscription', v_status), 1)
                                 - coalesce(private.stripe_state_rank('subscription', v_row.status), 1));
      if v_order < 0 then
        return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'reason', 'an earlier state of the same second',
          'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_customer_ref);
      elsif v_order = 0 then
        return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
          'stripe_customer_id', v_customer_ref);
      end if;
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
    v_stored_items := '[]'::jsonb;
    -- Invoices that arrived before their subscription.
    update public.invoices as i set subscription_id = v_row.id
     where i.stripe_subscription_id = v_id and i.subscription_id is null and i.tenant_id = v_row.tenant_id;
  end if;

  -- Items: gone ones deleted (only when the list is complete), then non-plan ones, then the plan
  -- (so a plan moving from one item to another never meets the one-plan index half-way). A
  -- complete list equal to the stored items (a status change) writes nothing.
  if v_complete and v_stored_items = v_items_sorted then
    null;
  else
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
  end if;

  v_changed := coalesce(private.stripe_changes(
      pg_catalog.jsonb_build_object('status', v_old.status, 'plan_interval', v_old.plan_interval,
        'current_period_start', v_old.current_period_start, 'current_period_end', v_old.current_period_end,
        'cancel_at_period_end', v_old.cancel_at_period_end, 'canceled_at', v_old.canceled_at),
      pg_catalog.jsonb_build_object('status', v_row.status, 'plan_interval', v_row.plan_interval,
        'current_period_start', v_row.current_period_start, 'current_period_end', v_row.current_period_end,
        'cancel_at_period_end', v_row.cancel_at_period_end, 'canceled_at', v_row.canceled_at)), '{}'::jsonb);
  if v_stored_items is distinct from v_items_sorted and (v_complete or v_result = 'created') then
    v_changed := v_changed || pg_catalog.jsonb_build_object('items', pg_catalog.jsonb_build_object('old', v_stored_items, 'new', v_items_sorted));
  end if;
  return pg_catalog.jsonb_build_object('result', v_result, 'subscription_id', v_row.id, 'tenant_id', v_row.tenant_id,
    'stripe_customer_id', v_customer_ref, 'linked_customer', case when v_linked then v_customer_ref end, 'changed', v_changed);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Invoices: as 20261128041200, plus the state rank, the subscription lock when its row is
-- missing, the payments parked for an invoice applied when its row is created, and `changed`.
-- ---------------------------------------------------------------------------------------------
create or replace function private.upsert_stripe_invoice(
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
  v_linked boolean := false;
  v_row public.invoices;
  v_exists boolean;
  v_new public.invoices;
  v_verdict text;
  v_result text;
  v_first_line jsonb := p_obj -> 'lines' -> 'data' -> 0;
  v_order integer;
  v_old jsonb;
  v_changed jsonb;
  v_payment public.billing_events;
  v_also jsonb := '[]'::jsonb;
  r jsonb;
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
  select * into v_customer from public.customers as c where c.stripe_customer_id = v_customer_ref;
  if not found then
    v_linked := true;
    v_customer := private.stripe_customer_for(v_customer_ref,
      coalesce(p_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'tenant_id', p_obj -> 'metadata' ->> 'tenant_id'),
      (p_obj ->> 'livemode')::boolean);
    if v_customer.id is null then
      return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
    end if;
  end if;
  -- The subscription row, if there is one; when there is none yet, under its lock (see 2. above).
  if v_sub_ref is not null then
    select s.id into v_new.subscription_id
      from public.subscriptions as s where s.stripe_subscription_id = v_sub_ref and s.tenant_id = v_customer.tenant_id;
    if v_new.subscription_id is null then
      perform private.stripe_lock(v_sub_ref);
      select s.id into v_new.subscription_id
        from public.subscriptions as s where s.stripe_subscription_id = v_sub_ref and s.tenant_id = v_customer.tenant_id;
    end if;
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
      'stripe_customer_id', v_customer_ref, 'changed', pg_catalog.jsonb_build_object('status', pg_catalog.jsonb_build_object('old', v_row.status, 'new', null)));
  end if;

  -- The row this copy describes (id, timestamps and watermark aside).
  v_new.tenant_id := v_customer.tenant_id;
  v_new.customer_id := v_customer.id;
  v_new.stripe_subscription_id := v_sub_ref;
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
      -- Ordered by the status when its rank differs (draft → open → uncollectible → paid | void);
      -- two copies of a paid (or void) invoice: the final state, this copy applies; else fetch.
      v_order := pg_catalog.sign(coalesce(private.stripe_state_rank('invoice', v_new.status), -1)
                                 - coalesce(private.stripe_state_rank('invoice', v_row.status), -1));
      if v_order < 0 then
        return pg_catalog.jsonb_build_object('result', 'skipped_stale', 'reason', 'an earlier state of the same second',
          'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_customer_ref);
      elsif v_order = 0 and not (v_new.status = v_row.status and v_new.status in ('paid', 'void')) then
        return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
          'stripe_customer_id', v_customer_ref);
      end if;
    end if;
    v_old := pg_catalog.jsonb_build_object('status', v_row.status, 'subtotal_cents', v_row.subtotal_cents, 'tax_cents', v_row.tax_cents,
      'total_cents', v_row.total_cents, 'amount_due_cents', v_row.amount_due_cents, 'amount_paid_cents', v_row.amount_paid_cents,
      'amount_remaining_cents', v_row.amount_remaining_cents, 'paid_at', v_row.paid_at, 'period_start', v_row.period_start,
      'period_end', v_row.period_end, 'stripe_subscription_id', v_row.stripe_subscription_id);
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
    v_old := '{}'::jsonb;
    insert into public.invoices (tenant_id, customer_id, subscription_id, stripe_subscription_id, stripe_invoice_id, status, currency,
                                 subtotal_cents, tax_cents, total_cents, amount_due_cents, amount_paid_cents, amount_remaining_cents,
                                 hosted_invoice_url, period_start, period_end, paid_at, stripe_updated_at)
    values (v_new.tenant_id, v_new.customer_id, v_new.subscription_id, v_new.stripe_subscription_id, v_id, v_new.status, v_new.currency,
            v_new.subtotal_cents, v_new.tax_cents, v_new.total_cents, v_new.amount_due_cents, v_new.amount_paid_cents,
            v_new.amount_remaining_cents, v_new.hosted_invoice_url, v_new.period_start, v_new.period_end, v_new.paid_at, p_seen_at)
    returning * into v_row;
    v_result := 'created';
  end if;
  v_changed := private.stripe_changes(v_old, pg_catalog.jsonb_build_object('status', v_row.status, 'subtotal_cents', v_row.subtotal_cents,
    'tax_cents', v_row.tax_cents, 'total_cents', v_row.total_cents, 'amount_due_cents', v_row.amount_due_cents,
    'amount_paid_cents', v_row.amount_paid_cents, 'amount_remaining_cents', v_row.amount_remaining_cents, 'paid_at', v_row.paid_at,
    'period_start', v_row.period_start, 'period_end', v_row.period_end, 'stripe_subscription_id', v_row.stripe_subscription_id));

  -- Payments that came before their invoice (parked, 3. above): applied now, oldest first, under
  -- the invoice's lock (the payment took it too before parking, so none is missed).
  if v_result = 'created' then
    for v_payment in
      select * from public.billing_events as e
       where e.outcome = 'parked' and e.type = 'invoice_payment.paid'
         and (e.payload -> 'data' -> 'object' ->> 'invoice') = v_id
       order by e.created, e.stripe_event_id
         for update
    loop
      r := private.apply_stripe_invoice_payment(v_payment.payload -> 'data' -> 'object', v_payment.created);
      -- As replay_parked_stripe_events does: processed now; one that needs the invoice's copy
      -- (a partial payment…) is marked so and the copy asked of the caller (also_fetch).
      update public.billing_events as e
         set outcome = case when r ->> 'result' = 'needs_fetch' then 'needs_fetch' else 'applied' end,
             result = r ->> 'result', processed_at = pg_catalog.now(), stripe_customer_id = v_customer_ref
       where e.stripe_event_id = v_payment.stripe_event_id;
      if pg_catalog.jsonb_typeof(r -> 'fetch') = 'object' then
        v_also := v_also || pg_catalog.jsonb_build_array(r -> 'fetch');
      end if;
      perform private.audit_stripe_event(v_payment.payload, v_row.tenant_id, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'outcome', case when r ->> 'result' = 'needs_fetch' then 'needs_fetch' else 'applied' end, 'result', r ->> 'result',
        'replayed', true, 'changed', r -> 'changed')));
      if pg_catalog.jsonb_typeof(r -> 'changed') = 'object' then
        v_changed := coalesce(v_changed, '{}'::jsonb) || (r -> 'changed');
      end if;
      select * into v_row from public.invoices as i where i.id = v_row.id;
    end loop;
  end if;

  return pg_catalog.jsonb_build_object('result', v_result, 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
    'stripe_customer_id', v_customer_ref, 'linked_customer', case when v_linked then v_customer_ref end, 'changed', v_changed,
    'also_fetch', case when v_also <> '[]'::jsonb then v_also end);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- invoice_payment.paid (3. above): {result: changed | unchanged | needs_fetch | awaiting_invoice |
-- ignored, invoice_id, tenant_id, stripe_customer_id, changed, fetch}.
-- ---------------------------------------------------------------------------------------------
create function private.apply_stripe_invoice_payment(p_obj jsonb, p_seen_at timestamptz)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_invoice text := private.stripe_ref(p_obj -> 'invoice');
  v_amount bigint := case when pg_catalog.jsonb_typeof(p_obj -> 'amount_paid') = 'number' then (p_obj ->> 'amount_paid')::bigint end;
  v_paid_at timestamptz := coalesce(private.stripe_time(p_obj -> 'status_transitions' -> 'paid_at'), p_seen_at);
  v_row public.invoices;
  v_customer_ref text;
begin
  if v_invoice is null or v_invoice !~ '^in_[0-9A-Za-z]+$' then
    return pg_catalog.jsonb_build_object('result', 'ignored', 'reason', 'payment without an invoice');
  end if;
  perform private.stripe_lock(v_invoice);
  select * into v_row from public.invoices as i where i.stripe_invoice_id = v_invoice for update;
  if not found then
    return pg_catalog.jsonb_build_object('result', 'awaiting_invoice', 'invoice', v_invoice);
  end if;
  select c.stripe_customer_id into v_customer_ref from public.customers as c where c.id = v_row.customer_id;
  if v_row.status = 'paid' then
    return pg_catalog.jsonb_build_object('result', 'unchanged', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
      'stripe_customer_id', v_customer_ref);
  end if;
  if p_obj ->> 'status' is distinct from 'paid' or v_amount is null or v_row.status not in ('draft', 'open', 'uncollectible')
     or v_row.amount_paid_cents <> 0 or v_amount < v_row.amount_due_cents then
    -- A partial payment, earlier payments, a void invoice: Stripe's copy of the invoice decides.
    return pg_catalog.jsonb_build_object('result', 'needs_fetch', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
      'stripe_customer_id', v_customer_ref, 'fetch', pg_catalog.jsonb_build_object('type', 'invoice', 'id', v_invoice));
  end if;
  update public.invoices as i
     set status = 'paid', amount_paid_cents = v_amount, amount_remaining_cents = 0, paid_at = v_paid_at,
         stripe_updated_at = greatest(i.stripe_updated_at, p_seen_at)
   where i.id = v_row.id;
  return pg_catalog.jsonb_build_object('result', 'changed', 'invoice_id', v_row.id, 'tenant_id', v_row.tenant_id,
    'stripe_customer_id', v_customer_ref, 'changed', pg_catalog.jsonb_build_object(
      'status', pg_catalog.jsonb_build_object('old', v_row.status, 'new', 'paid'),
      'amount_paid_cents', pg_catalog.jsonb_build_object('old', v_row.amount_paid_cents, 'new', v_amount),
      'amount_remaining_cents', pg_catalog.jsonb_build_object('old', v_row.amount_remaining_cents, 'new', 0),
      'paid_at', pg_catalog.jsonb_build_object('old', null, 'new', v_paid_at)));
end
$$;

comment on function private.apply_stripe_invoice_payment(jsonb, timestamptz) is
  'invoice_payment.paid: a draft/open/uncollectible invoice with nothing paid, whose amount due the payment covers, becomes paid; otherwise needs_fetch, or awaiting_invoice when the invoice row does not exist yet.';

revoke all on function private.stripe_state_rank(text, text), private.stripe_changes(jsonb, jsonb),
  private.apply_stripe_invoice_payment(jsonb, timestamptz)
  from public, anon, authenticated;
