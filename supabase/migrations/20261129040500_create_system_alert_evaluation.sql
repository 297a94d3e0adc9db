-- Alert transitions (issue 16, the guide's "Alertes automatiques"), atomic in SQL:
--
--   private.evaluate_system_status(p)          the scheduled evaluation (system-status POST, the
--                                              service only): private.system_status(p), then the
--                                              alert transitions, in ONE transaction
--   private.evaluate_system_alerts(status)     raise / clear / claim notifications from a status
--   private.record_system_alert_notification(p) how the claimed SMS went (sent / failed)
--   private.ack_system_alert(id, actor)        an operator acknowledges an open alert
--
-- Conditions (from the status checks): settings (the settings check failed), sms_error_rate (error
-- rate over 24 h above 5 %), stripe_webhook_failures (1 % or more failed), database_size (above
-- 80 % of DB_SIZE_QUOTA_MB), billing_sync_overdue (no complete sync for 26 h), cron_job_failed (one
-- alert per active job whose last run failed; subject = the job's name).
--
-- Transitions, per (kind, subject):
--   bad, no alert open      → a new alert (state open) + an audit row alert_raised;
--   not bad, alert open     → cleared (cleared_at) + an audit row alert_cleared (acked ones too);
--   otherwise               → nothing (rows change only on transitions).
-- Notification (one SMS to OWNER_MOBILE, sent by the function through the normal send path): an
-- open alert (not acknowledged) is claimed for notification when it has none yet, or when its last
-- one failed or never completed more than the cooldown (1 hour) ago, unless an earlier alert of the
-- same kind and subject was notified (sent, or claimed) within the cooldown (a flapping condition: the new raise is
-- `suppressed`, and notified once the cooldown has passed if it is still open). The claim sets
-- last_notified_at and returns an idempotency key (`system-alert:<id>:<attempt>`) that the send
-- path's own idempotency honours.
--
-- Concurrency: the transitions take a transaction-level advisory lock first, so two evaluations
-- (the 5-minute job and an operator's at once) run one after the other; the second sees the
-- first's committed raises and claims and sends nothing. The unique index on open alerts per
-- (kind, subject) is the backstop.

create function private.evaluate_system_alerts(p_status jsonb, p_cooldown interval default interval '1 hour')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_now constant timestamptz := now();
  v_checks jsonb := p_status -> 'checks';
  v_conditions jsonb;
  v_alert public.system_alerts;
  v_found boolean;
  v_recent timestamptz;
  v_notification text;
  v_raised jsonb := '[]'::jsonb;
  v_cleared jsonb := '[]'::jsonb;
  v_notify jsonb := '[]'::jsonb;
  c record;
begin
  if p_status is null or (p_status ->> 'authorized') is distinct from 'true' or jsonb_typeof(v_checks) is distinct from 'object' then
    raise exception 'evaluate_system_alerts: the full status of private.system_status is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if p_cooldown is null or p_cooldown < interval '0' then
    raise exception 'evaluate_system_alerts: the cooldown must be a non-negative interval' using errcode = 'invalid_parameter_value';
  end if;

  -- One evaluation at a time (released at commit).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('c-secur360:system_alerts', 0));

  v_conditions := jsonb_build_array(
      jsonb_build_object('kind', 'settings', 'bad', v_checks #>> '{settings,status}' = 'fail',
                         'details', jsonb_build_object('problems', v_checks #> '{settings,problems}',
                                                       'seed_ok', v_checks #> '{settings,seed_ok}',
                                                       'seed_total', v_checks #> '{settings,seed_total}')),
      jsonb_build_object('kind', 'sms_error_rate',
                         'bad', jsonb_typeof(v_checks #> '{sms,error_rate}') = 'number'
                                and (v_checks #>> '{sms,error_rate}')::numeric > 0.05,
                         'details', coalesce(v_checks -> 'sms', '{}'::jsonb) - 'status'),
      jsonb_build_object('kind', 'stripe_webhook_failures', 'bad', v_checks #>> '{stripe_webhooks,status}' = 'fail',
                         'details', coalesce(v_checks -> 'stripe_webhooks', '{}'::jsonb) - 'status'),
      jsonb_build_object('kind', 'database_size', 'bad', v_checks #>> '{database_size,status}' = 'fail',
                         'details', coalesce(v_checks -> 'database_size', '{}'::jsonb) - 'status'),
      jsonb_build_object('kind', 'billing_sync_overdue', 'bad', v_checks #>> '{billing_sync,status}' = 'fail',
                         'details', coalesce(v_checks -> 'billing_sync', '{}'::jsonb) - 'status'))
    -- Each active job whose last run failed…
    || coalesce((
         select jsonb_agg(distinct jsonb_build_object('kind', 'cron_job_failed', 'subject', j ->> 'name', 'bad', true,
                                                       'details', jsonb_build_object('schedule', j -> 'schedule', 'last_run', j -> 'last_run')))
           from jsonb_array_elements(coalesce(v_checks #> '{cron,jobs}', '[]'::jsonb)) as j
          where j ->> 'active' = 'true' and j #>> '{last_run,status}' = 'failed'), '[]'::jsonb)
    -- …and each open cron alert whose job is fine again, paused or gone: cleared.
    || coalesce((
         select jsonb_agg(jsonb_build_object('kind', 'cron_job_failed', 'subject', a.subject, 'bad', false))
           from public.system_alerts as a
          where a.kind = 'cron_job_failed' and a.state <> 'cleared'
            and not exists (select from jsonb_array_elements(coalesce(v_checks #> '{cron,jobs}', '[]'::jsonb)) as j
                             where j ->> 'name' = a.subject and j ->> 'active' = 'true'
                               and j #>> '{last_run,status}' = 'failed')), '[]'::jsonb);

  for c in
    select e ->> 'kind' as kind, coalesce(e ->> 'subject', '') as subject,
           coalesce((e ->> 'bad')::boolean, false) as bad, coalesce(e -> 'details', '{}'::jsonb) as details
      from jsonb_array_elements(v_conditions) as e
  loop
    select * into v_alert
      from public.system_alerts as a
     where a.kind = c.kind and a.subject = c.subject and a.state <> 'cleared'
       for update;
    v_found := found;

    if c.bad then
      v_notification := null;
      if not v_found then
        insert into public.system_alerts (kind, subject, details)
        values (c.kind, c.subject, c.details)
        returning * into v_alert;
      end if;

      -- Notify? Only an open (not acknowledged) alert, never notified, or whose last attempt failed
      -- or never completed longer than the cooldown ago.
      if v_alert.state = 'open'
         and (v_alert.last_notified_at is null
              or (v_alert.last_notification_status in ('failed', 'pending') and v_alert.last_notified_at < v_now - p_cooldown)) then
        select max(a.last_notified_at) into v_recent
          from public.system_alerts as a
         where a.kind = c.kind and a.subject = c.subject and a.id <> v_alert.id
           -- A claim still pending counts: its SMS is most likely out.
           and a.last_notification_status in ('sent', 'pending');
        if v_recent is not null and v_recent > v_now - p_cooldown then
          -- The same condition was notified less than the cooldown ago: not again yet.
          v_notification := 'suppressed';
          if v_alert.last_notification_status is distinct from 'suppressed' then
            update public.system_alerts as a set last_notification_status = 'suppressed' where a.id = v_alert.id;
          end if;
        else
          v_notification := 'pending';
          update public.system_alerts as a
             set last_notified_at = v_now, notifications = a.notifications + 1, last_notification_status = 'pending'
           where a.id = v_alert.id
          returning * into v_alert;
          v_notify := v_notify || jsonb_build_object(
            'alert_id', v_alert.id, 'kind', c.kind, 'subject', c.subject, 'details', v_alert.details,
            'attempt', v_alert.notifications, 'raised_at', v_alert.raised_at,
            'idempotency_key', pg_catalog.format('system-alert:%s:%s', v_alert.id, v_alert.notifications));
        end if;
      end if;

      if not v_found then
        insert into public.system_audit_logs (area, action, actor, target, details)
        values ('system', 'alert_raised', 'system-status', 'system_alerts:' || v_alert.id,
                jsonb_build_object('alert_id', v_alert.id, 'kind', c.kind, 'subject', c.subject,
                                   'notification', coalesce(v_notification, 'none'), 'check', c.details));
        v_raised := v_raised || jsonb_build_object('id', v_alert.id, 'kind', c.kind, 'subject', c.subject,
                                                   'notification', coalesce(v_notification, 'none'));
      end if;
    elsif v_found then
      update public.system_alerts as a set state = 'cleared', cleared_at = v_now where a.id = v_alert.id;
      insert into public.system_audit_logs (area, action, actor, target, details)
      values ('system', 'alert_cleared', 'system-status', 'system_alerts:' || v_alert.id,
              jsonb_build_object('alert_id', v_alert.id, 'kind', c.kind, 'subject', c.subject,
                                 'raised_at', v_alert.raised_at, 'open_for_seconds',
                                 round(extract(epoch from v_now - v_alert.raised_at))));
      v_cleared := v_cleared || jsonb_build_object('id', v_alert.id, 'kind', c.kind, 'subject', c.subject);
    end if;
  end loop;

  return jsonb_build_object('raised', v_raised, 'cleared', v_cleared, 'notify', v_notify);
end
$$;
comment on function private.evaluate_system_alerts(jsonb, interval) is
  'Alert transitions from a full status of private.system_status: raises (audit alert_raised), clears (audit alert_cleared), and claims at most one notification per transition into a bad state (cooldown per kind and subject, default 1 hour), returned as {raised, cleared, notify: [{alert_id, kind, subject, details, attempt, idempotency_key}]}. Serialised by an advisory lock.';

create function private.evaluate_system_status(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_status jsonb;
  v_alerts jsonb;
begin
  v_status := private.system_status(coalesce(p, '{}'::jsonb) || '{"record": true, "evaluate_alerts": true}'::jsonb);
  if (v_status ->> 'authorized') is distinct from 'true' then
    raise exception 'evaluate_system_status: for the service only' using errcode = 'insufficient_privilege';
  end if;

  -- pg_cron keeps every run (288 a day from the 5-minute evaluation alone) and its table has no
  -- index on jobid: runs older than 30 days go, except each job's last one (the status shows it).
  delete from cron.job_run_details as d
   where d.end_time < now() - interval '30 days'
     and d.runid not in (select max(x.runid) from cron.job_run_details as x group by x.jobid);

  v_alerts := private.evaluate_system_alerts(v_status);
  return v_status || jsonb_build_object(
    'alerts', v_alerts,
    'open_alerts', (
      select coalesce(jsonb_agg(jsonb_build_object(
               'id', a.id, 'kind', a.kind, 'subject', a.subject, 'state', a.state, 'raised_at', a.raised_at,
               'acked_at', a.acked_at, 'last_notified_at', a.last_notified_at,
               'last_notification_status', a.last_notification_status, 'details', a.details)
               order by a.raised_at, a.id), '[]'::jsonb)
        from public.system_alerts as a
       where a.state <> 'cleared'));
end
$$;
comment on function private.evaluate_system_status(jsonb) is
  'The scheduled evaluation in one transaction: private.system_status (recorded, evaluate_alerts), pg_cron run history trimmed to 30 days, then private.evaluate_system_alerts; returns the status with {alerts: {raised, cleared, notify}} and the open alerts after the transitions. The service only.';

create function private.record_system_alert_notification(p jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_id bigint;
  v_attempt integer;
  v_status text := p ->> 'status';
  v_alert public.system_alerts;
begin
  if jsonb_typeof(p -> 'alert_id') is distinct from 'number' or jsonb_typeof(p -> 'attempt') is distinct from 'number'
     or v_status is null or v_status not in ('sent', 'failed') then
    raise exception 'record_system_alert_notification: alert_id, attempt and status (sent | failed) are required'
      using errcode = 'invalid_parameter_value';
  end if;
  v_id := (p ->> 'alert_id')::bigint;
  v_attempt := (p ->> 'attempt')::integer;

  -- Only the attempt that is still pending: a late answer for an older attempt changes nothing.
  update public.system_alerts as a
     set last_notification_status = v_status
   where a.id = v_id and a.notifications = v_attempt and a.last_notification_status = 'pending'
  returning * into v_alert;
  if not found then
    return jsonb_build_object('recorded', false);
  end if;

  insert into public.system_audit_logs (area, action, actor, target, details)
  values ('system', 'alert_notified', 'system-status', 'system_alerts:' || v_id,
          jsonb_strip_nulls(jsonb_build_object(
            'alert_id', v_id, 'kind', v_alert.kind, 'subject', v_alert.subject, 'attempt', v_attempt,
            'status', v_status, 'message_sid', p ->> 'message_sid',
            -- A failure carries details.error, so the guide's "errors of the last 24 h" finds it.
            'error', case when v_status = 'failed' then left(coalesce(p ->> 'error', 'send failed'), 500) end)));
  return jsonb_build_object('recorded', true, 'status', v_status);
end
$$;
comment on function private.record_system_alert_notification(jsonb) is
  'Records how a claimed alert notification went ({alert_id, attempt, status: sent | failed, message_sid?, error?}), for the pending attempt only, with an alert_notified audit row (details.error when it failed).';

create function private.ack_system_alert(p_alert_id bigint, p_actor text)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_alert public.system_alerts;
  v_actor text := left(coalesce(nullif(btrim(p_actor), ''), 'operator'), 200);
begin
  update public.system_alerts as a
     set state = 'acked', acked_at = now(), acked_by = v_actor
   where a.id = p_alert_id and a.state = 'open'
  returning * into v_alert;
  if not found then
    select * into v_alert from public.system_alerts as a where a.id = p_alert_id;
    if not found then
      raise exception 'ack_system_alert: no alert %', p_alert_id using errcode = 'no_data_found';
    end if;
    return jsonb_build_object('acked', false, 'id', v_alert.id, 'state', v_alert.state);
  end if;
  insert into public.system_audit_logs (area, action, actor, target, details)
  values ('system', 'alert_acked', v_actor, 'system_alerts:' || v_alert.id,
          jsonb_build_object('alert_id', v_alert.id, 'kind', v_alert.kind, 'subject', v_alert.subject));
  return jsonb_build_object('acked', true, 'id', v_alert.id, 'state', v_alert.state, 'kind', v_alert.kind,
                            'subject', v_alert.subject, 'acked_at', v_alert.acked_at, 'acked_by', v_alert.acked_by);
end
$$;
comment on function private.ack_system_alert(bigint, text) is
  'Acknowledges an open alert (no further notification; it still clears when the condition does), with an alert_acked audit row; {acked: false, state} when it is not open, no_data_found when it does not exist.';

comment on view dashboard.open_alerts is 'Alerts not cleared yet (open or acknowledged), newest first. Acknowledge one: npm run ops -- alerts ack <id> (POST /functions/v1/system-status/alerts/<id>/ack), or select private.ack_system_alert(<id>, ''<who>'').';

revoke all on function private.evaluate_system_alerts(jsonb, interval) from public, anon, authenticated, service_role;
revoke all on function private.evaluate_system_status(jsonb) from public, anon, authenticated, service_role;
revoke all on function private.record_system_alert_notification(jsonb) from public, anon, authenticated, service_role;
revoke all on function private.ack_system_alert(bigint, text) from public, anon, authenticated, service_role;
