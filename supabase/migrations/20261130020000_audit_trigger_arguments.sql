-- The generic audit trigger learns two things at attach time instead of at every row:
--
-- 1. The primary key columns. The audit row's target is '<table>:<primary key>'; the trigger
--    looked the key up in pg_index on every audited write (a catalog join per row). enable_audit
--    now passes the key's columns as the trigger's first argument, computed once.
-- 2. Columns recorded elsewhere ("quiet" columns, the following arguments). An UPDATE that
--    changes nothing but them (and updated_at) is not written to system_audit_logs, because a
--    dedicated, stricter record already holds it. The one such column today is
--    workers.sms_consent: every change of it writes a proof row into sms_consent_events (who,
--    when, source, keyword, message), by trigger (20261130020100), which is the record the law
--    asks for and the one the dashboard and the seeds' procedures read. Writing a second, generic
--    row for the same flip doubled the database work of every inbound STOP/START (the SMS
--    webhook benchmark: ~40 % of an inbound message's database time). An update that changes a
--    quiet column AND another column is audited as before, all its columns included.
--
-- Same rows as before otherwise (supabase/tests/audit_trigger_business_tables.sql). A trigger
-- attached without arguments (by hand, or an older enable_audit) still works: the key is then
-- looked up in pg_index as before.
create or replace function private.audit_row_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_row jsonb := case when tg_op <> 'INSERT' then pg_catalog.to_jsonb(old) end;
  new_row jsonb := case when tg_op <> 'DELETE' then pg_catalog.to_jsonb(new) end;
  the_row jsonb := coalesce(new_row, old_row);
  changed jsonb;
  actor text;
  key_text text;
begin
  if tg_op = 'UPDATE' then
    -- Only quiet columns (arguments 2..n) and updated_at changed: recorded elsewhere.
    if tg_nargs > 1
       and (old_row - tg_argv[1:] - 'updated_at'::text) = (new_row - tg_argv[1:] - 'updated_at'::text) then
      return null;
    end if;
    -- Same columns on both sides: one pass over the new row.
    select coalesce(pg_catalog.jsonb_object_agg(n.key, pg_catalog.jsonb_build_object('old', old_row -> n.key, 'new', n.value)), '{}'::jsonb)
      into changed
      from pg_catalog.jsonb_each(new_row) as n
     where n.key <> 'updated_at' and n.value is distinct from old_row -> n.key;
    -- No-op update, or only the Stripe watermark moved: nothing to audit.
    if (changed - 'stripe_updated_at') = '{}'::jsonb then
      return null;
    end if;
  else
    -- Insert or delete: the other side counts as JSON null, so null columns are left out.
    select coalesce(pg_catalog.jsonb_object_agg(c.key, case when tg_op = 'INSERT'
                      then pg_catalog.jsonb_build_object('old', null, 'new', c.value)
                      else pg_catalog.jsonb_build_object('old', c.value, 'new', null) end), '{}'::jsonb)
      into changed
      from pg_catalog.jsonb_each(the_row) as c
     where c.key <> 'updated_at' and c.value <> 'null'::jsonb;
  end if;

  actor := coalesce(
    (select auth.uid())::text,
    nullif((select auth.role()), ''),
    nullif(pg_catalog.current_setting('role'), 'none'),
    session_user::text
  );

  if tg_nargs > 0 and pg_catalog.strpos(tg_argv[0], ',') = 0 then
    -- The usual case: a one-column key, named by enable_audit.
    key_text := the_row ->> tg_argv[0];
  elsif tg_nargs > 0 then
    select pg_catalog.string_agg(the_row ->> k.col, ',' order by k.ordinality)
      into key_text
      from pg_catalog.unnest(pg_catalog.string_to_array(tg_argv[0], ',')) with ordinality as k (col, ordinality);
  else
    select pg_catalog.string_agg(the_row ->> a.attname, ',' order by k.ordinality)
      into key_text
      from pg_catalog.pg_index as i
     cross join lateral pg_catalog.unnest(i.indkey) with ordinality as k (attnum, ordinality)
      join pg_catalog.pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = tg_relid and i.indisprimary;
  end if;

  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values (
    'database',
    pg_catalog.lower(tg_op),
    actor,
    case when tg_table_schema = 'public' and tg_table_name = 'tenants'
      then (the_row ->> 'id')::uuid
      else (the_row ->> 'tenant_id')::uuid
    end,
    tg_table_name || ':' || key_text,
    pg_catalog.jsonb_build_object('table', tg_table_name, 'op', pg_catalog.lower(tg_op), 'changed', changed)
  );
  return null;
end
$$;

comment on function private.audit_row_change() is
  'AFTER row trigger: writes insert/update/delete of business tables to system_audit_logs (area database); an update that changes nothing but updated_at/stripe_updated_at, or only the quiet columns given as trigger arguments 2..n (recorded elsewhere), is not logged. Argument 1: the primary key columns, comma-separated (enable_audit passes them).';

revoke all on function private.audit_row_change() from public, anon, authenticated;

-- enable_audit(table, quiet columns): attaches the trigger with the key and the quiet columns as
-- arguments. The old one-argument form is replaced (a default keeps every call site valid).
drop function private.enable_audit(regclass);

create function private.enable_audit(target regclass, quiet_columns text[] default '{}')
returns void
language plpgsql
set search_path = ''
as $$
declare
  kind "char";
  key_columns text;
  unknown text;
begin
  select c.relkind into kind from pg_catalog.pg_class as c where c.oid = target;
  if kind is distinct from 'r' and kind is distinct from 'p' then
    raise exception 'private.enable_audit: % is not a table', target
      using errcode = 'wrong_object_type';
  end if;
  -- The audit row's target is '<table>:<primary key>'; without a key it would be null.
  select pg_catalog.string_agg(a.attname, ',' order by k.ordinality)
    into key_columns
    from pg_catalog.pg_index as i
   cross join lateral pg_catalog.unnest(i.indkey) with ordinality as k (attnum, ordinality)
    join pg_catalog.pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
   where i.indrelid = target and i.indisprimary;
  if key_columns is null then
    raise exception 'private.enable_audit: % has no primary key (the audit target is its key)', target
      using errcode = 'invalid_table_definition';
  end if;
  -- A misspelt quiet column would silently audit everything: refuse it.
  select q into unknown
    from pg_catalog.unnest(quiet_columns) as q
   where not exists (select from pg_catalog.pg_attribute as a
                      where a.attrelid = target and a.attname = q and a.attnum > 0 and not a.attisdropped)
   limit 1;
  if unknown is not null then
    raise exception 'private.enable_audit: % has no column %', target, unknown
      using errcode = 'undefined_column';
  end if;

  execute pg_catalog.format(
    'create or replace trigger audit_row_change after insert or update or delete on %s '
    'for each row execute function private.audit_row_change(%s)',
    target,
    (select pg_catalog.string_agg(pg_catalog.quote_literal(arg), ', ')
       from pg_catalog.unnest(array[key_columns] || quiet_columns) as arg)
  );
end
$$;

comment on function private.enable_audit(regclass, text[]) is
  'Attaches the audit trigger (private.audit_row_change, trigger audit_row_change) to a table, with its primary key columns and the given quiet columns (changes recorded elsewhere) as arguments; idempotent. Called by migrations beside each table''s grants and RLS.';

revoke all on function private.enable_audit(regclass, text[]) from public, anon, authenticated, service_role;

-- Re-attach every audited table with its key as argument (same tables as before).
select private.enable_audit(t.tgrelid::regclass)
  from pg_catalog.pg_trigger as t
 where t.tgfoid = 'private.audit_row_change()'::regprocedure
   and t.tgname = 'audit_row_change'
   and not t.tgisinternal;
