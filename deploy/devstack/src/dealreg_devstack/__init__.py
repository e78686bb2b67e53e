"""dealreg's local stack without Docker: a Kafka KRaft broker from Maven Central jars, Postgres 15, set-up."""
