//! The coordinator's checkpoint bookkeeping, as pure logic.
