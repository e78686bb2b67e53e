-- A notification is written three times: recorded, leased, then sent (or retried). On full pages (the default
-- fillfactor, 100) each new version went to another page: a lease, which changes no indexed column, still added
-- an entry to every index, and both updates logged the whole row. With half of each page left free when rows are
-- recorded, a lease is a heap-only (HOT) update, and an update on the same page logs only the bytes it changed.
-- bench-notify (4,000 events, full_page_writes off to compare records alone): 7.0 KB of WAL a notification
-- before, 5.1 KB after; HOT updates 9,465 of 32,080 before, 15,990 after. New pages only: the table's sent
-- history takes up to twice the pages it did.
alter table notifications set (fillfactor = 50);
