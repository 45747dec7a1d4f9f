//! SQL expressions compiled against a schema: evaluation, keys and aggregate functions.
