-- Generic row-level audit trigger (docs/data-contract.md, "Audit trigger"): one row in
-- public.system_audit_logs (created by 20261125020000_*) per inserted, updated or deleted row:
--   area 'database', action 'insert' | 'update' | 'delete',
--   actor     JWT sub (auth.uid()), else the JWT role (auth.role()), else the database role,
--   tenant_id the row's tenant_id (tenants.id for public.tenants),
--   target    '<table>:<primary key>' (composite keys joined with ','),
--   details   {"table", "op", "changed": {column: {"old", "new"}}}.
-- On UPDATE "changed" lists only the columns whose value changed, ignoring updated_at; an update
-- that changes nothing else (no-op) is NOT logged. On INSERT "changed" holds every non-null column
-- (old = null); on DELETE every non-null column of the removed row (new = null), so the trail
-- keeps what was deleted.
--
-- SECURITY DEFINER: system_audit_logs is append-only and closed to the API roles; the trigger
-- writes as the function owner. Inside a security definer function current_user is the owner,
-- so the caller's role is read from the `role` setting (SET ROLE, as PostgREST does) and falls
-- back to session_user.
create function private.audit_row_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_row jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end;
  new_row jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end;
  the_row jsonb := coalesce(new_row, old_row);
  changed jsonb;
  key_columns text[];
  actor text;
begin
  select coalesce(jsonb_object_agg(key, jsonb_build_object('old', old_row -> key, 'new', new_row -> key)), '{}'::jsonb)
    into changed
  from (
    select o.key from jsonb_each(coalesce(old_row, '{}'::jsonb)) as o
    union
    select n.key from jsonb_each(coalesce(new_row, '{}'::jsonb)) as n
  ) as columns (key)
  -- A missing side (insert, delete) counts as JSON null, so null columns are left out.
  where key <> 'updated_at'
    and coalesce(old_row -> key, 'null'::jsonb) is distinct from coalesce(new_row -> key, 'null'::jsonb);

  if tg_op = 'UPDATE' and changed = '{}'::jsonb then
    return null;  -- no-op update: nothing to audit
  end if;

  select array_agg(a.attname::text order by k.ordinality)
    into key_columns
  from pg_catalog.pg_index as i
  cross join lateral pg_catalog.unnest(i.indkey) with ordinality as k (attnum, ordinality)
  join pg_catalog.pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
  where i.indrelid = tg_relid
    and i.indisprimary;

  actor := coalesce(
    (select auth.uid())::text,
    nullif((select auth.role()), ''),
    nullif(pg_catalog.current_setting('role'), 'none'),
    session_user::text
  );

  insert into public.system_audit_logs (area, action, actor, tenant_id, target, details)
  values (
    'database',
    lower(tg_op),
    actor,
    case when tg_table_schema = 'public' and tg_table_name = 'tenants'
      then (the_row ->> 'id')::uuid
      else (the_row ->> 'tenant_id')::uuid
    end,
    tg_table_name || ':' || (
      select string_agg(the_row ->> c.column_name, ',' order by c.position)
      from pg_catalog.unnest(key_columns) with ordinality as c (column_name, position)
    ),
    jsonb_build_object('table', tg_table_name, 'op', lower(tg_op), 'changed', changed)
  );

  return null;  -- AFTER trigger: the return value is ignored
end
$$;

comment on function private.audit_row_change() is
  'AFTER row trigger: writes insert/update/delete of business tables to system_audit_logs (area database).';

revoke all on function private.audit_row_change() from public, anon, authenticated;
