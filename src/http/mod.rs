//! Operating a running job over HTTP: the JSON control API (described by an OpenAPI document), the live
//! dashboard (one embedded page), and Prometheus metrics.
//!
//! [`Server::start`] runs actix-web in **its own thread with its own actix `System`**, not on the job's:
//! the job's system only exists while [`run_job_with`](eddy_actors::coordinator::run_job_with) runs, but
//! the server must be listening (and its address printed) before the job is deployed and may outlive it
//! (`--linger`, or a last poll of the final figures); and a job that saturates its arbiters must not
//! make the API that could cancel it unresponsive. The server reads the job through a
//! [`JobHandle`] (status behind a lock, metrics as atomics) and sends actions to the coordinator as
//! actor messages, which are safe to send from any thread.
//!
//! Every request needs the bearer token when one is set (`Authorization: Bearer TOKEN`, or
//! `?token=TOKEN` so a browser can open the dashboard); [`bind`] refuses a non-loopback address
//! without one.
mod api;
pub mod client;
pub mod history;
mod prometheus;

use crate::plan::LogicalPlan;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use eddy_actors::coordinator::{now_ms, GraphInfo, JobHandle};
use eddy_api::registry::NodeKind;
use history::{History, Sample};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{mpsc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The address `eddy run` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// What can go wrong starting the server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address does not parse or resolve.
    #[error("cannot use `{addr}` as a listen address: {reason}")]
    Address {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A non-loopback address without a token would open the job's controls to the network.
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, and without a token anyone who can reach it \
         could cancel the job; set --token or EDDY_TOKEN (or listen on 127.0.0.1)"
    )]
    TokenRequired {
        /// As given.
        addr: String,
    },
    /// Binding failed (address in use, permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server thread could not be started.
    #[error("cannot start the web server: {0}")]
    Start(String),
}

/// Resolves `addr`, checks that a non-loopback address comes with a token, and binds it.
pub fn bind(addr: &str, token: Option<&str>) -> Result<TcpListener, HttpError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| HttpError::Address { addr: addr.to_string(), reason: e.to_string() })?
        .collect();
    if addrs.is_empty() {
        return Err(HttpError::Address { addr: addr.to_string(), reason: "it resolves to nothing".into() });
    }
    if token.is_none_or(str::is_empty) && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(HttpError::TokenRequired { addr: addr.to_string() });
    }
    TcpListener::bind(&addrs[..]).map_err(|source| HttpError::Bind { addr: addr.to_string(), source })
}

/// A node of the job as written (routing nodes included), for the API and the dashboard's graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalNodeInfo {
    /// Node name.
    pub name: String,
    /// `source`, `operator` or `sink`.
    pub kind: &'static str,
    /// Its `type`.
    pub type_name: String,
    /// Subtasks.
    pub parallelism: usize,
    /// Upstream node names.
    pub inputs: Vec<String>,
    /// True for routing nodes (`key_by`, `union`) that become edge partitionings.
    pub routing: bool,
    /// The task chain running it (none for routing nodes).
    pub vertex: Option<usize>,
}

impl LogicalNodeInfo {
    /// Describes every node of a plan, placing each in the chain of `graph` that runs it.
    pub fn of_plan(plan: &LogicalPlan, graph: &GraphInfo) -> Vec<LogicalNodeInfo> {
        plan.nodes
            .iter()
            .map(|n| LogicalNodeInfo {
                name: n.name.to_string(),
                kind: match n.kind {
                    NodeKind::Source => "source",
                    NodeKind::Operator => "operator",
                    NodeKind::Sink => "sink",
                },
                type_name: n.type_name.clone(),
                parallelism: n.parallelism,
                inputs: n.inputs.iter().filter_map(|i| plan.nodes.get(i.node)).map(|u| u.name.to_string()).collect(),
                routing: n.is_passthrough(),
                vertex: graph.vertex_of(&n.name).map(|v| v.id),
            })
            .collect()
    }
}

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Required bearer token, if any.
    pub token: Option<String>,
    /// How often metrics are sampled for rates and the throughput chart.
    pub sample_interval: Duration,
    /// Chart points kept (the chart's window is `history * sample_interval`).
    pub history: usize,
    /// Keep serving after the job ends, until a stop or cancel request releases the process.
    pub linger: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { token: None, sample_interval: Duration::from_secs(1), history: 300, linger: false }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    job: JobHandle,
    logical: Vec<LogicalNodeInfo>,
    options: Options,
    history: Mutex<History>,
    release: Mutex<Option<mpsc::Sender<()>>>,
}

impl AppState {
    fn sample(&self) {
        let sample = Sample { at: Instant::now(), time_ms: now_ms(), metrics: self.job.metrics().snapshot() };
        let graph = self.job.status().graph;
        self.history.lock().unwrap_or_else(PoisonError::into_inner).push(&graph, sample);
    }

    fn authorized(&self, req: &ServiceRequest) -> bool {
        let Some(expected) = self.options.token.as_deref().filter(|t| !t.is_empty()) else { return true };
        let bearer = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let query = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(|v| percent_decode(v).unwrap_or_default());
        bearer.is_some_and(|t| same(t.as_bytes(), expected.as_bytes()))
            || query.is_some_and(|t| same(t.as_bytes(), expected.as_bytes()))
    }

    /// After the job ended: lets a lingering process exit. True when it was lingering.
    fn release(&self) -> bool {
        if !self.options.linger {
            return false;
        }
        if let Some(tx) = self.release.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = tx.send(());
        }
        true
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes `%XX` escapes and `+`; None when malformed.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let ok = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.authorized(&req));
    if !ok {
        let resp = HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer realm=\"eddy\""))
            .json(serde_json::json!({ "error": "missing or wrong bearer token" }));
        return Ok(req.into_response(resp));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A running web server for one job.
pub struct Server {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    released: mpsc::Receiver<()>,
}

impl Server {
    /// Serves `job` on `listener` from a new thread; returns once it accepts connections.
    pub fn start(
        listener: TcpListener,
        job: JobHandle,
        logical: Vec<LogicalNodeInfo>,
        options: Options,
    ) -> Result<Server, HttpError> {
        let addr = listener.local_addr().map_err(|e| HttpError::Start(e.to_string()))?;
        let (release_tx, released) = mpsc::channel();
        let interval = options.sample_interval.max(Duration::from_millis(10));
        let state = web::Data::new(AppState {
            job,
            logical,
            history: Mutex::new(History::new(options.history)),
            options,
            release: Mutex::new(Some(release_tx)),
        });
        state.sample();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ServerHandle, String>>();
        let thread = std::thread::Builder::new()
            .name("eddy-http".into())
            .spawn(move || {
                let sys = actix_rt::System::new();
                sys.block_on(async move {
                    let data = state.clone();
                    let server = HttpServer::new(move || {
                        App::new().app_data(data.clone()).wrap(from_fn(authorize)).configure(api::routes)
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener);
                    let server = match server {
                        Ok(s) => s.run(),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(server.handle()));
                    let sampler = state.clone();
                    actix_rt::spawn(async move {
                        let mut tick = actix_rt::time::interval(interval);
                        tick.tick().await; // the first tick is immediate; a sample was just taken
                        loop {
                            tick.tick().await;
                            sampler.sample();
                        }
                    });
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "web server stopped");
                    }
                });
            })
            .map_err(|e| HttpError::Start(e.to_string()))?;
        let handle = match ready_rx.recv() {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(HttpError::Start(e)),
            Err(_) => return Err(HttpError::Start("the server thread ended early".into())),
        };
        Ok(Server { addr, handle, thread: Some(thread), released })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until a stop or cancel request arrives for the ended job (with [`Options::linger`]).
    pub fn wait_for_release(&self) {
        let _ = self.released.recv();
    }

    /// Stops serving (finishing requests in flight) and joins the server thread.
    pub fn shutdown(mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = actix_rt::Runtime::new() {
            rt.block_on(handle.stop(true));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_decode_from_queries() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("a%2"), None);
    }

    #[test]
    fn a_public_address_needs_a_token() {
        assert!(matches!(bind("0.0.0.0:0", None), Err(HttpError::TokenRequired { .. })));
        assert!(matches!(bind("0.0.0.0:0", Some("")), Err(HttpError::TokenRequired { .. })));
        assert!(bind("0.0.0.0:0", Some("s3cret")).is_ok());
        assert!(bind("127.0.0.1:0", None).is_ok());
        assert!(matches!(bind("no port", None), Err(HttpError::Address { .. })));
    }
}
