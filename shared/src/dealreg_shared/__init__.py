"""dealreg's shared library: contracts, envelope, topic catalogue and the Kafka/Postgres/logging plumbing."""
