-- private.apply_stripe_event(event jsonb, options jsonb): stripe-webhook's database work, one call,
-- one transaction: the billing_events row AND its effect on our rows (20261128041200), together.
--
-- options: {"prices": {"<price id>": "plan" | "addon_site"},            the functions' STRIPE_PRICE_*
--           "fetched": {"object": {…}, "seen_at": "<time>"} | {"missing": true},  after needs_fetch
--           "fetch_error": "<text>"}                                       the fetch itself failed
--
-- Returns {"event_id", "outcome", "result", "tenant_id", "object_id", "fetch", "also_fetch", "error"}:
--   duplicate     the event id was already processed (or parked): nothing changed;
--   applied       result = created | changed | unchanged | skipped_stale | deleted | …;
--   ignored       a type we do not act on (recorded all the same, answered 2xx);
--   parked        about a Stripe customer no row and no metadata ties to a tenant yet (below);
--   needs_fetch   two states of the same second (see 20261128041200): `fetch` = {type, id} to get
--                 from Stripe; call again with options.fetched (the event stays unprocessed until then);
--   failed        error = the message; billing_events.error, attempts + 1, and a system_audit_logs
--                 row with details.error (the operations guide's "errors of the last 24 h" finds it);
--                 the webhook answers 5xx so Stripe retries (a failed event is processed again when
--                 it comes back, a processed one never).
-- also_fetch: objects whose latest copy the caller should fetch and pass to
-- private.apply_stripe_object (a checkout's subscription we never heard of; same-second conflicts
-- met while replaying parked events). Best effort: billing-sync repairs what is left.
--
-- Handled types: checkout.session.completed; customer.created/updated/deleted; every
-- customer.subscription.*; every invoice.* (invoice.upcoming has no id: ignored; invoice.deleted
-- removes the draft); invoice_payment.paid (the invoice is fetched unless our row is already paid).
--
-- Unknown customers. An event can arrive before anything tied its Stripe customer to a tenant (a
-- customer.subscription.created before its checkout.session.completed), or be about a customer that
-- is not ours at all (another product on the same Stripe account). Answering 5xx would make Stripe
-- retry it for three days and could get the endpoint disabled; dropping it would lose a state change.
-- So it is PARKED: recorded as processed with outcome 'parked' and its stripe_customer_id, and
-- replayed, oldest first, by the first later event that ties that customer to a tenant (in the same
-- transaction), whatever ties it (a checkout session, a subscription's metadata.tenant_id), or by
-- the first event about it after billing-checkout linked it. Parked events of customers never tied
-- stay parked (visible: outcome = 'parked').
create function private.apply_stripe_checkout_session(p_obj jsonb)
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
  perform private.stripe_lock(v_customer_ref);
  select * into v_row from public.customers as c where c.stripe_customer_id = v_customer_ref;
  if found then
    if v_tenant is not null and v_tenant <> v_row.tenant_id then
      raise exception 'checkout session %: Stripe customer % belongs to tenant %, the session names tenant %',
        p_obj ->> 'id', v_customer_ref, v_row.tenant_id, v_tenant using errcode = 'unique_violation';
    end if;
    return pg_catalog.jsonb_build_object('result', 'unchanged', 'tenant_id', v_row.tenant_id, 'stripe_customer_id', v_customer_ref,
      'subscription', private.stripe_ref(p_obj -> 'subscription'));
  end if;
  if v_tenant is null then
    return pg_catalog.jsonb_build_object('result', 'unknown_customer', 'stripe_customer_id', v_customer_ref);
  end if;
  v_link := private.tie_stripe_customer(v_tenant, v_customer_ref,
    coalesce(p_obj -> 'customer_details' ->> 'email', p_obj ->> 'customer_email'), (p_obj ->> 'livemode')::boolean);
  return pg_catalog.jsonb_build_object('result', 'created', 'tenant_id', v_tenant, 'stripe_customer_id', v_customer_ref,
    'customer_id', v_link -> 'customer_id', 'linked_customer', v_customer_ref, 'subscription', private.stripe_ref(p_obj -> 'subscription'));
end
$$;

comment on function private.apply_stripe_checkout_session(jsonb) is
  'checkout.session.completed: ties the session''s Stripe customer to the tenant of client_reference_id / metadata.tenant_id.';

-- What one event does to our rows (no billing_events bookkeeping): {result, tenant_id,
-- stripe_customer_id, linked_customer, fetch, subscription}. p_fetched replaces the event's object by
-- a copy fetched from Stripe (authoritative, seen at its response's Date).
create function private.dispatch_stripe_event(p_event jsonb, p_fetched jsonb, p_prices jsonb)
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
      -- invoice_payment.paid: the payment names its invoice; our row is right if already paid,
      -- otherwise the invoice (amounts, status, paid_at) is fetched and applied.
      v_ref := private.stripe_ref(v_obj -> 'invoice');
      select pg_catalog.jsonb_build_object('result', 'unchanged', 'tenant_id', i.tenant_id,
               'stripe_customer_id', c.stripe_customer_id)
        into r
        from public.invoices as i join public.customers as c on c.id = i.customer_id
       where i.stripe_invoice_id = v_ref and i.status = 'paid';
      if r is null then
        if v_ref is null then
          return pg_catalog.jsonb_build_object('result', 'ignored', 'reason', 'payment without an invoice');
        end if;
        r := pg_catalog.jsonb_build_object('result', 'needs_fetch');
      end if;
      if r ->> 'result' = 'needs_fetch' then
        return r || pg_catalog.jsonb_build_object('fetch', pg_catalog.jsonb_build_object('type', 'invoice', 'id', v_ref));
      end if;
      return r;
  end case;

  if r ->> 'result' = 'needs_fetch' then
    r := r || pg_catalog.jsonb_build_object('fetch', pg_catalog.jsonb_build_object('type', v_kind, 'id', v_ref));
  end if;
  return r;
end
$$;

comment on function private.dispatch_stripe_event(jsonb, jsonb, jsonb) is
  'What one Stripe event does to our rows (no ledger bookkeeping); used by apply_stripe_event and the replay of parked events.';

-- One system_audit_logs row per processed event (area stripe, action webhook_event, target the
-- event id, as the operations guide reads them); details.error on failure.
create function private.audit_stripe_event(p_event jsonb, p_tenant_id uuid, p_details jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('stripe', 'webhook_event', 'stripe', p_tenant_id, p_event ->> 'id',
          pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'type', p_event ->> 'type', 'object_id', p_event -> 'data' -> 'object' ->> 'id',
            'api_version', p_event ->> 'api_version', 'created', p_event -> 'created') || p_details));
$$;

-- Replays the parked events of a Stripe customer that is now tied to a tenant, oldest first,
-- through the same dispatch. Returns {replayed, also_fetch: [{type, id}]}.
create function private.replay_parked_stripe_events(p_stripe_customer_id text, p_prices jsonb)
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
    if r ->> 'result' = 'unknown_customer' then
      continue;  -- still not tied (cannot happen for the customer just tied; kept parked if it does)
    end if;
    v_outcome := case when r ->> 'result' = 'ignored' then 'ignored' when r ->> 'result' = 'needs_fetch' then 'needs_fetch' else 'applied' end;
    if r ? 'fetch' then
      v_also := v_also || pg_catalog.jsonb_build_array(r -> 'fetch');
    end if;
    update public.billing_events as e
       set outcome = v_outcome, result = r ->> 'result', processed_at = pg_catalog.now(), error = null
     where e.stripe_event_id = v_event.stripe_event_id;
    perform private.audit_stripe_event(v_event.payload, (r ->> 'tenant_id')::uuid,
      pg_catalog.jsonb_build_object('outcome', v_outcome, 'result', r ->> 'result', 'replayed', true));
    v_count := v_count + 1;
  end loop;
  return pg_catalog.jsonb_build_object('replayed', v_count, 'also_fetch', v_also);
end
$$;

comment on function private.replay_parked_stripe_events(text, jsonb) is
  'Applies the parked events of a Stripe customer now tied to a tenant, oldest first; billing-sync may call it after tying customers itself.';

create function private.apply_stripe_event(p_event jsonb, p_options jsonb default '{}'::jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id text := p_event ->> 'id';
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_prices jsonb := coalesce(p_options -> 'prices', '{}'::jsonb);
  v_row public.billing_events;
  r jsonb;
  v_outcome text;
  v_error text;
  v_state text;
  v_customer text;
  v_replay jsonb;
  v_also jsonb := '[]'::jsonb;
  v_tenant uuid;
begin
  if v_id is null or v_id !~ '^evt_[0-9A-Za-z]+$'
     or v_type is null or v_type !~ '^[a-z0-9_]+(\.[a-z0-9_]+)+$' or length(v_type) > 100
     or jsonb_typeof(p_event -> 'created') is distinct from 'number'
     or jsonb_typeof(p_event -> 'livemode') is distinct from 'boolean'
     or jsonb_typeof(v_obj) is distinct from 'object' then
    raise exception 'apply_stripe_event: not a Stripe event (id evt_…, type, created, livemode, data.object)'
      using errcode = 'invalid_parameter_value';
  end if;

  -- The ledger row first: a redelivered event meets it (and waits for a concurrent first delivery).
  insert into public.billing_events (stripe_event_id, type, created, livemode, payload, api_version, object_id, outcome)
  values (v_id, v_type, private.stripe_time(p_event -> 'created'), (p_event ->> 'livemode')::boolean, p_event,
          p_event ->> 'api_version', pg_catalog.left(v_obj ->> 'id', 255), 'received')
  on conflict (stripe_event_id) do nothing
  returning * into v_row;
  if not found then
    select * into v_row from public.billing_events as e where e.stripe_event_id = v_id for update;
    if v_row.processed_at is not null then
      return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'duplicate', 'first_outcome', v_row.outcome);
    end if;
  end if;

  begin
    if p_options ? 'fetch_error' then
      raise exception 'could not fetch the object from Stripe: %', pg_catalog.left(p_options ->> 'fetch_error', 500);
    end if;
    r := private.dispatch_stripe_event(p_event, p_options -> 'fetched', v_prices);
  exception when others then
    get stacked diagnostics v_error = message_text, v_state = returned_sqlstate;
    update public.billing_events as e
       set outcome = 'failed', error = pg_catalog.left(v_error, 2000), attempts = e.attempts + 1, processed_at = null
     where e.stripe_event_id = v_id;
    perform private.audit_stripe_event(p_event, null,
      pg_catalog.jsonb_build_object('outcome', 'failed', 'error', pg_catalog.left(v_error, 2000), 'sqlstate', v_state));
    return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'failed', 'error', v_error, 'sqlstate', v_state);
  end;

  v_customer := r ->> 'stripe_customer_id';
  v_tenant := (r ->> 'tenant_id')::uuid;
  v_outcome := case r ->> 'result'
    when 'ignored' then 'ignored'
    when 'unknown_customer' then 'parked'
    when 'needs_fetch' then 'needs_fetch'
    else 'applied'
  end;

  if v_outcome = 'needs_fetch' then
    update public.billing_events as e set outcome = 'needs_fetch', stripe_customer_id = coalesce(v_customer, e.stripe_customer_id)
     where e.stripe_event_id = v_id;
    return pg_catalog.jsonb_build_object('event_id', v_id, 'outcome', 'needs_fetch', 'fetch', r -> 'fetch', 'tenant_id', v_tenant);
  end if;

  update public.billing_events as e
     set outcome = v_outcome, result = r ->> 'result', processed_at = pg_catalog.now(), error = null,
         stripe_customer_id = case when v_customer ~ '^cus_[0-9A-Za-z]+$' then v_customer end
   where e.stripe_event_id = v_id;
  perform private.audit_stripe_event(p_event, v_tenant,
    pg_catalog.jsonb_build_object('outcome', v_outcome, 'result', r ->> 'result', 'reason', r ->> 'reason'));

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
  -- A completed checkout whose subscription we never heard of (its events not delivered yet, or not
  -- subscribed to): fetch it, so the subscriptions row exists when the customer comes back.
  if v_type = 'checkout.session.completed' and r ->> 'subscription' is not null
     and not exists (select from public.subscriptions as s where s.stripe_subscription_id = r ->> 'subscription') then
    v_also := v_also || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('type', 'subscription', 'id', r ->> 'subscription'));
  end if;

  return pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'event_id', v_id, 'outcome', v_outcome, 'result', r ->> 'result', 'tenant_id', v_tenant,
    'object_id', v_obj ->> 'id', 'replayed', v_replay -> 'replayed',
    'also_fetch', case when v_also <> '[]'::jsonb then v_also end));
end
$$;

comment on function private.apply_stripe_event(jsonb, jsonb) is
  'stripe-webhook: records a verified Stripe event (billing_events, idempotent by id) and applies it in the same transaction; parks events about customers not tied to a tenant; failures recorded and audited with details.error.';

revoke all on function private.apply_stripe_checkout_session(jsonb), private.dispatch_stripe_event(jsonb, jsonb, jsonb),
  private.audit_stripe_event(jsonb, uuid, jsonb), private.replay_parked_stripe_events(text, jsonb),
  private.apply_stripe_event(jsonb, jsonb)
  from public, anon, authenticated;
grant execute on function private.apply_stripe_event(jsonb, jsonb), private.replay_parked_stripe_events(text, jsonb)
  to service_role;
