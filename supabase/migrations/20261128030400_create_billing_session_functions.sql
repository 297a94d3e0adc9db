-- What billing-checkout and billing-portal write, each in one call on their service connection
-- (the caller's rights were checked before, as the user, under RLS):
--
-- private.link_stripe_customer(p jsonb) → { stripe_customer_id, linked }
--   p: { tenant_id, stripe_customer_id, livemode?, actor? }. One Stripe customer per tenant
--   (customers.tenant_id is unique): inserts the tenant's customers row unless it has one, and
--   returns the customer the tenant has afterwards — the given one (linked: true when this call
--   inserted it) or the one linked first by a concurrent request or the webhook, which the caller
--   then uses. Audit: the generic trigger logs the insert; a `customer_linked` billing row says who
--   caused it; a tenant that already had ANOTHER customer gets a `customer_not_linked` row with
--   details.error (an unused customer left in Stripe, for an operator to tidy up).
--
-- private.record_billing_session(p jsonb)
--   p: { tenant_id, actor, action, target?, details? }: one audit row, area 'billing', for a
--   session opened (checkout_session_created, portal_session_created) or refused by Stripe
--   (checkout_session_failed, portal_session_failed: details.error is required, so the operators'
--   "errors of the last 24 h" query lists it). details never holds a session URL: a Checkout or
--   portal URL is a bearer link to the tenant's billing.
--
-- Closed to anon and authenticated (an API caller could forge audit rows or link a customer of its
-- choice); executed by postgres (the functions' connection) and service_role.

create function private.link_stripe_customer(p jsonb)
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

  insert into public.customers (tenant_id, stripe_customer_id, livemode)
  values (v_tenant_id, v_customer, coalesce((p ->> 'livemode')::boolean, false))
  on conflict (tenant_id) do nothing;
  get diagnostics v_inserted = row_count;

  select c.stripe_customer_id into v_stored from public.customers as c where c.tenant_id = v_tenant_id;

  if v_inserted = 1 then
    insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
    values ('billing', 'customer_linked', p ->> 'actor', v_tenant_id, v_stored,
            pg_catalog.jsonb_build_object('stripe_customer_id', v_stored));
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
  'Links a Stripe customer to a tenant unless it has one (one per tenant); returns the tenant''s customer. Audited (billing, customer_linked).';

create function private.record_billing_session(p jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_action text := p ->> 'action';
  v_details jsonb := coalesce(p -> 'details', '{}'::jsonb);
begin
  if v_action is null or v_action not in ('checkout_session_created', 'checkout_session_failed',
                                          'portal_session_created', 'portal_session_failed') then
    raise exception 'record_billing_session: unknown action %', coalesce(v_action, '(none)')
      using errcode = 'invalid_parameter_value';
  end if;
  if pg_catalog.jsonb_typeof(v_details) is distinct from 'object' then
    raise exception 'record_billing_session: details must be an object' using errcode = 'invalid_parameter_value';
  end if;
  if v_action like '%_failed' and v_details ->> 'error' is null then
    raise exception 'record_billing_session: a failure needs details.error' using errcode = 'invalid_parameter_value';
  end if;
  -- Belt and braces: no URL in the trail (session URLs are bearer links).
  v_details := v_details - 'url' - 'success_url' - 'cancel_url' - 'return_url';

  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values ('billing', v_action, p ->> 'actor', (p ->> 'tenant_id')::uuid, p ->> 'target', v_details);
end
$$;

comment on function private.record_billing_session(jsonb) is
  'Audit row (area billing) for a Checkout or billing portal session opened or refused; no URL is kept.';

revoke all on function private.link_stripe_customer(jsonb) from public, anon, authenticated;
revoke all on function private.record_billing_session(jsonb) from public, anon, authenticated;
grant execute on function private.link_stripe_customer(jsonb) to service_role, postgres;
grant execute on function private.record_billing_session(jsonb) to service_role, postgres;
