//! `eddy checkpoints <storage>`: list checkpoints and savepoints, or verify that one can be restored
//! into a job without running it.
use crate::checkpoint::list::{format_listing, list_checkpoints};
use crate::checkpoint::load::{load_checkpoint, RestoreTarget};
use crate::checkpoint::location::StorageLocation;
use crate::checkpoint::store::OpendalStore;
use crate::job;
use eddy_api::Registry;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn command(
    registry: &Registry,
    storage: &str,
    options: &[String],
    verify: Option<&str>,
    job_file: Option<&Path>,
) -> ExitCode {
    match run(registry, storage, options, verify, job_file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    registry: &Registry,
    storage: &str,
    options: &[String],
    verify: Option<&str>,
    job_file: Option<&Path>,
) -> Result<(), String> {
    let mut opts = BTreeMap::new();
    for o in options {
        let (k, v) = o.split_once('=').ok_or_else(|| format!("--option `{o}`: expected KEY=VALUE"))?;
        opts.insert(k.trim().to_string(), v.trim().to_string());
    }
    let location = StorageLocation::parse(storage, opts).map_err(|e| e.to_string())?;
    let store = OpendalStore::new(&location).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let Some(which) = verify else {
        let listing = rt.block_on(list_checkpoints(&store)).map_err(|e| e.to_string())?;
        if listing.is_empty() {
            println!("no checkpoints or savepoints under {}", store.url());
        } else {
            print!("{}", format_listing(&listing));
        }
        return Ok(());
    };
    let target = if which == "latest" { RestoreTarget::Latest } else { RestoreTarget::Path(which.to_string()) };
    let loaded = rt.block_on(load_checkpoint(&store, target)).map_err(|e| e.to_string())?;
    for s in &loaded.skipped {
        println!("skipped checkpoint {} ({}): {}", s.id, s.location, s.reason);
    }
    let Some(file) = job_file else { return Err("--verify needs --job <file>".into()) };
    let prepared = job::prepare(file, &[], registry).map_err(|report| report.to_string())?;
    let r = &loaded.restored;
    let dropped = r.check(&prepared.graph, false).map_err(|e| format!("{}: {e}", r.location))?;
    debug_assert!(dropped.is_empty());
    println!(
        "ok: {} (checkpoint {}, {} bytes, {} nodes with state) can be restored into {}",
        r.location,
        r.id,
        loaded.metadata.size(),
        r.nodes.len(),
        file.display()
    );
    Ok(())
}
