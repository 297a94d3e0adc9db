-- Stripe does not deliver webhook events in order (and retries them): a `customer.subscription.updated`
-- created at 10:00 can arrive after the one created at 10:05. Rows synced from Stripe carry
-- stripe_updated_at = `created` of the event last applied; this guard silently skips an UPDATE
-- that would move it backwards, so an out-of-order event can never overwrite newer state,
-- whichever code path writes the row. Writers may also filter themselves:
--   insert ... on conflict (stripe_subscription_id) do update set ...
--   where subscriptions.stripe_updated_at <= excluded.stripe_updated_at
create function private.skip_stale_stripe_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.stripe_updated_at < old.stripe_updated_at then
    return null;  -- keep the newer row; the statement reports 0 rows for it
  end if;
  return new;
end
$$;
comment on function private.skip_stale_stripe_update() is
  'BEFORE UPDATE trigger on Stripe-synced tables: skips an update whose stripe_updated_at is older than the row''s.';

revoke all on function private.skip_stale_stripe_update() from public, anon, authenticated;
