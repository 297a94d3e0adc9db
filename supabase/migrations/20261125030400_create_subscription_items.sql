-- Items of a Stripe subscription: the plan, and "site additionnel" add-ons (quantity = extra sites).
create table public.subscription_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  subscription_id uuid not null,
  stripe_subscription_item_id text not null unique check (stripe_subscription_item_id ~ '^si_[0-9A-Za-z]+$'),
  stripe_price_id text not null check (stripe_price_id ~ '^price_[0-9A-Za-z]+$'),
  quantity integer not null default 1 check (quantity >= 0),
  kind text not null check (kind in ('plan', 'addon_site')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint subscription_items_subscription_fkey foreign key (tenant_id, subscription_id)
    references public.subscriptions (tenant_id, id) on delete cascade
);

create index subscription_items_tenant_id_subscription_id_idx
  on public.subscription_items (tenant_id, subscription_id);
-- A subscription has one plan; add-ons come on top of it.
create unique index subscription_items_one_plan_per_subscription
  on public.subscription_items (subscription_id) where kind = 'plan';

comment on table public.subscription_items is 'Items of a Stripe subscription: the plan and the additional-site add-on.';
comment on column public.subscription_items.id is 'Item identifier.';
comment on column public.subscription_items.tenant_id is 'Tenant of the subscription (same as subscriptions.tenant_id; used by RLS).';
comment on column public.subscription_items.subscription_id is 'Subscription the item belongs to.';
comment on column public.subscription_items.stripe_subscription_item_id is 'Stripe subscription item id (si_...).';
comment on column public.subscription_items.stripe_price_id is 'Stripe price id (price_...): STRIPE_PRICE_MONTHLY/ANNUAL or STRIPE_PRICE_ADDON_SITE_MONTHLY/ANNUAL.';
comment on column public.subscription_items.quantity is 'Quantity billed (number of additional sites for addon_site).';
comment on column public.subscription_items.kind is 'plan (base plan, one per subscription) or addon_site (additional sites).';
comment on column public.subscription_items.created_at is 'When the row was created.';
comment on column public.subscription_items.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.subscription_items
  for each row execute function private.set_updated_at();

alter table public.subscription_items enable row level security;
