-- Ledger of Stripe webhook events, keyed by event id: a redelivered event hits the primary key
-- and is processed once. Server-side only (no API access at all, see billing access migration).
create table public.billing_events (
  stripe_event_id text primary key check (stripe_event_id ~ '^evt_[0-9A-Za-z]+$'),
  type text not null check (type ~ '^[a-z0-9_]+(\.[a-z0-9_]+)+$'),
  -- Named as in Stripe's event object (type, created, livemode); created_at is not used here so
  -- that it is not mistaken for the time we stored the row (that is received_at).
  created timestamptz not null,
  livemode boolean not null,
  payload jsonb not null check (jsonb_typeof(payload) = 'object'),
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  error text
);

-- Events still to (re)process, oldest first.
create index billing_events_unprocessed_idx on public.billing_events (received_at) where processed_at is null;

comment on table public.billing_events is 'Ledger of received Stripe webhook events (idempotency by event id, replay, diagnostics). Server-side only.';
comment on column public.billing_events.stripe_event_id is 'Stripe event id (evt_...).';
comment on column public.billing_events.type is 'Stripe event type, e.g. customer.subscription.updated, invoice.paid.';
comment on column public.billing_events.created is 'Stripe event `created`: when Stripe created the event; copied to stripe_updated_at of the rows it updates (watermark).';
comment on column public.billing_events.livemode is 'True for live-mode events, false for test mode.';
comment on column public.billing_events.payload is 'Full event object as received (signature verified).';
comment on column public.billing_events.received_at is 'When the webhook delivered the event.';
comment on column public.billing_events.processed_at is 'When the event was applied successfully; null while pending or failed.';
comment on column public.billing_events.error is 'Last processing error, null if none.';

alter table public.billing_events enable row level security;
