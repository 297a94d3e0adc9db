-- Stripe invoices of tenants, synced from invoice.* webhooks. Amounts in the currency's smallest
-- unit (cents), as Stripe reports them.
create table public.invoices (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  customer_id uuid not null,
  subscription_id uuid,
  stripe_invoice_id text not null unique check (stripe_invoice_id ~ '^in_[0-9A-Za-z]+$'),
  status text not null check (status in ('draft', 'open', 'paid', 'uncollectible', 'void')),
  currency text not null default 'cad' check (currency ~ '^[a-z]{3}$'),
  subtotal_cents bigint not null default 0 check (subtotal_cents >= 0),
  tax_cents bigint not null default 0 check (tax_cents >= 0),
  total_cents bigint not null check (total_cents >= 0),
  amount_due_cents bigint not null check (amount_due_cents >= 0),
  amount_paid_cents bigint not null default 0 check (amount_paid_cents >= 0),
  amount_remaining_cents bigint not null default 0 check (amount_remaining_cents >= 0),
  hosted_invoice_url text check (hosted_invoice_url ~ '^https://'),
  period_start timestamptz,
  period_end timestamptz,
  paid_at timestamptz,
  stripe_updated_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint invoices_period_valid check (period_end >= period_start),
  constraint invoices_paid_has_paid_at check (status <> 'paid' or paid_at is not null),
  constraint invoices_customer_fkey foreign key (tenant_id, customer_id)
    references public.customers (tenant_id, id) on delete restrict,
  -- Deleting a subscription row keeps its invoices (PG15 column list keeps tenant_id).
  constraint invoices_subscription_fkey foreign key (tenant_id, subscription_id)
    references public.subscriptions (tenant_id, id) on delete set null (subscription_id)
);

create index invoices_tenant_id_customer_id_idx on public.invoices (tenant_id, customer_id);
create index invoices_tenant_id_subscription_id_idx on public.invoices (tenant_id, subscription_id);

comment on table public.invoices is 'Stripe invoices of tenants, synced from invoice.* webhooks.';
comment on column public.invoices.id is 'Invoice identifier.';
comment on column public.invoices.tenant_id is 'Tenant invoiced.';
comment on column public.invoices.customer_id is 'Stripe customer invoiced (customers.id, same tenant).';
comment on column public.invoices.subscription_id is 'Subscription the invoice bills, if any.';
comment on column public.invoices.stripe_invoice_id is 'Stripe invoice id (in_...).';
comment on column public.invoices.status is 'Stripe status: draft, open, paid, uncollectible, void.';
comment on column public.invoices.currency is 'ISO 4217 currency code, lower case as Stripe reports it (cad).';
comment on column public.invoices.subtotal_cents is 'Subtotal before tax, in cents.';
comment on column public.invoices.tax_cents is 'Tax (GST/QST via Stripe automatic tax), in cents.';
comment on column public.invoices.total_cents is 'Total including tax, in cents.';
comment on column public.invoices.amount_due_cents is 'Amount due, in cents.';
comment on column public.invoices.amount_paid_cents is 'Amount paid, in cents.';
comment on column public.invoices.amount_remaining_cents is 'Amount still to pay, in cents.';
comment on column public.invoices.hosted_invoice_url is 'Stripe-hosted invoice page (https).';
comment on column public.invoices.period_start is 'Start of the billed period.';
comment on column public.invoices.period_end is 'End of the billed period.';
comment on column public.invoices.paid_at is 'When the invoice was paid (required when status = paid).';
comment on column public.invoices.stripe_updated_at is 'Watermark: `created` of the Stripe event last applied; older events are skipped (trigger).';
comment on column public.invoices.created_at is 'When the row was created.';
comment on column public.invoices.updated_at is 'Last change to the row (set by trigger).';

create trigger skip_stale_stripe_update before update on public.invoices
  for each row execute function private.skip_stale_stripe_update();
create trigger set_updated_at before update on public.invoices
  for each row execute function private.set_updated_at();

alter table public.invoices enable row level security;
