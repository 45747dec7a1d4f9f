//! Reading job files: YAML with locations, the job model, overrides and diagnostics rendering.
