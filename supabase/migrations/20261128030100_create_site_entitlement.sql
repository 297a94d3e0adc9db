-- private.site_entitlement(tenant_id): how many sites a tenant may have, and why. THE rule, in one
-- place: the site limit trigger (next migration) and the billing_entitlements view both call it.
--
-- The pricing (runbook, "Stripe"): a plan, Mensuel or Annuel, includes one site; each additional
-- site is the "Site additionnel" add-on (50 $/month, 600 $/year), a subscription item whose
-- quantity is the number of extra sites. So:
--
--   allowed_sites = 1 + the quantity of the `addon_site` items of the tenant's entitling subscriptions
--
-- * Which items are add-ons: subscription_items.kind = 'addon_site', set by whoever writes the item
--   (stripe-webhook / billing-sync classify each item by its price: STRIPE_PRICE_ADDON_SITE_MONTHLY
--   or _ANNUAL → addon_site, the plan prices → plan). The SQL never needs the price ids.
-- * Entitling subscription: status `active` or `trialing`; or `past_due` during a grace of
--   private.past_due_grace() (14 days) from subscriptions.past_due_since. Why 14 days: while a
--   renewal payment fails, Stripe keeps the subscription `past_due` and retries it (Smart Retries,
--   Stripe's recommended policy being up to 8 tries within 2 weeks), then, as configured under
--   Billing → Revenue recovery → Retries, cancels it, marks it `unpaid` or leaves it past due. Our
--   grace covers that retry window, and ends even when the account is set to "leave past due",
--   so a subscription nobody pays cannot keep its add-ons forever. `canceled`, `unpaid`,
--   `incomplete` (first payment not made), `incomplete_expired` and `paused` (trial ended
--   without a payment method) entitle to nothing beyond the included site.
-- * A tenant with no entitling subscription (never subscribed, canceled, grace over) keeps the
--   ONE included site: it can be set up before paying (the checkout comes after the first site),
--   and a lapsed tenant keeps working on one site instead of being locked out of its data. Whether
--   an unpaid tenant may use the product at all is the web app's decision (billing_entitlements
--   .entitled); the database only refuses sites beyond what is paid for.
-- * Several entitling subscriptions (e.g. a second checkout): their add-ons add up; the included
--   site counts once.
-- * Losing entitlements never deletes a site: a tenant above its limit keeps its sites and can
--   rename or delete them, but cannot add one until it is below the limit again.
--
-- SECURITY INVOKER on purpose: called by the SECURITY DEFINER trigger it sees every row; called by
-- the billing_entitlements view as a signed-in user, RLS on subscriptions/subscription_items
-- decides what it sees (owners/admins of the tenant only), so it reveals nothing RLS would hide.

create function private.past_due_grace()
returns interval
language sql
immutable
set search_path = ''
as $$ select interval '14 days' $$;

comment on function private.past_due_grace() is
  'How long a past_due subscription keeps its entitlements after entering past_due (Stripe''s retry window: 2 weeks).';

create function private.site_entitlement(p_tenant_id uuid, p_at timestamptz default now())
returns table (
  included_sites integer,
  additional_sites integer,
  allowed_sites integer,
  entitled boolean,
  subscription_id uuid,
  subscription_status text,
  plan_interval text,
  grace_until timestamptz
)
language sql
stable
set search_path = ''
as $$
  with subs as (
    select s.id, s.status, s.plan_interval, s.stripe_updated_at,
           case when s.status = 'past_due' then s.past_due_since + private.past_due_grace() end as grace_until,
           s.status in ('active', 'trialing')
             or (s.status = 'past_due' and p_at < s.past_due_since + private.past_due_grace()) as entitles
      from public.subscriptions as s
     where s.tenant_id = p_tenant_id
  ),
  addons as (
    select coalesce(sum(i.quantity), 0)::integer as quantity
      from subs
      join public.subscription_items as i on i.tenant_id = p_tenant_id and i.subscription_id = subs.id
     where subs.entitles and i.kind = 'addon_site'
  ),
  -- The subscription reported: an entitling one first (active, then trialing, then past_due), else
  -- the latest known.
  main as (
    select *
      from subs
     order by subs.entitles desc,
              case subs.status when 'active' then 0 when 'trialing' then 1 when 'past_due' then 2 else 3 end,
              subs.stripe_updated_at desc, subs.id
     limit 1
  )
  select 1, addons.quantity, 1 + addons.quantity, coalesce(main.entitles, false),
         main.id, main.status, main.plan_interval, main.grace_until
    from addons
    left join main on true
$$;

comment on function private.site_entitlement(uuid, timestamptz) is
  'Sites a tenant may have: 1 included + addon_site quantity of its active/trialing subscriptions (past_due: 14 days of grace). Security invoker: RLS applies to the caller.';

revoke all on function private.past_due_grace() from public, anon;
revoke all on function private.site_entitlement(uuid, timestamptz) from public, anon;
-- authenticated: through the billing_entitlements view (security_invoker), RLS deciding.
grant execute on function private.past_due_grace() to authenticated, service_role;
grant execute on function private.site_entitlement(uuid, timestamptz) to authenticated, service_role;
