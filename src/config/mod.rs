//! Reading job files: YAML with locations, the job model, overrides and diagnostics rendering.
//!
//! [`load_job`] is the whole pipeline: the YAML text becomes a located [`ConfigValue`](eddy_api::ConfigValue)
//! tree ([`yaml`]), `--set` overrides are applied to it ([`overrides`]), and the tree is read into a
//! [`JobSpec`] ([`model`]). Any problem along the way comes back as a [`Report`] that prints like a
//! compiler error ([`report`]).
pub mod checkpoints;
pub mod failover;
pub mod model;
pub mod overrides;
pub mod report;
pub mod restart;
pub mod yaml;

pub use model::{read_job, read_job_lenient, JobSpec, NodeSpec, Partition, RESERVED_NODE_KEYS, RESERVED_SECTIONS};
pub use overrides::{apply_overrides, override_index, override_span};
pub use report::Report;
pub use yaml::{parse_yaml, plain_scalar};

use eddy_api::diagnostic::{Diagnostic, Diagnostics};
use std::path::Path;
use std::sync::Arc;

/// Reads, overrides and checks a job file.
pub fn load_job(path: &Path, overrides: &[String]) -> Result<JobSpec, Report> {
    match load_job_lenient(path, overrides)? {
        (job, diags) if diags.is_empty() => Ok(job),
        (job, diags) => Err(Report::new(job.file.clone(), job.source.clone(), diags)),
    }
}

/// Parses, overrides and checks the text of a job file; `file` is the name used in diagnostics.
pub fn parse_job(file: &str, text: &str, overrides: &[String]) -> Result<JobSpec, Report> {
    match parse_job_lenient(file, text, overrides)? {
        (job, diags) if diags.is_empty() => Ok(job),
        (job, diags) => Err(Report::new(job.file.clone(), job.source.clone(), diags)),
    }
}

/// Like [`load_job`], but returns the readable part of a job together with its problems, so that later
/// stages can add theirs to one report. Fails only when nothing usable could be read.
pub fn load_job_lenient(path: &Path, overrides: &[String]) -> Result<(JobSpec, Diagnostics), Report> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Report::new(file.as_str(), "", Diagnostic::new(format!("cannot read {file}: {e}"))))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Report::new(file.as_str(), "", Diagnostic::new(format!("cannot read {file}: it is not UTF-8 text")))
    })?;
    parse_job_lenient(&file, &text, overrides)
}

/// Like [`parse_job`], but returns the readable part of a job together with its problems.
pub fn parse_job_lenient(file: &str, text: &str, overrides: &[String]) -> Result<(JobSpec, Diagnostics), Report> {
    let file: Arc<str> = file.into();
    let source: Arc<str> = text.into();
    let fail = |diags: Diagnostics| Report::new(file.clone(), source.clone(), name_overrides(diags, overrides));
    let (tree, mut diags) = yaml::load(text);
    let Some(mut tree) = tree else {
        return Err(fail(diags));
    };
    let set_problems = apply_overrides(&mut tree, overrides);
    if !set_problems.is_empty() {
        // Reading a half-overridden tree would only add confusing follow-up errors.
        diags.extend(set_problems.0);
        return Err(fail(diags));
    }
    let (job, model_problems) = read_job_lenient(file.clone(), source.clone(), &tree);
    diags.extend(model_problems.0);
    match job {
        Some(job) => Ok((job, name_overrides(diags, overrides))),
        None => Err(fail(diags)),
    }
}

/// Problems with values that came from `--set` have no place in the file: name the override instead.
fn name_overrides(diags: Diagnostics, overrides: &[String]) -> Diagnostics {
    let rename = |mut d: Diagnostic| {
        if let Some(raw) = d.span.and_then(override_index).and_then(|i| overrides.get(i)) {
            d.message = format!("--set {raw}: {}", d.message);
            d.span = None;
        }
        d
    };
    Diagnostics(diags.0.into_iter().map(rename).collect())
}

#[cfg(test)]
mod tests;
