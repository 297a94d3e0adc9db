-- Retention of the log tables (operations guide, "Maintenance préventive", Sunday 03:00):
--   * sms_alerts rows older than 180 days are deleted;
--   * sms_consent_events.message_body older than 180 days is set to null (the proof row stays);
--   * system_audit_logs rows older than one year are deleted.
-- Each purge takes its cut-off and a batch size, writes ONE audit row per run (area
-- 'maintenance', action 'sms_purge' / 'audit_purge', details with counts, cutoff, batches,
-- duration) and is idempotent: a second run with the same cut-off deletes nothing.
--
-- Storage design, chosen by measurement (scripts/bench/purge.ts, `npm run bench -- purge`,
-- durable cluster, 1 M expired + 1 M live rows, one insert every 10 ms on another connection):
-- plain heap tables, purged by consecutive created_at RANGES walked on the created_at index:
-- each batch finds the created_at of its (batch_size + 1)-th row with an index scan, then deletes
-- [previous bound, that bound). Why:
--   * It reads only the expired part of the table (index range), while a plain DELETE's planner
--     picks a sequential scan of the whole table (measured ratio: MEASUREMENT PENDING).
--   * Each batch starts at the previous bound: it never re-reads entries of rows it already
--     deleted (a "DELETE ... LIMIT n" loop re-walks them, quadratic inside one transaction).
--   * A DELETE takes ROW EXCLUSIVE on the table, which does not conflict with INSERT's ROW
--     EXCLUSIVE, and row locks only on expired rows nobody writes: concurrent inserts never wait
--     on a lock; their longest wait measured during the purge was below the 100 ms target.
--   * Time partitions (drop a partition instead of deleting) were rejected: the contract's
--     `id ... primary key` and `provider_message_id ... unique` would have to include the
--     partition key (no global uniqueness of Twilio SIDs, which status callbacks rely on), a
--     partition's DROP/DETACH takes ACCESS EXCLUSIVE on the parent (inserts queue behind it and
--     behind any long reader), and the cut-off (180 days / 1 year to the second) would still need
--     row deletes in the boundary partition.
-- The batches run in one transaction, not one per batch: a COMMIT needs a procedure, and a
-- procedure cannot COMMIT when it has a SET search_path clause, which the `function_search_path_
-- mutable` advisor requires. Weekly volumes are one week of SMS/audit rows, so the transaction
-- is short; nothing blocks inserts during it (measured above).
--
-- Floors: the cut-off can never be later than now() minus the retention period, so a wrong
-- argument cannot wipe live data, and the audit trail's deletion exemption (20261125020100)
-- cannot be used to erase recent history.

-- ---------------------------------------------------------------------------------------------
-- SMS: sms_alerts rows and consent message bodies
-- ---------------------------------------------------------------------------------------------

-- Deletes sms_alerts rows with p_from <= created_at < (bound of this batch), bound <= p_cutoff.
create function private.delete_sms_alerts_batch(
  p_from timestamptz,
  p_cutoff timestamptz,
  p_batch_size integer,
  out deleted_count integer,
  out next_from timestamptz
)
language plpgsql
set search_path = ''
as $$
begin
  -- The (batch_size + 1)-th expired row's timestamp bounds this batch (index scan, no sort).
  select a.created_at into next_from
  from public.sms_alerts as a
  where a.created_at >= p_from and a.created_at < p_cutoff
  order by a.created_at
  offset p_batch_size
  limit 1;

  if next_from is null then
    next_from := p_cutoff; -- fewer rows left than a batch: take them all
  elsif next_from = p_from then
    -- More than a batch of rows share one timestamp: take them all, move to the next timestamp.
    select coalesce(min(a.created_at), p_cutoff) into next_from
    from public.sms_alerts as a
    where a.created_at > p_from and a.created_at < p_cutoff;
  end if;

  delete from public.sms_alerts as a
  where a.created_at >= p_from and a.created_at < next_from;
  get diagnostics deleted_count = row_count;
end
$$;
comment on function private.delete_sms_alerts_batch(timestamptz, timestamptz, integer) is 'One batch of private.purge_expired_sms(): deletes sms_alerts rows in [p_from, next_from), next_from <= p_cutoff, about p_batch_size rows.';

-- Same range walk over the partial index of bodies still present (message_body is not null).
create function private.clear_consent_bodies_batch(
  p_from timestamptz,
  p_cutoff timestamptz,
  p_batch_size integer,
  out cleared_count integer,
  out next_from timestamptz
)
language plpgsql
set search_path = ''
as $$
begin
  select e.created_at into next_from
  from public.sms_consent_events as e
  where e.message_body is not null and e.created_at >= p_from and e.created_at < p_cutoff
  order by e.created_at
  offset p_batch_size
  limit 1;

  if next_from is null then
    next_from := p_cutoff;
  elsif next_from = p_from then
    select coalesce(min(e.created_at), p_cutoff) into next_from
    from public.sms_consent_events as e
    where e.message_body is not null and e.created_at > p_from and e.created_at < p_cutoff;
  end if;

  update public.sms_consent_events as e
  set message_body = null
  where e.message_body is not null and e.created_at >= p_from and e.created_at < next_from;
  get diagnostics cleared_count = row_count;
end
$$;
comment on function private.clear_consent_bodies_batch(timestamptz, timestamptz, integer) is 'One batch of private.purge_expired_sms(): sets message_body to null on consent events in [p_from, next_from); the proof rows stay.';

create function private.purge_expired_sms(
  p_cutoff timestamptz default now() - interval '180 days',
  p_batch_size integer default 10000,
  p_run_details jsonb default '{}'
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  started_at constant timestamptz := clock_timestamp();
  batch record;
  batch_from timestamptz;
  sms_deleted bigint := 0;
  sms_batches integer := 0;
  bodies_cleared bigint := 0;
  body_batches integer := 0;
  summary jsonb;
begin
  if p_cutoff is null or p_cutoff > now() - interval '180 days' then
    raise exception 'purge_expired_sms: cutoff % is later than now() - 180 days', p_cutoff
      using errcode = 'invalid_parameter_value';
  end if;
  if p_batch_size is null or p_batch_size not between 1 and 1000000 then
    raise exception 'purge_expired_sms: batch size must be between 1 and 1000000'
      using errcode = 'invalid_parameter_value';
  end if;

  batch_from := '-infinity'::timestamptz;
  loop
    select * into batch from private.delete_sms_alerts_batch(batch_from, p_cutoff, p_batch_size);
    sms_deleted := sms_deleted + batch.deleted_count;
    sms_batches := sms_batches + 1;
    exit when batch.next_from >= p_cutoff;
    batch_from := batch.next_from;
  end loop;

  batch_from := '-infinity'::timestamptz;
  loop
    select * into batch from private.clear_consent_bodies_batch(batch_from, p_cutoff, p_batch_size);
    bodies_cleared := bodies_cleared + batch.cleared_count;
    body_batches := body_batches + 1;
    exit when batch.next_from >= p_cutoff;
    batch_from := batch.next_from;
  end loop;

  summary := coalesce(p_run_details, '{}') || jsonb_build_object(
    'cutoff', p_cutoff,
    'batch_size', p_batch_size,
    'sms_alerts_deleted', sms_deleted,
    'sms_alerts_batches', sms_batches,
    'consent_bodies_cleared', bodies_cleared,
    'consent_body_batches', body_batches,
    'batches', sms_batches + body_batches,
    'duration_ms', round(extract(epoch from clock_timestamp() - started_at) * 1000, 1)
  );
  insert into public.system_audit_logs (area, action, actor, target, details)
  values ('maintenance', 'sms_purge', current_user, 'sms_alerts,sms_consent_events', summary);
  return summary;
end
$$;
comment on function private.purge_expired_sms(timestamptz, integer, jsonb) is 'Deletes sms_alerts rows created before p_cutoff (default now() - 180 days, never later) and nulls sms_consent_events.message_body before it, by batches of p_batch_size; writes one system_audit_logs row (maintenance/sms_purge) with the counts. Idempotent.';

-- ---------------------------------------------------------------------------------------------
-- Audit trail: the only code allowed to delete from system_audit_logs
-- ---------------------------------------------------------------------------------------------

-- The table's append-only trigger lets a DELETE through only when current_user is
-- audit_log_retention, i.e. inside this SECURITY DEFINER function owned by that role.
grant select, delete on public.system_audit_logs to audit_log_retention;
grant usage on schema private to audit_log_retention;
-- RLS applies to the role (it neither owns the table nor bypasses RLS): it sees, and so can
-- delete, only rows past the one-year retention, whatever the function's code says.
create policy system_audit_logs_select_expired_retention on public.system_audit_logs
  for select to audit_log_retention
  using (created_at < now() - interval '1 year');
create policy system_audit_logs_delete_expired_retention on public.system_audit_logs
  for delete to audit_log_retention
  using (created_at < now() - interval '1 year');

create function private.delete_audit_logs_batch(
  p_from timestamptz,
  p_cutoff timestamptz,
  p_batch_size integer,
  out deleted_count integer,
  out next_from timestamptz
)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Checked here, not only in the caller: this is the exemption itself.
  if p_cutoff is null or p_cutoff > now() - interval '1 year' then
    raise exception 'delete_audit_logs_batch: cutoff % is later than now() - 1 year', p_cutoff
      using errcode = 'insufficient_privilege';
  end if;

  select l.created_at into next_from
  from public.system_audit_logs as l
  where l.created_at >= p_from and l.created_at < p_cutoff
  order by l.created_at
  offset p_batch_size
  limit 1;

  if next_from is null then
    next_from := p_cutoff;
  elsif next_from = p_from then
    select coalesce(min(l.created_at), p_cutoff) into next_from
    from public.system_audit_logs as l
    where l.created_at > p_from and l.created_at < p_cutoff;
  end if;

  delete from public.system_audit_logs as l
  where l.created_at >= p_from and l.created_at < next_from;
  get diagnostics deleted_count = row_count;
end
$$;
comment on function private.delete_audit_logs_batch(timestamptz, timestamptz, integer) is 'One batch of private.purge_expired_audit_logs(). SECURITY DEFINER owned by audit_log_retention: the only path through system_audit_logs'' append-only trigger. Refuses cut-offs later than now() - 1 year.';

-- Ownership moves to the NOLOGIN role. On hosted Supabase postgres is not superuser: it must be
-- a member of the new owner for ALTER ... OWNER, so it joins the role for this statement only.
do $$
begin
  grant audit_log_retention to postgres;
  alter function private.delete_audit_logs_batch(timestamptz, timestamptz, integer)
    owner to audit_log_retention;
  revoke audit_log_retention from postgres;
end
$$;

create function private.purge_expired_audit_logs(
  p_cutoff timestamptz default now() - interval '1 year',
  p_batch_size integer default 10000,
  p_run_details jsonb default '{}'
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  started_at constant timestamptz := clock_timestamp();
  batch record;
  batch_from timestamptz := '-infinity'::timestamptz;
  deleted bigint := 0;
  batches integer := 0;
  summary jsonb;
begin
  if p_cutoff is null or p_cutoff > now() - interval '1 year' then
    raise exception 'purge_expired_audit_logs: cutoff % is later than now() - 1 year', p_cutoff
      using errcode = 'invalid_parameter_value';
  end if;
  if p_batch_size is null or p_batch_size not between 1 and 1000000 then
    raise exception 'purge_expired_audit_logs: batch size must be between 1 and 1000000'
      using errcode = 'invalid_parameter_value';
  end if;

  loop
    select * into batch from private.delete_audit_logs_batch(batch_from, p_cutoff, p_batch_size);
    deleted := deleted + batch.deleted_count;
    batches := batches + 1;
    exit when batch.next_from >= p_cutoff;
    batch_from := batch.next_from;
  end loop;

  -- Written after the deletes and newer than the cut-off: the purge never deletes its own trail.
  summary := coalesce(p_run_details, '{}') || jsonb_build_object(
    'cutoff', p_cutoff,
    'batch_size', p_batch_size,
    'audit_logs_deleted', deleted,
    'batches', batches,
    'duration_ms', round(extract(epoch from clock_timestamp() - started_at) * 1000, 1)
  );
  insert into public.system_audit_logs (area, action, actor, target, details)
  values ('maintenance', 'audit_purge', current_user, 'system_audit_logs', summary);
  return summary;
end
$$;
comment on function private.purge_expired_audit_logs(timestamptz, integer, jsonb) is 'Deletes system_audit_logs rows created before p_cutoff (default now() - 1 year, never later) by batches of p_batch_size; writes one system_audit_logs row (maintenance/audit_purge) with the count. Idempotent.';

-- Maintenance is run by pg_cron as postgres (the owner). No API role may call any of it.
revoke all on function private.delete_sms_alerts_batch(timestamptz, timestamptz, integer) from public;
revoke all on function private.clear_consent_bodies_batch(timestamptz, timestamptz, integer) from public;
revoke all on function private.purge_expired_sms(timestamptz, integer, jsonb) from public;
revoke all on function private.delete_audit_logs_batch(timestamptz, timestamptz, integer) from public;
revoke all on function private.purge_expired_audit_logs(timestamptz, integer, jsonb) from public;
grant execute on function private.delete_audit_logs_batch(timestamptz, timestamptz, integer) to postgres;
