-- Retention of the log tables (operations guide, "Maintenance préventive", Sunday 03:00):
--   * sms_alerts rows older than 180 days are deleted;
--   * sms_consent_events.message_body older than 180 days is set to null (the proof row stays);
--   * system_audit_logs rows older than one year are deleted.
-- Each purge takes its cut-off and a batch size, writes ONE audit row per run (area
-- 'maintenance', action 'sms_purge' / 'audit_purge', details with counts, cutoff, batches,
-- duration) and is idempotent: a second run with the same cut-off deletes nothing.
--
-- Storage design, chosen by measurement (scripts/bench/purge.ts, `npm run bench -- purge`:
-- durable cluster, 1 M expired + 1 M live sms_alerts rows, one insert every 10 ms on another
-- connection, medians of 3-5 rounds per run on a shared 2-core machine):
--                      plain DELETE   this purge   ratio   inserter's longest wait (plain / purge)
--   run 1, 3 rounds       666 ms        654 ms      0.98     16.8 ms / 51.3 ms
--   run 2, 5 rounds       621 ms        621 ms      1.00     10.5 ms / 83.6 ms
--   run 3, 5 rounds       604 ms        619 ms      1.03     12.3 ms / 41.3 ms
-- i.e. the same cost as one plain DELETE (single rounds vary 0.88-1.5x with the machine's other
-- load), and no insert waited anywhere near 100 ms. The design: plain heap tables, purged by
-- consecutive created_at RANGES [lo, hi) walked on the created_at index, one DELETE per range.
-- The range width adapts to the row density just seen so that a range holds about batch_size
-- rows. Why:
--   * A plain DELETE of the expired rows already uses the created_at index (index scan, then
--     heap); each range DELETE is that same plan on a slice, so batching adds one statement per
--     batch and nothing per row. A first version that found each batch's upper bound with an
--     extra "ORDER BY created_at OFFSET batch_size" index scan read every expired index entry
--     twice and was measured 1.27x slower than the plain DELETE (774 vs 608 ms); forcing a
--     bitmap heap scan was slower too (640 vs 545-590 ms for 1 M rows).
--   * Each range starts where the previous one ended: no batch re-reads the index entries of rows
--     already deleted (a "DELETE ... LIMIT n" loop re-walks them, quadratic in one transaction).
--   * A DELETE takes ROW EXCLUSIVE on the table, which does not conflict with INSERT's ROW
--     EXCLUSIVE, and row locks only on expired rows: concurrent inserts never wait on a lock.
--   * Time partitions (drop a partition instead of deleting) were rejected: the contract's
--     `id ... primary key` and `provider_message_id ... unique` would have to include the
--     partition key (no global uniqueness of Twilio SIDs, which status callbacks rely on), a
--     partition's DROP/DETACH takes ACCESS EXCLUSIVE on the parent (inserts queue behind it and
--     behind any long reader), and the cut-off (180 days / 1 year to the second) would still need
--     row deletes in the boundary partition.
-- The batches run in one transaction, not one per batch: a COMMIT needs a procedure, and a
-- procedure cannot COMMIT when it has a SET search_path clause, which the advisors' lint
-- `function_search_path_mutable` requires (it checks procedures too). Nothing in that transaction
-- blocks inserts (measured above); the weekly run deletes one week of rows. (If transactions per
-- batch are ever needed, the cron command can be a DO block that COMMITs between calls of the
-- *_between() functions: DO blocks are not pg_proc entries.)
--
-- Floors: the cut-off can never be later than now() minus the retention period, so a wrong
-- argument cannot wipe live data, and the audit trail's deletion exemption (20261125020100)
-- cannot be used to erase recent history.

-- Width of the next range: aimed at p_batch_size rows from the density of the range just purged,
-- growing at most 4x (sparse or empty stretches) and shrinking at most 4x per step. Kept between
-- 1 ms (a range always advances past a timestamp shared by many rows: they go in one batch) and
-- about 100 years (no interval overflow on odd data).
create function private.next_purge_window(p_window_seconds float8, p_rows bigint, p_batch_size integer)
returns float8
language sql
immutable
set search_path = ''
as $$
  select greatest(0.001, least(3.15e9,
    p_window_seconds * least(4.0, greatest(0.25, p_batch_size::float8 / greatest(p_rows, 1)))))
$$;
comment on function private.next_purge_window(float8, bigint, integer) is 'Retention batching: width in seconds of the next created_at range, aimed at p_batch_size rows given p_rows found in a range of p_window_seconds.';


-- ---------------------------------------------------------------------------------------------
-- SMS: sms_alerts rows and consent message bodies
-- ---------------------------------------------------------------------------------------------

create function private.delete_sms_alerts_between(p_from timestamptz, p_to timestamptz)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  deleted_count bigint;
begin
  delete from public.sms_alerts as a
  where a.created_at >= p_from and a.created_at < p_to;
  get diagnostics deleted_count = row_count;
  return deleted_count;
end
$$;
comment on function private.delete_sms_alerts_between(timestamptz, timestamptz) is 'One batch of private.purge_expired_sms(): deletes the sms_alerts rows with p_from <= created_at < p_to.';

create function private.clear_consent_bodies_between(p_from timestamptz, p_to timestamptz)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  cleared_count bigint;
begin
  update public.sms_consent_events as e
  set message_body = null
  where e.message_body is not null and e.created_at >= p_from and e.created_at < p_to;
  get diagnostics cleared_count = row_count;
  return cleared_count;
end
$$;
comment on function private.clear_consent_bodies_between(timestamptz, timestamptz) is 'One batch of private.purge_expired_sms(): sets message_body to null on the consent events with p_from <= created_at < p_to; the proof rows stay.';

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
  range_from timestamptz;
  range_to timestamptz;
  window_seconds float8;
  batch_rows bigint;
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

  -- sms_alerts: ranges from the oldest row up to the cut-off.
  window_seconds := 3600;
  select min(a.created_at) into range_from from public.sms_alerts as a where a.created_at < p_cutoff;
  while range_from is not null loop
    range_to := least(range_from + make_interval(secs => window_seconds), p_cutoff);
    batch_rows := private.delete_sms_alerts_between(range_from, range_to);
    sms_deleted := sms_deleted + batch_rows;
    sms_batches := sms_batches + 1;
    window_seconds := private.next_purge_window(extract(epoch from range_to - range_from), batch_rows, p_batch_size);
    exit when range_to >= p_cutoff;
    range_from := range_to;
    if batch_rows = 0 then -- jump over an empty stretch to the next row (one index probe)
      select min(a.created_at) into range_from
      from public.sms_alerts as a where a.created_at >= range_to and a.created_at < p_cutoff;
    end if;
  end loop;

  -- Consent bodies: same walk over the partial index of bodies still present.
  window_seconds := 3600;
  select min(e.created_at) into range_from
  from public.sms_consent_events as e where e.message_body is not null and e.created_at < p_cutoff;
  while range_from is not null loop
    range_to := least(range_from + make_interval(secs => window_seconds), p_cutoff);
    batch_rows := private.clear_consent_bodies_between(range_from, range_to);
    bodies_cleared := bodies_cleared + batch_rows;
    body_batches := body_batches + 1;
    window_seconds := private.next_purge_window(extract(epoch from range_to - range_from), batch_rows, p_batch_size);
    exit when range_to >= p_cutoff;
    range_from := range_to;
    if batch_rows = 0 then
      select min(e.created_at) into range_from
      from public.sms_consent_events as e
      where e.message_body is not null and e.created_at >= range_to and e.created_at < p_cutoff;
    end if;
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
comment on function private.purge_expired_sms(timestamptz, integer, jsonb) is 'Deletes sms_alerts rows created before p_cutoff (default now() - 180 days, never later) and nulls sms_consent_events.message_body before it, by created_at ranges of about p_batch_size rows; writes one system_audit_logs row (maintenance/sms_purge) with the counts. Idempotent.';

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

create function private.delete_audit_logs_between(p_from timestamptz, p_to timestamptz)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  deleted_count bigint;
begin
  -- Checked here, not only in the caller: this function is the exemption itself.
  if p_to is null or p_to > now() - interval '1 year' then
    raise exception 'delete_audit_logs_between: % is later than now() - 1 year', p_to
      using errcode = 'insufficient_privilege';
  end if;
  delete from public.system_audit_logs as l
  where l.created_at >= p_from and l.created_at < p_to;
  get diagnostics deleted_count = row_count;
  return deleted_count;
end
$$;
comment on function private.delete_audit_logs_between(timestamptz, timestamptz) is 'One batch of private.purge_expired_audit_logs(): deletes system_audit_logs rows with p_from <= created_at < p_to. SECURITY DEFINER owned by audit_log_retention: the only path through the append-only trigger. Refuses p_to later than now() - 1 year.';

-- Ownership moves to the NOLOGIN role. On hosted Supabase postgres is not superuser, and ALTER
-- ... OWNER requires it to be a member of the new owner and the new owner to have CREATE on the
-- schema: both are granted for this step only (checked with a non-superuser CREATEROLE role).
do $$
begin
  grant audit_log_retention to postgres;
  grant create on schema private to audit_log_retention;
  alter function private.delete_audit_logs_between(timestamptz, timestamptz) owner to audit_log_retention;
  revoke create on schema private from audit_log_retention;
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
  range_from timestamptz;
  range_to timestamptz;
  window_seconds float8 := 3600;
  batch_rows bigint;
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

  select min(l.created_at) into range_from from public.system_audit_logs as l where l.created_at < p_cutoff;
  while range_from is not null loop
    range_to := least(range_from + make_interval(secs => window_seconds), p_cutoff);
    batch_rows := private.delete_audit_logs_between(range_from, range_to);
    deleted := deleted + batch_rows;
    batches := batches + 1;
    window_seconds := private.next_purge_window(extract(epoch from range_to - range_from), batch_rows, p_batch_size);
    exit when range_to >= p_cutoff;
    range_from := range_to;
    if batch_rows = 0 then
      select min(l.created_at) into range_from
      from public.system_audit_logs as l where l.created_at >= range_to and l.created_at < p_cutoff;
    end if;
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
comment on function private.purge_expired_audit_logs(timestamptz, integer, jsonb) is 'Deletes system_audit_logs rows created before p_cutoff (default now() - 1 year, never later) by created_at ranges of about p_batch_size rows; writes one system_audit_logs row (maintenance/audit_purge) with the count. Idempotent.';

-- Maintenance is run by pg_cron as postgres (the owner). No API role may call any of it.
revoke all on function private.next_purge_window(float8, bigint, integer) from public;
revoke all on function private.delete_sms_alerts_between(timestamptz, timestamptz) from public;
revoke all on function private.clear_consent_bodies_between(timestamptz, timestamptz) from public;
revoke all on function private.purge_expired_sms(timestamptz, integer, jsonb) from public;
revoke all on function private.delete_audit_logs_between(timestamptz, timestamptz) from public;
revoke all on function private.purge_expired_audit_logs(timestamptz, integer, jsonb) from public;
grant execute on function private.delete_audit_logs_between(timestamptz, timestamptz) to postgres;
