-- billing-checkout links the Stripe customer it has just created (private.link_stripe_customer),
-- and the fake Stripe (like Stripe) sends `customer.created` for it at once. That event often
-- arrives before the link commits: no row ties the customer to a tenant yet, so stripe-webhook
-- parks it (20261128041300). Parked events are replayed when the webhook or billing-sync ties the
-- customer, but a customer linked by billing-checkout is already tied by then, so after a declined
-- or abandoned checkout nothing ever replayed them: they stayed parked for good (38 of them in a
-- day of local testing) and inflated the "parked" count operators watch.
--
-- Now link_stripe_customer takes the customer's advisory lock (private.stripe_lock, the one the
-- webhook takes before deciding to park) and, when it links, replays that customer's parked events
-- in the same transaction. With the lock, an event either parks and commits before the link looks
-- at parked events, or runs after the link and finds the customer tied. `prices` (optional, the
-- STRIPE_PRICE_* → kind map the webhook passes) lets a parked subscription event be applied too.
-- Otherwise as in 20261128030400.
create or replace function private.link_stripe_customer(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_tenant_id uuid := (p ->> 'tenant_id')::uuid;
  v_customer text := p ->> 'stripe_customer_id';
  v_stored text;
  v_inserted integer;
begin
  if v_tenant_id is null or v_customer is null then
    raise exception 'link_stripe_customer: tenant_id and stripe_customer_id are required'
      using errcode = 'invalid_parameter_value';
  end if;

  perform private.stripe_lock(v_customer);

  insert into public.customers (tenant_id, stripe_customer_id, livemode)
  values (v_tenant_id, v_customer, coalesce((p ->> 'livemode')::boolean, false))
  on conflict (tenant_id) do nothing;
  get diagnostics v_inserted = row_count;

  select c.stripe_customer_id into v_stored from public.customers as c where c.tenant_id = v_tenant_id;

  if v_inserted = 1 then
    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    values ('billing', 'customer_linked', p ->> 'actor', v_tenant_id, v_stored,
            pg_catalog.jsonb_build_object('stripe_customer_id', v_stored));
    -- Events about this customer that came before the link (customer.created, typically).
    perform private.replay_parked_stripe_events(v_customer, coalesce(p -> 'prices', '{}'::jsonb));
  elsif v_stored is distinct from v_customer then
    -- The tenant got another customer meanwhile (the webhook, an operator): ours stays unused in
    -- Stripe. Not a failure of the request, but something for an operator to tidy up.
    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    values ('billing', 'customer_not_linked', p ->> 'actor', v_tenant_id, v_customer,
            pg_catalog.jsonb_build_object('stripe_customer_id', v_stored, 'unused_customer', v_customer,
              'error', pg_catalog.format('tenant already has Stripe customer %s; %s was left unused', v_stored, v_customer)));
  end if;

  return pg_catalog.jsonb_build_object('stripe_customer_id', v_stored, 'linked', v_inserted = 1);
end
$$;

comment on function private.link_stripe_customer(jsonb) is
  'Links a Stripe customer to a tenant unless it has one (one per tenant) and replays the events about it parked before the link; returns the tenant''s customer. Audited (billing, customer_linked).';

revoke all on function private.link_stripe_customer(jsonb) from public, anon, authenticated;
