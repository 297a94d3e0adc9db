-- private.apply_stripe_event (20261128041300), cheaper per event, same contract:
--
--   * The ledger row is written ONCE, with its outcome. It used to be inserted as 'received' first
--     (so that a concurrent redelivery would wait on its key) and then updated with the outcome: two
--     heap tuples, two index entries in billing_events_unprocessed_idx and the primary key, twice
--     the WAL of a payload-sized row. Now a transaction-level advisory lock on the event id does the
--     waiting (a redelivery arriving meanwhile waits for the first delivery to commit, then finds
--     its row: duplicate), and the row is inserted at the end (updated instead when it exists: an
--     event that failed or waited for a fetch before, which Stripe delivers again).
--   * At most ONE audit row per event (action webhook_event, area stripe, as before), holding what
--     the event changed (details.changed: {column: {old, new}}, a subscription's items included),
--     while the generic row trigger stays quiet for the rows this event writes (20261130030100).
--     Written for every state change (created, changed, deleted, a customer tied), every parked
--     event and every failure (details.error, as the operations guide's error query reads it); an
--     event that changed nothing (unchanged, skipped_stale, an ignored type, a duplicate) is in
--     the ledger only. Parked events replayed in the same transaction get their own row each.
--   * The payload is kept whole while it may be read again (a parked event is replayed from it; a
--     failed one is kept for diagnosis) and for types we do not handle (all we keep of them); an
--     applied event keeps its envelope and the object's id, type, status and references (customer,
--     subscription, invoice: what the ops commands read), marked "trimmed": true. A subscription or invoice event is 6-7 KB of JSON,
--     compressed (pglz) and often moved to TOAST at every insert; the object is in our rows and
--     at Stripe, and what the event changed in its audit row.
--   * invoice_payment.paid applies the payment itself (private.apply_stripe_invoice_payment,
--     20261130030000): no fetch unless the payment is partial or the invoice not payable; a payment
--     whose invoice we do not have yet is parked (outcome parked, result awaiting_invoice) and
--     applied when the invoice's row is created (upsert_stripe_invoice). The index below finds them.
--   * checkout.session.completed no longer asks the webhook to fetch the session's subscription
--     when its row does not exist yet: customer.subscription.created, which Stripe sends for every
--     checkout in subscription mode (and retries for three days), creates it, with the customer
--     tied by then (or parked and replayed when it is); billing-sync repairs the rest daily. The
--     fetch cost a Stripe call for nearly every checkout (its events come in any order).
--   * The customer's advisory lock is taken only when no customers row ties it yet (20261130030000).
-- Arguments, results, outcomes and privileges are unchanged (CREATE OR REPLACE keeps the grants).

comment on column public.billing_events.payload is
  'The event as received (signature verified), except once applied: then its envelope and the object''s id, object, status, customer, subscription and invoice, with "trimmed": true (parked, failed, needs_fetch and ignored events keep it whole).';

-- Payments parked until their invoice's row exists, found by invoice id (upsert_stripe_invoice).
-- Partial: the index holds only the parked payments (usually none or a few seconds' worth).
create index billing_events_parked_payment_invoice_idx on public.billing_events ((payload -> 'data' -> 'object' ->> 'invoice'))
  where outcome = 'parked' and type = 'invoice_payment.paid';

-- The checkout session: as 20261128041300, the customers row read before the customer's lock.
create or replace function private.apply_stripe_checkout_session(p_obj jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_customer_ref text := private.stripe_ref(p_obj -> 'customer');
  v_tenant uuid := coalesce(private.stripe_tenant_hint(p_obj ->> 'client_reference_id'),
                            private.stripe_tenant_hint(p_obj -> 'metadata' ->> 'tenant_id'));
  v_row public.customers;
  v_link jsonb;
begin
  if p_obj ->> 'mode' is distinct from 'subscription' or v_customer_ref is null or v_customer_ref !~ '^cus_[0-9A-Za-z]+$' then
    return pg_catalog.jsonb_build_object('result', 'ignored', 'reason', 'not a subscription checkout with a customer');
  end if;
  select * into v_row from public.customers as c where c.stripe_customer_id = v_customer_ref;
  if not found then
    perform private.stripe_lock(v_customer_ref);
    select * into v_row from public.customers as c where c.stripe_customer_id = v_customer_ref;
  end if;
  if found then
    if v_tenant is not null and v_tenant <> v_row.tenant_id then
      raise exception 'checkout session %: Stripe customer % belongs to tenant %, the session names tenant %',
        p_obj ->> 'id', v_customer_ref, v_row.tenant_id, v_tenant using errcode = 'unique_violation';
    end if;
    return pg_catalog.jsonb_build_object('result', 'unchanged', 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_customer_ref);
  end if;
  if v_tenant is null then
    return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
  end if;
  v_link := private.tie_stripe_customer(v_tenant, v_customer_ref,
    coalesce(p_obj -> 'customer_details' ->> 'email', p_obj ->> 'customer_email'), (p_obj ->> 'livemode')::boolean);
  return pg_catalog.jsonb_build_object('result', 'created', 'tenant_id', v_tenant, 'stripe_customer_id', v_customer_ref,
    'customer_id', v_link -> 'customer_id', 'linked_customer', v_customer_ref);
end
$$;

-- What one event does to our rows: as 20261128041300, invoice_payment.paid applied from the payment.
create or replace function private.dispatch_stripe_event(p_event jsonb, p_fetched jsonb, p_prices jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_seen timestamptz := private.stripe_time(p_event -> 'created');
  v_auth boolean := false;
  v_kind text;
  v_ref text;
  r jsonb;
begin
  v_kind := case
    when v_type = 'checkout.session.completed' then 'checkout'
    when v_type in ('customer.created', 'customer.updated', 'customer.deleted') then 'customer'
    when v_type like 'customer.subscription.%' then 'subscription'
    when v_type like 'invoice.%' then 'invoice'
    when v_type = 'invoice_payment.paid' then 'invoice_payment'
  end;
  if v_kind is null then
    return pg_catalog.jsonb_build_object('result', 'ignored');
  end if;

  if p_fetched is not null then
    if coalesce((p_fetched ->> 'missing')::boolean, false) then
      return pg_catalog.jsonb_build_object('result', 'skipped_missing');
    end if;
    v_obj := p_fetched -> 'object';
    v_seen := (p_fetched ->> 'seen_at')::timestamptz;
    v_auth := true;
    if v_kind = 'invoice_payment' then
      v_kind := 'invoice';  -- the copy fetched for a payment is its invoice
    end if;
  end if;

  case v_kind
    when 'checkout' then
      r := private.apply_stripe_checkout_session(v_obj);
    when 'customer' then
      r := private.upsert_stripe_customer(
        case when v_type = 'customer.deleted' and not v_auth then v_obj || '{"deleted": true}'::jsonb else v_obj end, v_seen, v_auth);
      v_ref := v_obj ->> 'id';
    when 'subscription' then
      r := private.upsert_stripe_subscription(v_obj, v_seen, v_auth, p_prices);
      v_ref := v_obj ->> 'id';
    when 'invoice' then
      r := private.upsert_stripe_invoice(
        case when v_type = 'invoice.deleted' and not v_auth then v_obj || '{"deleted": true}'::jsonb else v_obj end, v_seen, v_auth);
      v_ref := v_obj ->> 'id';
    else
      -- invoice_payment.paid: its `fetch` (the invoice) is set when it needs one.
      return private.apply_stripe_invoice_payment(v_obj, v_seen);
  end case;

  if r ->> 'result' = 'needs_fetch' then
    r := r || pg_catalog.jsonb_build_object('fetch', pg_catalog.jsonb_build_object('type', v_kind, 'id', v_ref));
  end if;
  return r;
end
$$;

-- The parked events of a customer now tied to a tenant: as 20261128041300, their audit rows carry
-- details.changed like the webhook's.
create or replace function private.replay_parked_stripe_events(p_stripe_customer_id text, p_prices jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_event public.billing_events;
  r jsonb;
  v_count integer := 0;
  v_also jsonb := '[]'::jsonb;
  v_outcome text;
begin
  for v_event in
    select * from public.billing_events as e
     where e.stripe_customer_id = p_stripe_customer_id and e.outcome = 'parked'
     order by e.created, e.received_at, e.stripe_event_id
       for update
  loop
    r := private.dispatch_stripe_event(v_event.payload, null, p_prices);
    if r ->> 'result' in ('unknown_customer', 'awaiting_invoice') then
      continue;  -- still waiting (not for this customer's tie)
    end if;
    v_outcome := case when r ->> 'result' = 'ignored' then 'ignored' when r ->> 'result' = 'needs_fetch' then 'needs_fetch' else 'applied' end;
    if r ? 'fetch' then
      v_also := v_also || pg_catalog.jsonb_build_array(r -> 'fetch');
    end if;
    update public.billing_events as e
       set outcome = v_outcome, result = r ->> 'result', processed_at = pg_catalog.now(), error = null
     where e.stripe_event_id = v_event.stripe_event_id;
    perform private.audit_stripe_event(v_event.payload, (r ->> 'tenant_id')::uuid, pg_catalog.jsonb_strip_nulls(
      pg_catalog.jsonb_build_object('outcome', v_outcome, 'result', r ->> 'result', 'replayed', true, 'changed', r -> 'changed')));
    v_count := v_count + 1;
  end loop;
  return pg_catalog.jsonb_build_object('replayed', v_count, 'also_fetch', v_also);
end
$$;

create or replace function private.apply_stripe_event(p_event jsonb, p_options jsonb default '{}'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id text := p_event ->> 'id';
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_created timestamptz;
  v_prices jsonb := coalesce(p_options -> 'prices', '{}'::jsonb);
  v_row public.billing_events;
  v_exists boolean;
  r jsonb;
  v_outcome text;
  v_error text;
  v_state text;
  v_customer text;
  v_replay jsonb;
  v_also jsonb := '[]'::jsonb;
  v_tenant uuid;
  v_payload jsonb := p_event;
begin
  if v_id is null or v_id !~ '^evt_[0-9A-Za-z]+$'
     or v_type is null or v_type !~ '^[a-z0-9_]+(\.[a-z0-9_]+)+$' or length(v_type) > 100
     or jsonb_typeof(p_event -> 'created') is distinct from 'number'
     or jsonb_typeof(p_event -> 'livemode') is distinct from 'boolean'
     or jsonb_typeof(v_obj) is distinct from 'object' then
    raise exception 'apply_stripe_event: not a Stripe event (id evt_…, type, created, livemode, data.object)'
      using errcode = 'invalid_parameter_value';
  end if;
  v_created := pg_catalog.to_timestamp((p_event ->> 'created')::double precision);

  -- A redelivery of an event being applied waits here for it, then finds its row.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('stripe-event:' || v_id, 0));
  select * into v_row from public.billing_events as e where e.stripe_event_id = v_id;
  v_exists := found;
  if v_exists and v_row.processed_at is not null then
    return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'duplicate', 'first_outcome', v_row.outcome);
  end if;

  -- This event's row changes are audited by its webhook_event row (20261130030100).
  perform pg_catalog.set_config('c_secur360.stripe_event_audit', 'on', true);
  begin
    if p_options ? 'fetch_error' then
      raise exception 'could not fetch the object from Stripe: %', pg_catalog.left(p_options ->> 'fetch_error', 500);
    end if;
    r := private.dispatch_stripe_event(p_event, p_options -> 'fetched', v_prices);
  exception when others then
    get stacked diagnostics v_error = message_text, v_state = returned_sqlstate;
    if v_exists then
      update public.billing_events as e
         set outcome = 'failed', error = pg_catalog.left(v_error, 2000), attempts = e.attempts + 1, processed_at = null
       where e.stripe_event_id = v_id;
    else
      insert into public.billing_events (stripe_event_id, type, created, livemode, payload, api_version, object_id, outcome, error, attempts)
      values (v_id, v_type, v_created, (p_event ->> 'livemode')::boolean, p_event, p_event ->> 'api_version',
              pg_catalog.left(v_obj ->> 'id', 255), 'failed', pg_catalog.left(v_error, 2000), 1);
    end if;
    perform private.audit_stripe_event(p_event, null,
      pg_catalog.jsonb_build_object('outcome', 'failed', 'error', pg_catalog.left(v_error, 2000), 'sqlstate', v_state));
    perform pg_catalog.set_config('c_secur360.stripe_event_audit', 'off', true);
    return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'failed', 'error', v_error, 'sqlstate', v_state);
  end;

  v_customer := case when r ->> 'stripe_customer_id' ~ '^cus_[0-9A-Za-z]+$' then r ->> 'stripe_customer_id' end;
  v_tenant := (r ->> 'tenant_id')::uuid;
  v_outcome := case r ->> 'result'
    when 'ignored' then 'ignored'
    when 'unknown_customer' then 'parked'
    when 'awaiting_invoice' then 'parked'
    when 'needs_fetch' then 'needs_fetch'
    else 'applied'
  end;

  if v_outcome = 'needs_fetch' then
    -- Nothing was written; the row says the event waits for Stripe's copy (the next call brings it).
    if v_exists then
      update public.billing_events as e set outcome = 'needs_fetch', stripe_customer_id = coalesce(v_customer, e.stripe_customer_id)
       where e.stripe_event_id = v_id;
    else
      insert into public.billing_events (stripe_event_id, type, created, livemode, payload, api_version, object_id, outcome, stripe_customer_id)
      values (v_id, v_type, v_created, (p_event ->> 'livemode')::boolean, p_event, p_event ->> 'api_version',
              pg_catalog.left(v_obj ->> 'id', 255), 'needs_fetch', v_customer);
    end if;
    perform pg_catalog.set_config('c_secur360.stripe_event_audit', 'off', true);
    return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'needs_fetch', 'fetch', r -> 'fetch', 'tenant_id', v_tenant);
  end if;

  -- The payload: whole while the event may be read again (parked: replayed from it), and for a type
  -- we do not handle (ignored: the payload is all we keep of it; `npm run ops -- rotate-webhook-secret`
  -- reads its test event's). Once applied, its envelope and the object's references (what the
  -- ledger's readers use: the ops commands read data.object.object / customer), marked "trimmed".
  -- What it changed is in the audit row; the object itself is in our rows, and at Stripe.
  if v_outcome = 'applied' then
    v_payload := pg_catalog.jsonb_build_object('id', v_id, 'object', 'event', 'type', v_type, 'created', p_event -> 'created',
      'livemode', p_event -> 'livemode', 'api_version', p_event -> 'api_version', 'trimmed', true,
      'data', pg_catalog.jsonb_build_object('object', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'id', v_obj -> 'id', 'object', v_obj -> 'object', 'status', v_obj -> 'status',
        'customer', case pg_catalog.jsonb_typeof(v_obj -> 'customer') when 'object' then v_obj -> 'customer' -> 'id' else v_obj -> 'customer' end,
        'subscription', case pg_catalog.jsonb_typeof(v_obj -> 'subscription') when 'object' then v_obj -> 'subscription' -> 'id' else v_obj -> 'subscription' end,
        'invoice', case pg_catalog.jsonb_typeof(v_obj -> 'invoice') when 'object' then v_obj -> 'invoice' -> 'id' else v_obj -> 'invoice' end))));
  end if;
  if v_exists then
    update public.billing_events as e
       set outcome = v_outcome, result = r ->> 'result', processed_at = pg_catalog.now(), error = null, stripe_customer_id = v_customer,
           payload = v_payload
     where e.stripe_event_id = v_id;
  else
    insert into public.billing_events (stripe_event_id, type, created, livemode, payload, api_version, object_id,
                                       outcome, result, processed_at, stripe_customer_id)
    values (v_id, v_type, v_created, (p_event ->> 'livemode')::boolean, v_payload, p_event ->> 'api_version',
            pg_catalog.left(v_obj ->> 'id', 255), v_outcome, r ->> 'result', pg_catalog.now(), v_customer);
  end if;
  -- The audit row: for what changed our rows (created, changed, deleted; a customer tied) and what
  -- an operator must see (parked; failures above). An event that changed nothing (unchanged,
  -- skipped_stale, an ignored type) is in the ledger only (billing_events: outcome and result).
  if v_outcome = 'parked' or r ->> 'result' in ('created', 'changed', 'deleted') or r ->> 'linked_customer' is not null then
    perform private.audit_stripe_event(p_event, v_tenant, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
      'outcome', v_outcome, 'result', r ->> 'result', 'reason', r ->> 'reason', 'changed', r -> 'changed',
      'linked_customer', r ->> 'linked_customer')));
  end if;

  if pg_catalog.jsonb_typeof(r -> 'also_fetch') = 'array' then
    v_also := v_also || (r -> 'also_fetch');  -- a parked payment applied to the new invoice needs its copy
  end if;
  -- The customer is tied to a tenant now: its parked events (if any) apply, in this transaction.
  if v_outcome = 'applied' and v_customer is not null
     and exists (select from public.billing_events as e where e.stripe_customer_id = v_customer and e.outcome = 'parked') then
    begin
      v_replay := private.replay_parked_stripe_events(v_customer, v_prices);
      v_also := v_also || (v_replay -> 'also_fetch');
    exception when others then
      -- The event itself stands; its customer's parked events stay parked (billing-sync repairs the rows).
      get stacked diagnostics v_error = message_text, v_state = returned_sqlstate;
      perform private.audit_stripe_event(p_event, v_tenant, pg_catalog.jsonb_build_object('outcome', 'applied',
        'error', 'replaying the parked events of ' || v_customer || ' failed: ' || pg_catalog.left(v_error, 2000), 'sqlstate', v_state));
    end;
  end if;
  perform pg_catalog.set_config('c_secur360.stripe_event_audit', 'off', true);

  return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'event_id', v_id, 'outcome', v_outcome, 'result', r ->> 'result', 'tenant_id', v_tenant,
    'object_id', v_obj ->> 'id', 'replayed', v_replay -> 'replayed',
    'also_fetch', case when v_also <> '[]'::jsonb then v_also end));
end
$$;
