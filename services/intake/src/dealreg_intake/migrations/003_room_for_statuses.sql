-- A registration is written twice here: when it is received, then when its status comes back (approved or under
-- review keeps it active, so no indexed column changes). On full pages (the default fillfactor, 100) that status
-- went to another page unless pruning had made room: a new entry in each of the three indexes, the whole row
-- logged. A quarter of each page left free when rows are received makes room for the status on the same page:
-- a heap-only (HOT) update. New pages only.
alter table registrations set (fillfactor = 75);
