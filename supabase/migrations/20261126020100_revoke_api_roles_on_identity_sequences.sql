-- The identity sequences of the log tables (sms_alerts_id_seq, sms_consent_events_id_seq,
-- system_audit_logs_id_seq) were created with hosted Supabase's default privileges for `public`:
-- ALL (USAGE, SELECT, UPDATE) to anon and authenticated. UPDATE means setval(): a role holding it
-- could rewind system_audit_logs' sequence so that every later audit insert, and with it every
-- audited business write, fails on the primary key. No API role needs them: an identity column
-- draws its value without any privilege check on its sequence (service_role keeps inserting).
--
-- Convention (checked per table by supabase/tests/schema_conventions.sql): anon has no privilege
-- on a public table, its columns or the sequences it owns. authenticated never inserts into these
-- tables either, so it loses them too; service_role keeps hosted's grant.
revoke all on sequence public.sms_alerts_id_seq, public.sms_consent_events_id_seq,
  public.system_audit_logs_id_seq from public, anon, authenticated;
