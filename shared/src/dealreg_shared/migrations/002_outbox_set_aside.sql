-- An outbox record the broker can never take (larger than a produce request or than the topic allows, or for a
-- topic name it refuses) used to hold back every record after it: the relay tried the same batch again for ever.
-- It is set aside now, with the error, and the rest go on. Kept for operators:
--   select id, topic, failed_at, error from outbox where failed_at is not null;
-- and tried again once put back: update outbox set failed_at = null, error = null where id = ...;
alter table outbox add column failed_at timestamptz, add column error text;
drop index outbox_unpublished;
create index outbox_unpublished on outbox (id) where published_at is null and failed_at is null;
