-- Stripe customer of a tenant. Billing rows are kept when a tenant leaves (accounting records):
-- deleting a tenant that has a customer is refused (on delete restrict).
create table public.customers (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null unique references public.tenants (id) on delete restrict,
  stripe_customer_id text not null unique check (stripe_customer_id ~ '^cus_[0-9A-Za-z]+$'),
  email text check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  livemode boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Target of the composite FKs of subscriptions and invoices (same tenant as their customer).
  unique (tenant_id, id)
);

comment on table public.customers is 'Stripe customer of a tenant (one per tenant).';
comment on column public.customers.id is 'Customer identifier.';
comment on column public.customers.tenant_id is 'Tenant billed through this Stripe customer (one customer per tenant).';
comment on column public.customers.stripe_customer_id is 'Stripe customer id (cus_...).';
comment on column public.customers.email is 'Billing e-mail address known to Stripe.';
comment on column public.customers.livemode is 'True for a live-mode Stripe customer, false for test mode.';
comment on column public.customers.created_at is 'When the row was created.';
comment on column public.customers.updated_at is 'Last change to the row (set by trigger).';

create trigger set_updated_at before update on public.customers
  for each row execute function private.set_updated_at();

alter table public.customers enable row level security;
