-- Each partner's active registrations, counted as they change instead of at every batch: the capacity check read
-- `count(*)` of the batch's partners' active registrations each time, a cost that grew with them (7.8 ms a batch
-- with 30,000 active in the benchmark, 0.08 ms a registration; ten times that at ten times the registrations).
-- Kept by statement triggers over the rows a statement inserted or changed, so every writer of `registrations`
-- keeps it, in the same transaction. Counters are changed in partner order, as partners are locked.
create table partner_active_registrations (
    partner_id text primary key,
    -- no check (n >= 0): Postgres checks the row an upsert proposes, a decrement's negative one included
    n          bigint not null
);
insert into partner_active_registrations (partner_id, n)
    select partner_id, count(*) from registrations where active group by partner_id;

create function count_active_registrations() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into partner_active_registrations as c (partner_id, n)
            select partner_id, count(*) from new_rows where active group by partner_id order by partner_id
            on conflict (partner_id) do update set n = c.n + excluded.n;
    elsif tg_op = 'UPDATE' then
        insert into partner_active_registrations as c (partner_id, n)
            select n.partner_id, sum(case when n.active then 1 else -1 end)
            from old_rows o join new_rows n on n.registration_id = o.registration_id
            where o.active <> n.active group by n.partner_id order by n.partner_id
            on conflict (partner_id) do update set n = c.n + excluded.n;
    else
        update partner_active_registrations c set n = c.n - d.n
            from (select partner_id, count(*) as n from old_rows where active group by partner_id) d
            where c.partner_id = d.partner_id;
    end if;
    return null;
end $$;

create trigger registrations_active_inserted after insert on registrations
    referencing new table as new_rows for each statement execute function count_active_registrations();
create trigger registrations_active_changed after update on registrations
    referencing old table as old_rows new table as new_rows for each statement execute function count_active_registrations();
create trigger registrations_active_deleted after delete on registrations
    referencing old table as old_rows for each statement execute function count_active_registrations();
