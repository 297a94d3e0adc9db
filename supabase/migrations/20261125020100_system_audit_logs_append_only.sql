-- system_audit_logs is append-only: no role (anon, authenticated, service_role, postgres) may
-- UPDATE, DELETE or TRUNCATE it. The one exception is the retention function, which deletes rows
-- older than one year (20261125020200).
--
-- Three layers, because each alone has a hole:
--  1. Privileges: UPDATE/DELETE/TRUNCATE are revoked from everyone, the owner (postgres)
--     included. Enough for the API roles; but locally postgres is superuser (ignores privileges)
--     and on hosted Supabase the owner can grant itself the privileges back.
--  2. A statement trigger refuses UPDATE and TRUNCATE always, and DELETE unless current_user is
--     `audit_log_retention`. It fires for superusers too, and for RLS-bypassing roles.
--  3. `audit_log_retention` is a dedicated NOLOGIN role that owns only the SECURITY DEFINER
--     deletion function. Nobody is a member of it, so no client can SET ROLE to it and pass the
--     trigger: the only way to be that role is to call that function, which deletes only rows
--     older than one year. service_role cannot spoof it (no membership, no CREATEROLE).
-- What hosted Supabase does not let us close: postgres owns the table and has CREATEROLE, so a
-- deliberate migration run as postgres could drop the trigger or grant itself the role. That is
-- a reviewed schema change, not something a request or an edge function can do.

-- Roles are cluster-wide and migrations may be re-applied to another database of the cluster:
-- create the role only if it is missing.
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'audit_log_retention') then
    create role audit_log_retention nologin noinherit;
  end if;
end
$$;
comment on role audit_log_retention is 'Owner of private.delete_audit_logs_between(); the only role system_audit_logs'' append-only trigger lets DELETE. NOLOGIN, no members.';

revoke update, delete, truncate on public.system_audit_logs
  from public, anon, authenticated, service_role, postgres;

create function private.system_audit_logs_append_only()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Not SECURITY DEFINER on purpose: current_user is the role running the statement, i.e.
  -- audit_log_retention only inside private.delete_audit_logs_between().
  if tg_op = 'DELETE' and current_user = 'audit_log_retention' then
    return null;
  end if;
  raise exception 'system_audit_logs is append-only: % is not allowed (role %)', tg_op, current_user
    using errcode = 'insufficient_privilege',
          hint = 'Rows older than one year are removed by private.purge_expired_audit_logs().';
end
$$;
comment on function private.system_audit_logs_append_only() is 'Statement trigger of system_audit_logs: refuses UPDATE, TRUNCATE, and DELETE unless run as audit_log_retention (the retention function).';
revoke all on function private.system_audit_logs_append_only() from public;

-- FOR EACH STATEMENT: one check per statement, so the retention's batched deletes pay nothing
-- per row; it also fires when no row matches, so a refused DELETE fails loudly.
create trigger append_only_update_delete before update or delete on public.system_audit_logs
  for each statement execute function private.system_audit_logs_append_only();
create trigger append_only_truncate before truncate on public.system_audit_logs
  for each statement execute function private.system_audit_logs_append_only();
