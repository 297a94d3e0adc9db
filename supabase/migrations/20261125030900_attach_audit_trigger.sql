-- Audit trail of the business tables: every insert, update and delete goes through
-- private.audit_row_change() (see 20261125030800). Not attached to billing_events (it is itself a
-- ledger) nor to the log tables (sms_alerts, sms_consent_events, system_audit_logs).
create trigger audit_row_change after insert or update or delete on public.tenants
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.tenant_members
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.sites
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.workers
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.customers
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.subscriptions
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.subscription_items
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.invoices
  for each row execute function private.audit_row_change();
create trigger audit_row_change after insert or update or delete on public.voice_calls
  for each row execute function private.audit_row_change();
