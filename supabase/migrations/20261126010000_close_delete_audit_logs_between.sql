-- Fixes 20261125020200_retention_purges.sql on hosted Supabase, where postgres is not a superuser.
-- That migration handed private.delete_audit_logs_between() to audit_log_retention and only THEN
-- revoked EXECUTE from PUBLIC and granted it to postgres. postgres no longer owned the function
-- nor held a grant option on it, so the REVOKE and the GRANT were no-ops (warnings only): PUBLIC
-- kept EXECUTE, and authenticated / service_role, which have USAGE on `private`, could delete every
-- audit row older than one year.
--
-- GRANT and REVOKE by a member of the owning role act as the owner, so postgres borrows the
-- membership for this step only (postgres has CREATEROLE; on PostgreSQL 16+ it also holds ADMIN on
-- the role it created), then gives it back.
do $$
begin
  grant audit_log_retention to postgres;
  revoke all on function private.delete_audit_logs_between(timestamptz, timestamptz) from public;
  grant execute on function private.delete_audit_logs_between(timestamptz, timestamptz) to postgres;
  revoke audit_log_retention from postgres;
end
$$;
