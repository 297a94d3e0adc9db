-- Weekly retention, Sunday 03:00 America/Montreal (operations guide, "Maintenance préventive").
--
-- pg_cron runs in UTC on hosted Supabase, and Montreal is UTC-4 in summer (EDT) and UTC-5 in
-- winter (EST). So two jobs fire every Sunday, at 07:00 and 08:00 UTC, and both call
-- private.run_weekly_retention(), which acts only when it is 03:00 in Montreal:
--   summer: 07:00 UTC = 03:00 EDT (runs), 08:00 UTC = 04:00 EDT (does nothing);
--   winter: 07:00 UTC = 02:00 EST (does nothing), 08:00 UTC = 03:00 EST (runs).
-- Sunday in UTC at 07:00/08:00 is Sunday in Montreal too, and on the DST switch Sundays (02:00
-- local) exactly one of the two hours is 03:00 local. Each purge also runs at most once per local
-- day: the wrapper skips it when that day's maintenance audit row already exists (a manual re-run
-- of the cron command, or a restart of pg_cron in the same hour, changes nothing).

create or replace function private.run_weekly_retention(p_now timestamptz default now())
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  -- p_now is the clock the schedule is checked against; tests pass summer and winter instants.
  local_time constant timestamp := p_now at time zone 'America/Montreal';
  local_date constant date := (p_now at time zone 'America/Montreal')::date;
  run_details jsonb;
  outcome jsonb := jsonb_build_object('local_time', p_now at time zone 'America/Montreal');
  purge_action text;
  purge_result jsonb;
begin
  if extract(isodow from local_time) <> 7 or extract(hour from local_time) <> 3 then
    return outcome || jsonb_build_object('ran', false, 'reason', 'not Sunday 03:00 in America/Montreal');
  end if;

  run_details := jsonb_build_object('trigger', 'weekly_retention', 'local_date', local_date);

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
        purge_result := private.purge_expired_sms(p_now - interval '180 days', 10000, run_details);
      else
        purge_result := private.purge_expired_audit_logs(p_now - interval '1 year', 10000, run_details);
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
comment on function private.run_weekly_retention(timestamptz) is 'Called by pg_cron at 07:00 and 08:00 UTC on Sundays; runs purge_expired_sms() and purge_expired_audit_logs() only when p_now (default now()) is Sunday 03:00 in America/Montreal, each at most once per local day.';
revoke all on function private.run_weekly_retention(timestamptz) from public;

-- pg_cron 1.4's cron.schedule(job_name, ...) updates the job of that name if it exists (checked), so
-- re-applying this whole file (CREATE OR REPLACE above) keeps one job per name with the schedule
-- below.
select cron.schedule('weekly-retention-0700-utc', '0 7 * * 0', 'select private.run_weekly_retention()');
select cron.schedule('weekly-retention-0800-utc', '0 8 * * 0', 'select private.run_weekly_retention()');
