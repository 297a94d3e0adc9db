-- Stripe subscriptions (monthly or annual plan, plus site add-ons as items), synced from webhooks
-- and the daily /api/billing/sync reconciliation.
create table public.subscriptions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  customer_id uuid not null,
  stripe_subscription_id text not null unique check (stripe_subscription_id ~ '^sub_[0-9A-Za-z]+$'),
  -- Stripe's subscription statuses.
  status text not null check (status in (
    'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused'
  )),
  plan_interval text not null check (plan_interval in ('month', 'year')),
  -- Nullable: recent Stripe API versions report the period on the items only.
  current_period_start timestamptz,
  current_period_end timestamptz,
  cancel_at_period_end boolean not null default false,
  canceled_at timestamptz,
  stripe_updated_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint subscriptions_period_valid check (
    (current_period_start is null) = (current_period_end is null)
    and current_period_end > current_period_start
  ),
  -- The customer must be the tenant's own (FK checks bypass RLS, so the FK carries the rule).
  constraint subscriptions_customer_fkey foreign key (tenant_id, customer_id)
    references public.customers (tenant_id, id) on delete restrict,
  -- Target of the composite FKs of subscription_items and invoices.
  unique (tenant_id, id)
);

create index subscriptions_tenant_id_customer_id_idx on public.subscriptions (tenant_id, customer_id);

comment on table public.subscriptions is 'Stripe subscriptions of tenants (plan Mensuel/Annuel), synced from Stripe webhooks.';
comment on column public.subscriptions.id is 'Subscription identifier.';
comment on column public.subscriptions.tenant_id is 'Tenant subscribed.';
comment on column public.subscriptions.customer_id is 'Stripe customer paying (customers.id, same tenant).';
comment on column public.subscriptions.stripe_subscription_id is 'Stripe subscription id (sub_...).';
comment on column public.subscriptions.status is 'Stripe status: incomplete, incomplete_expired, trialing, active, past_due, canceled, unpaid, paused.';
comment on column public.subscriptions.plan_interval is 'Billing interval of the plan: month or year.';
comment on column public.subscriptions.current_period_start is 'Start of the current billing period.';
comment on column public.subscriptions.current_period_end is 'End of the current billing period.';
comment on column public.subscriptions.cancel_at_period_end is 'True when the subscription ends at the end of the current period.';
comment on column public.subscriptions.canceled_at is 'When the subscription was canceled, if it was.';
comment on column public.subscriptions.stripe_updated_at is 'Watermark: `created` of the Stripe event last applied; older events are skipped (trigger).';
comment on column public.subscriptions.created_at is 'When the row was created.';
comment on column public.subscriptions.updated_at is 'Last change to the row (set by trigger).';

create trigger skip_stale_stripe_update before update on public.subscriptions
  for each row execute function private.skip_stale_stripe_update();
create trigger set_updated_at before update on public.subscriptions
  for each row execute function private.set_updated_at();

alter table public.subscriptions enable row level security;
