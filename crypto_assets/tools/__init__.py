"""Tools: the command line, the local stack (broker, JVM dependencies, Spark server), demo, live, backfill."""
