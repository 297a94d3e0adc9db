-- Retention preview: what the weekly retention run would delete, read-only, for the operator
-- (`npm run ops -- purge --dry-run`, the dashboard's SQL editor) and for status checks.
--
-- One source of truth for the cut-offs: private.retention_cutoffs(at) is what the weekly run
-- (private.run_weekly_retention, re-created below to call it, otherwise unchanged), the preview
-- and `ops purge --now` use. The preview counts with the purge functions' own predicates
-- (20261125020200):
--   sms_alerts            created_at < sms cut-off                           -> rows deleted
--   sms_consent_events    message_body is not null and created_at < cut-off   -> bodies blanked
--   system_audit_logs     created_at < audit cut-off                         -> rows deleted
-- supabase/tests/retention_preview.sql checks that each count equals what the purge then does.
-- The purges' floors (a cut-off later than now() - period is refused) stay in the purge
-- functions: they guard any caller, and the test checks that retention_cutoffs(now()) is exactly
-- at those floors.

create function private.retention_cutoffs(p_at timestamptz default now())
returns table (sms_cutoff timestamptz, audit_cutoff timestamptz)
language sql
stable
set search_path = ''
as $$
  -- The operations guide: SMS older than 180 days, audit rows older than one year.
  select p_at - interval '180 days', p_at - interval '1 year'
$$;
comment on function private.retention_cutoffs(timestamptz) is 'Retention cut-offs for a run at p_at (default now()): sms_cutoff = p_at - 180 days (sms_alerts rows deleted, sms_consent_events.message_body blanked), audit_cutoff = p_at - 1 year (system_audit_logs rows deleted). Used by run_weekly_retention, retention_preview and `npm run ops -- purge`.';

-- The weekly run's instant: Sunday 03:00 America/Montreal (run_weekly_retention acts only then;
-- pg_cron fires at 07:00 and 08:00 UTC and exactly one of them is 03:00 local).
create function private.retention_next_run(p_now timestamptz default now())
returns timestamptz
language sql
stable
set search_path = ''
as $$
  -- Local wall time, then this week's Sunday 03:00 (isodow 7), or next week's when that is not
  -- later than now. 03:00 exists on both DST switch Sundays (the jump is at 02:00).
  with local as (select p_now at time zone 'America/Montreal' as t),
  sunday as (
    select date_trunc('day', local.t)
           + make_interval(days => (7 - extract(isodow from local.t)::integer))
           + interval '3 hours' as at_local, local.t
    from local
  )
  select (case when sunday.at_local > sunday.t then sunday.at_local else sunday.at_local + interval '7 days' end)
         at time zone 'America/Montreal'
  from sunday
$$;
comment on function private.retention_next_run(timestamptz) is 'The first Sunday 03:00 America/Montreal strictly after p_now (default now()): when the weekly retention runs next.';

create function private.retention_preview(p_at timestamptz default private.retention_next_run())
returns table (table_name text, change text, cutoff timestamptz, row_count bigint)
language sql
stable
set search_path = ''
as $$
  -- p_at: the run to preview (default the next weekly run; now() = what a purge now would do).
  -- Rows written later are newer than these cut-offs: the counts only grow as rows age.
  select 'sms_alerts', 'rows deleted', c.sms_cutoff,
         (select count(*) from public.sms_alerts as a where a.created_at < c.sms_cutoff)
  from private.retention_cutoffs(p_at) as c
  union all
  select 'sms_consent_events', 'message bodies blanked', c.sms_cutoff,
         (select count(*) from public.sms_consent_events as e
          where e.message_body is not null and e.created_at < c.sms_cutoff)
  from private.retention_cutoffs(p_at) as c
  union all
  select 'system_audit_logs', 'rows deleted', c.audit_cutoff,
         (select count(*) from public.system_audit_logs as l where l.created_at < c.audit_cutoff)
  from private.retention_cutoffs(p_at) as c
$$;
comment on function private.retention_preview(timestamptz) is 'Read-only: what a retention run at p_at (default the next weekly run, Sunday 03:00 America/Montreal) would delete or blank, per table, with the cut-off; the purge functions'' predicates and private.retention_cutoffs().';

-- The weekly wrapper of 20261125020300, unchanged except that its cut-offs now come from
-- private.retention_cutoffs(p_now) (they were p_now - 180 days and p_now - 1 year inline).
create or replace function private.run_weekly_retention(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  -- p_now is the clock the schedule is checked against; tests pass summer and winter instants.
  local_time constant timestamp := p_now at time zone 'America/Montreal';
  local_date constant date := (p_now at time zone 'America/Montreal')::date;
  cutoffs record;
  run_details jsonb;
  outcome jsonb := jsonb_build_object('local_time', p_now at time zone 'America/Montreal');
  purge_action text;
  purge_result jsonb;
begin
  if extract(isodow from local_time) <> 7 or extract(hour from local_time) <> 3 then
    return outcome || jsonb_build_object('ran', false, 'reason', 'not Sunday 03:00 in America/Montreal');
  end if;

  run_details := jsonb_build_object('trigger', 'weekly_retention', 'local_date', local_date);
  select c.sms_cutoff, c.audit_cutoff into cutoffs from private.retention_cutoffs(p_now) as c;

  foreach purge_action in array array['sms_purge', 'audit_purge'] loop
    -- Today's row of this purge, if any (index on (area, action, created_at)). The created_at
    -- bound keeps the lookup to a few rows; local_date says which scheduled day it was for.
    if exists (
      select from public.system_audit_logs as l
      where l.area = 'maintenance'
        and l.action = purge_action
        and l.created_at > now() - interval '2 days'
        and l.details ->> 'local_date' = local_date::text
    ) then
      outcome := outcome || jsonb_build_object(purge_action, 'already ran today');
      continue;
    end if;

    -- Each purge in its own subtransaction: one failing does not undo the other, and the failure
    -- lands in the audit trail where the guide's "erreurs des dernières 24h" query finds it.
    begin
      if purge_action = 'sms_purge' then
        purge_result := private.purge_expired_sms(cutoffs.sms_cutoff, 10000, run_details);
      else
        purge_result := private.purge_expired_audit_logs(cutoffs.audit_cutoff, 10000, run_details);
      end if;
      outcome := outcome || jsonb_build_object(purge_action, purge_result);
    exception when others then
      insert into public.system_audit_logs (area, action, actor, target, details)
      values ('maintenance', purge_action, current_user, 'weekly_retention',
              run_details || jsonb_build_object('error', sqlerrm, 'sqlstate', sqlstate));
      outcome := outcome || jsonb_build_object(purge_action, jsonb_build_object('error', sqlerrm));
    end;
  end loop;

  return outcome || jsonb_build_object('ran', true);
end
$$;
comment on function private.run_weekly_retention(timestamptz) is 'Called by pg_cron at 07:00 and 08:00 UTC on Sundays; runs purge_expired_sms() and purge_expired_audit_logs() with the cut-offs of private.retention_cutoffs(p_now) only when p_now (default now()) is Sunday 03:00 in America/Montreal, each at most once per local day.';

-- Maintenance helpers: postgres (owner, pg_cron, the operator's SQL editor and `npm run ops`) only.
revoke all on function private.retention_cutoffs(timestamptz) from public;
revoke all on function private.retention_next_run(timestamptz) from public;
revoke all on function private.retention_preview(timestamptz) from public;
revoke all on function private.run_weekly_retention(timestamptz) from public;
