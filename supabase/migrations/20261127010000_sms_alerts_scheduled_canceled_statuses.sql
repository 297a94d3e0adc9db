-- Twilio's outbound message statuses include `scheduled` (a message sent with a SendAt) and
-- `canceled` (a scheduled message canceled before it left). The original check list lacked them, so
-- a status callback carrying either would fail the row's update. Same list plus those two.
alter table public.sms_alerts drop constraint sms_alerts_status_check;
alter table public.sms_alerts add constraint sms_alerts_status_check check (status in (
  'queued', 'accepted', 'scheduled', 'sending', 'sent', 'delivered', 'undelivered', 'failed',
  'received', 'read', 'canceled'
));

comment on column public.sms_alerts.status is 'Twilio status: queued, accepted, scheduled, sending, sent, delivered, undelivered, failed, read, canceled (outbound); received (inbound). Only moves forward (private.apply_sms_status).';
