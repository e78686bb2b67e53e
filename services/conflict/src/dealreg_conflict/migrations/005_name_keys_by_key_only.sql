-- A registration's name keys are deleted (when it stops being active) through the keys' primary key: they are the
-- keys of its stored name and country (store.delete_name_keys). The index by registration cost every decision a
-- second index entry for each of its twenty or so keys, a third of the write-ahead log of conflict's costliest
-- statement, for the few registrations that later leave the active statuses.
drop index name_keys_by_registration;
