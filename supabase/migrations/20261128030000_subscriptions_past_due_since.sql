-- subscriptions.past_due_since: when the subscription last entered `past_due`, the start of the
-- grace during which it still counts for entitlements (private.site_entitlement, next migration).
--
-- Why a column kept by a trigger: Stripe's subscription object does not say since when it is
-- past due, and `current_period_start` is no answer (null at recent API versions, where the period
-- lives on the items; and a failed proration invoice makes a subscription past_due mid-period).
-- Whoever writes the row (stripe-webhook, billing-sync, a person with psql), the trigger keeps the
-- rule in one place:
--   * status not past_due            → null;
--   * still past_due (update)        → the earliest known start is kept (a later event, a replay or
--                                      the daily sync never restarts the grace);
--   * entering past_due (insert, or
--     update from another status)    → the value the writer gave, else the row's stripe_updated_at
--                                      (`created` of the Stripe event that carried the change, so
--                                      Stripe's time, not ours; for a row first seen by billing-sync
--                                      it is the sync's watermark, i.e. a grace that starts late,
--                                      never early).
-- BEFORE INSERT OR UPDATE, named so that it runs after skip_stale_stripe_update (triggers fire in
-- name order; a stale update skipped there never reaches this one).
alter table public.subscriptions add column past_due_since timestamptz;

comment on column public.subscriptions.past_due_since is
  'When the subscription entered past_due (null otherwise); kept by a trigger, start of the entitlement grace.';

create function private.track_past_due_since()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status is distinct from 'past_due' then
    new.past_due_since := null;
  elsif tg_op = 'UPDATE' and old.status = 'past_due' then
    -- On an UPDATE that does not set the column, new.past_due_since is old's: least() keeps the
    -- earliest of the two (it ignores nulls).
    new.past_due_since := coalesce(least(old.past_due_since, new.past_due_since), new.stripe_updated_at);
  else
    new.past_due_since := coalesce(new.past_due_since, new.stripe_updated_at);
  end if;
  return new;
end
$$;

comment on function private.track_past_due_since() is
  'BEFORE INSERT OR UPDATE trigger on subscriptions: sets past_due_since when the status enters past_due, keeps it while past_due, clears it otherwise.';

revoke all on function private.track_past_due_since() from public, anon, authenticated, service_role;

create trigger track_past_due_since before insert or update on public.subscriptions
  for each row execute function private.track_past_due_since();

-- Rows already past due: their grace starts at their watermark.
update public.subscriptions set past_due_since = stripe_updated_at where status = 'past_due';

alter table public.subscriptions add constraint subscriptions_past_due_since_iff_past_due
  check ((status = 'past_due') = (past_due_since is not null));
