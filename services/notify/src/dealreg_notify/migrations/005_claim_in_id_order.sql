-- the delivery claim walks pending notifications oldest first and keeps each address's oldest: with this index
-- its cost follows how many it claims, not how many are pending (the old claim grouped every pending row)
create index notifications_pending_by_id on notifications (id) where status = 'pending';
