-- Finished notifications are deleted once past their retention (dealreg_notify.retention). Deleting a digest has
-- Postgres check that no notification it carried still names it (the `digest_id` foreign key): without an index,
-- a sequential scan of the whole table for every row deleted. Only digested notifications have a digest_id.
create index notifications_digest_id on notifications (digest_id) where digest_id is not null;
