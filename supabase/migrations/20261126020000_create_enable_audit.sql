-- private.enable_audit(regclass): the one way to put a table under the audit trail.
--
-- Convention for every new table in `public` (checked by supabase/tests/schema_conventions.sql,
-- which fails the suite when a table forgets one): next to its grants and RLS policies, the
-- migration that creates it calls
--     select private.enable_audit('public.<table>');
-- unless the table is on that file's exemption list with its reason (log and ledger tables).
--
-- It attaches private.audit_row_change() (20261125030800) as the trigger `audit_row_change`,
-- AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW: exactly what 20261125030900 created by hand.
-- CREATE OR REPLACE TRIGGER (PostgreSQL 14+) makes it idempotent and repairing: called again it
-- keeps one trigger of that name and restores the definition if it was altered (narrowed to some
-- events, given a WHEN clause, disabled), instead of failing or adding a second trigger.
--
-- SECURITY INVOKER on purpose: attaching a trigger needs the TRIGGER privilege on the table (its
-- owner has it), so the helper gives its caller no power they did not already have. Only
-- migrations (run as postgres) call it: EXECUTE is revoked from every other role.
create function private.enable_audit(target regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
  kind "char";
begin
  select c.relkind into kind from pg_catalog.pg_class as c where c.oid = target;
  if kind is distinct from 'r' and kind is distinct from 'p' then
    raise exception 'private.enable_audit: % is not a table', target
      using errcode = 'wrong_object_type';
  end if;
  -- The audit row's target is '<table>:<primary key>'; without a key it would be null.
  if not exists (select from pg_catalog.pg_index as i where i.indrelid = target and i.indisprimary) then
    raise exception 'private.enable_audit: % has no primary key (the audit target is its key)', target
      using errcode = 'invalid_table_definition';
  end if;

  execute pg_catalog.format(
    'create or replace trigger audit_row_change after insert or update or delete on %s '
    'for each row execute function private.audit_row_change()',
    target
  );
end
$$;

comment on function private.enable_audit(regclass) is
  'Attaches the audit trigger (private.audit_row_change, trigger audit_row_change) to a table; idempotent. Called by migrations beside each table''s grants and RLS.';

-- Functions get EXECUTE for PUBLIC by default, and hosted default privileges grant functions to
-- the API roles; `private` is not exposed, but no API role has any business calling this.
revoke all on function private.enable_audit(regclass) from public, anon, authenticated, service_role;

-- The business tables audited by 20261125030900, now through the convention: same trigger name and
-- definition, so nothing changes for them; it documents in one place which tables are audited.
select private.enable_audit('public.tenants');
select private.enable_audit('public.tenant_members');
select private.enable_audit('public.sites');
select private.enable_audit('public.workers');
select private.enable_audit('public.customers');
select private.enable_audit('public.subscriptions');
select private.enable_audit('public.subscription_items');
select private.enable_audit('public.invoices');
select private.enable_audit('public.voice_calls');
