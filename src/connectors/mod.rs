//! Built-in connectors: file and generator sources; file, stdout and blackhole sinks.
