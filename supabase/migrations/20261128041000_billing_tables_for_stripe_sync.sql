-- What the Stripe webhook and billing-sync need on the billing tables (issue 15). One concern: the
-- columns and constraints the object-level upserts (20261128041200) write.
--
-- customers: Stripe also changes customers (e-mail, deletion), and customer events arrive out of
-- order like the others, so customers get the same watermark as subscriptions and invoices, guarded
-- by the same trigger. Nullable: a row made by the checkout path before Stripe sent anything about
-- the customer has no watermark yet (null sorts before any event). deleted_at: Stripe deleted the
-- customer (customer.deleted); the row stays (its subscriptions and invoices reference it).
alter table public.customers
  add column stripe_updated_at timestamptz,
  add column deleted_at timestamptz;

comment on column public.customers.stripe_updated_at is 'Watermark: `created` of the Stripe event (or the Date of the Stripe response) last applied; older ones are skipped (trigger). Null until Stripe told us anything.';
comment on column public.customers.deleted_at is 'When Stripe reported the customer deleted (customer.deleted); null while it exists.';

create trigger skip_stale_stripe_update before update on public.customers
  for each row execute function private.skip_stale_stripe_update();

-- subscription_items.stripe_price_id: Stripe price ids are price_ + letters and digits, but a
-- legacy Plan used as a price keeps the id it was created with (any letters, digits, _ and -), and
-- the local stack's prices are price_local_plan_monthly…: the webhook must not fail on them.
alter table public.subscription_items drop constraint subscription_items_stripe_price_id_check;
alter table public.subscription_items add constraint subscription_items_stripe_price_id_check
  check (stripe_price_id ~ '^[0-9A-Za-z_-]{1,255}$');

-- kind 'other': an item whose price is neither configured plan nor add-on (an old price, a price
-- added in the dashboard). It is kept, so the subscription row is exact, and counts for nothing
-- (entitlements read plan and addon_site only).
alter table public.subscription_items drop constraint subscription_items_kind_check;
alter table public.subscription_items add constraint subscription_items_kind_check
  check (kind in ('plan', 'addon_site', 'other'));
comment on column public.subscription_items.kind is 'plan (base plan, one per subscription), addon_site (additional sites) or other (a price that is neither configured plan nor add-on: kept, counts for nothing).';

-- invoices.stripe_subscription_id: the subscription as Stripe names it, kept even while our
-- subscriptions row does not exist yet (events arrive in any order), so the row is linked
-- (subscription_id) as soon as the subscription arrives.
alter table public.invoices
  add column stripe_subscription_id text check (stripe_subscription_id ~ '^sub_[0-9A-Za-z]+$');
comment on column public.invoices.stripe_subscription_id is 'Stripe subscription id (sub_...) the invoice bills, as Stripe reports it (subscription_id links our row once known).';
create index invoices_stripe_subscription_id_idx on public.invoices (stripe_subscription_id)
  where subscription_id is null and stripe_subscription_id is not null;

-- billing_events: what became of each event, and enough to find the parked ones again.
--   outcome: received (being applied), applied, ignored (a type we do not handle), parked (about a
--   customer we cannot tie to a tenant yet: replayed when it is), needs_fetch (waiting for a copy
--   from Stripe), failed (error set; Stripe retries it). Null for rows written before this column.
alter table public.billing_events
  add column outcome text check (outcome in ('received', 'applied', 'ignored', 'parked', 'needs_fetch', 'failed')),
  add column result text check (result ~ '^[a-z_]{1,40}$'),
  add column object_id text check (length(object_id) <= 255),
  add column stripe_customer_id text check (stripe_customer_id ~ '^cus_[0-9A-Za-z]+$'),
  add column api_version text check (length(api_version) <= 64),
  add column attempts integer not null default 0 check (attempts >= 0);

comment on column public.billing_events.outcome is 'received, applied, ignored (unhandled type), parked (customer not tied to a tenant yet), needs_fetch, failed (error set, Stripe retries).';
comment on column public.billing_events.result is 'What applying did to our rows: created, changed, unchanged, skipped_stale, deleted, …';
comment on column public.billing_events.object_id is 'Id of the Stripe object the event is about (data.object.id).';
comment on column public.billing_events.stripe_customer_id is 'Stripe customer the event is about, when known (parked events are found by it).';
comment on column public.billing_events.api_version is 'API version the event was rendered at (the endpoint''s).';
comment on column public.billing_events.attempts is 'Failed processing attempts so far.';

-- Parked events of a customer, oldest first (replayed when the customer is tied to a tenant).
create index billing_events_parked_customer_idx on public.billing_events (stripe_customer_id, created)
  where outcome = 'parked';
