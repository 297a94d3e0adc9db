-- The audit trigger (20261125030800) logs every update that changes a column other than
-- updated_at. The Stripe sync must move a row's watermark (stripe_updated_at) forward even when the
-- event carries nothing new (an invoice.paid and an invoice.payment_succeeded hold the same invoice),
-- or an older event arriving later would look newer than what is stored and win. Such an update
-- changes nothing a person cares about: it is not logged, as a no-op update is not. An update that
-- changes anything else is logged as before, watermark included.
create or replace function private.audit_row_change()
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

  -- No-op update, or only the Stripe watermark moved: nothing to audit.
  if tg_op = 'UPDATE' and (changed - 'stripe_updated_at') = '{}'::jsonb then
    return null;
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
  'AFTER row trigger: writes insert/update/delete of business tables to system_audit_logs (area database); an update that changes nothing but updated_at/stripe_updated_at is not logged.';

revoke all on function private.audit_row_change() from public, anon, authenticated;
