-- public.billing_entitlements: one row per tenant whose billing the caller may read, with its site
-- entitlement (private.site_entitlement) and usage. For the web app's billing page ("2 of 3
-- sites", "payment past due until …") through the Data API, and for operators in psql.
--
-- security_invoker: the caller's privileges and RLS apply to every table read (tenants, sites,
-- subscriptions, subscription_items), as for a direct query. The WHERE clause narrows it to the
-- tenants the caller administers (private.admin_tenant_ids(), the helper of the billing tables'
-- policies): a plain member, who reads the tenant and its sites but no billing row, gets no row
-- rather than a misleading "1 site allowed". Roles that bypass RLS (postgres, service_role) see
-- every tenant. anon has no privilege on it.
create view public.billing_entitlements
with (security_invoker = true)
as
select t.id as tenant_id,
       e.entitled,
       e.subscription_id,
       e.subscription_status,
       e.plan_interval,
       e.grace_until,
       e.included_sites,
       e.additional_sites,
       e.allowed_sites,
       u.used_sites,
       greatest(e.allowed_sites - u.used_sites, 0) as available_sites
  from public.tenants as t
 cross join lateral private.site_entitlement(t.id) as e
 cross join lateral (select count(*)::integer as used_sites from public.sites as s where s.tenant_id = t.id) as u
 where t.id in (select private.admin_tenant_ids())
    or (select r.rolbypassrls from pg_catalog.pg_roles as r where r.rolname = current_user);

comment on view public.billing_entitlements is
  'Site entitlement and usage of each tenant the caller administers (security invoker; RLS applies).';
comment on column public.billing_entitlements.tenant_id is 'Tenant.';
comment on column public.billing_entitlements.entitled is 'True while a subscription is active, trialing, or past_due within its 14-day grace.';
comment on column public.billing_entitlements.subscription_id is 'Subscription reported (the entitling one, else the latest), null without any.';
comment on column public.billing_entitlements.subscription_status is 'Its Stripe status.';
comment on column public.billing_entitlements.plan_interval is 'Its plan interval: month or year.';
comment on column public.billing_entitlements.grace_until is 'For a past_due subscription: when its entitlements end unless paid.';
comment on column public.billing_entitlements.included_sites is 'Sites included in any case (1).';
comment on column public.billing_entitlements.additional_sites is 'Paid "Site additionnel" quantity of the entitling subscriptions.';
comment on column public.billing_entitlements.allowed_sites is 'included_sites + additional_sites: creating a site beyond it is refused (PT402).';
comment on column public.billing_entitlements.used_sites is 'Sites the tenant has.';
comment on column public.billing_entitlements.available_sites is 'Sites it may still create (0 when at or above the limit).';

revoke all on public.billing_entitlements from anon, public;
revoke insert, update, delete, truncate, references, trigger on public.billing_entitlements from authenticated, service_role;
grant select on public.billing_entitlements to authenticated, service_role;
