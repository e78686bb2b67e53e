-- A registration's name keys are deleted (when it stops being active) through the keys' primary key: they are the
-- keys of its stored name and country (store.delete_name_keys). The index by registration cost every decision a
-- second index entry for each of its 16 or so keys, for the few registrations that later leave the active statuses:
-- a fifth of the WAL records of conflict's costliest statement (72.7 against 56.8 a registration at full speed).
drop index name_keys_by_registration;
