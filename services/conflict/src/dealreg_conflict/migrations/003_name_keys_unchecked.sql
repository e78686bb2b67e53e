-- A registration's name keys are written by the statement that inserts it (store.insert_registrations, joined to
-- the rows it inserted) and deleted when it stops being active; registrations themselves are never deleted. The
-- foreign key checked, and locked, the registration once per key, about twenty times a registration: a large part
-- of the statement that was the database's costliest at full speed, guarding against nothing that can happen.
alter table name_keys drop constraint name_keys_registration_id_fkey;
