-- No query reads notifications by next_attempt_at alone any more (a claim finds each address's head through
-- notifications_pending_by_address). Statistics taken while nothing was pending made the planner take this
-- index for every step of the claim, and read the whole backlog once per address: 49 million buffers for one
-- claim over 20,000 pending in the test of it, half of a core during some benchmark bursts.
drop index notifications_due;
