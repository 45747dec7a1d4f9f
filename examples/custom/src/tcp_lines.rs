//! `tcp_lines`: a source that connects to a TCP server and emits each line it sends as a record
//! `{ line: string }`, until the server closes the connection.
//!
//! ```yaml
//! sources:
//!   lines: { type: tcp_lines, config: { address: "127.0.0.1:9999" } }
//! ```
//!
//! The socket is non-blocking: [`Source::poll`] takes what has arrived, and when nothing has it returns
//! [`SourcePoll::Idle`] so the task's arbiter thread (shared with other tasks) runs something else and
//! polls again later. Only the connect in [`Source::open`] waits, at most `connect_timeout`.
//!
//! The position for checkpoints is the number of lines consumed. A restored source reconnects and skips
//! that many lines, so this assumes a server that replays its lines from the start to every connection
//! (a file served over TCP, a log); a real broker would be asked to start at the offset instead.
//! The source runs at parallelism 1 (one connection).
use eddy_api::config::ConfigDuration;
use eddy_api::snapshot::{decode, encode};
use eddy_api::source::SourceProgress;
use eddy_api::{
    Batch, DataType, Diagnostic, Diagnostics, EddyError, Field, PlanContext, Result, Schema, SchemaRef, Source,
    SourceBuilder, SourcePoll, Spanned, TaskInfo,
};
use serde::Deserialize;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Bytes read from the socket per `read` call.
const CHUNK: usize = 64 << 10;
/// At most this many bytes are read per poll, so a fast sender cannot keep the thread to itself.
const MAX_READ_PER_POLL: usize = 4 << 20;
/// A line longer than this fails the source (the peer is probably not sending lines).
const MAX_LINE: usize = 16 << 20;

/// Config of `tcp_lines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpLinesConfig {
    /// The server to connect to, `host:port`, e.g. `127.0.0.1:9999`.
    pub address: Spanned<String>,
    /// How long to wait before polling an empty socket again. Default `5ms`.
    #[serde(default)]
    pub poll_interval: Option<Spanned<ConfigDuration>>,
    /// How long the connect may take. Default `5s`.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<ConfigDuration>>,
}

/// The planned `tcp_lines` source.
#[derive(Debug)]
pub struct TcpLinesBuilder {
    schema: SchemaRef,
    address: SocketAddr,
    poll_interval: Duration,
    connect_timeout: Duration,
}

/// Resolves the address (at plan time, off the task threads) and checks the settings.
pub fn plan(cfg: TcpLinesConfig, ctx: &PlanContext<'_>) -> Result<TcpLinesBuilder, Diagnostics> {
    let mut diags = Diagnostics::new();
    let address = match cfg.address.value.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Some(a),
        Ok(None) | Err(_) => {
            diags.push(
                Diagnostic::at(cfg.address.span, format!("tcp_lines: cannot resolve `{}`", cfg.address.value))
                    .with_hint("write `host:port`, e.g. `127.0.0.1:9999`"),
            );
            None
        }
    };
    if ctx.parallelism != 1 {
        diags.push(
            Diagnostic::at(
                ctx.span,
                format!("tcp_lines reads one connection, but the parallelism is {}", ctx.parallelism),
            )
            .with_hint("set `parallelism: 1` on the source"),
        );
    }
    let connect_timeout = cfg.connect_timeout.map_or(Duration::from_secs(5), |d| d.value.0);
    if connect_timeout.is_zero() {
        diags.push(Diagnostic::at(ctx.span, "tcp_lines: `connect_timeout` must be more than 0"));
    }
    let poll_interval = cfg.poll_interval.map_or(Duration::from_millis(5), |d| d.value.0);
    match (address, diags.is_empty()) {
        (Some(address), true) => Ok(TcpLinesBuilder {
            schema: Arc::new(Schema::new(vec![Field::new("line", DataType::String)])),
            address,
            poll_interval,
            connect_timeout,
        }),
        _ => Err(diags),
    }
}

impl SourceBuilder for TcpLinesBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The input ends when the server closes the connection.
    fn bounded(&self) -> bool {
        true
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Source>> {
        Ok(Box::new(TcpLines::new(self.address, self.poll_interval, self.connect_timeout)))
    }
}

/// One connection's worth of lines.
pub struct TcpLines {
    address: SocketAddr,
    poll_interval: Duration,
    connect_timeout: Duration,
    stream: Option<TcpStream>,
    /// Bytes received and not yet emitted (at most a partial line between polls).
    buf: Vec<u8>,
    chunk: Box<[u8]>,
    position: Position,
    eof: bool,
}

/// How far the source has come.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    /// Lines consumed so far (emitted, or skipped after a restore): the checkpointed position.
    consumed: u64,
    /// Lines still to skip after a restore.
    skip: u64,
}

impl Position {
    /// Consumes one line: skipped while restoring, else emitted. Returns the rows appended (0 or 1).
    fn consume(&mut self, out: &mut Batch, line: &[u8]) -> usize {
        self.consumed += 1;
        if self.skip > 0 {
            self.skip -= 1;
            return 0;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Text is what the schema promises; bytes that are not UTF-8 become U+FFFD rather than failing.
        out.push_str(&String::from_utf8_lossy(line));
        1
    }
}

impl TcpLines {
    /// A source for `address` (not connected until [`Source::open`]).
    pub fn new(address: SocketAddr, poll_interval: Duration, connect_timeout: Duration) -> Self {
        TcpLines {
            address,
            poll_interval,
            connect_timeout,
            stream: None,
            buf: Vec::new(),
            chunk: vec![0; CHUNK].into_boxed_slice(),
            position: Position::default(),
            eof: false,
        }
    }

    fn io(&self, doing: &str, e: std::io::Error) -> EddyError {
        EddyError::io(format!("tcp_lines: {doing} {}", self.address), e)
    }

    /// Emits the complete lines in the buffer, up to `max_rows`; returns how many rows it appended.
    fn drain_lines(&mut self, out: &mut Batch, max_rows: usize) -> usize {
        let mut rows = 0;
        let mut pos = 0;
        while rows < max_rows {
            let Some(nl) = self.buf[pos..].iter().position(|&b| b == b'\n') else { break };
            let line = &self.buf[pos..pos + nl];
            pos += nl + 1;
            rows += self.position.consume(out, line);
        }
        self.buf.drain(..pos);
        rows
    }
}

impl Source for TcpLines {
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        // The one bounded wait of this source: connecting (immediate on loopback).
        let stream =
            TcpStream::connect_timeout(&self.address, self.connect_timeout).map_err(|e| self.io("connecting to", e))?;
        stream.set_nonblocking(true).map_err(|e| self.io("configuring the socket to", e))?;
        self.stream = Some(stream);
        Ok(())
    }

    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll> {
        let mut rows = self.drain_lines(out, max_rows);
        let mut read = 0;
        while rows < max_rows && !self.eof && read < MAX_READ_PER_POLL {
            let Some(stream) = self.stream.as_mut() else {
                return Err(EddyError::internal("tcp_lines polled before open"));
            };
            match stream.read(&mut self.chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    read += n;
                    self.buf.extend_from_slice(&self.chunk[..n]);
                    rows += self.drain_lines(out, max_rows - rows);
                    if self.buf.len() > MAX_LINE {
                        return Err(EddyError::user(format!(
                            "tcp_lines: {} sent a line longer than {} MiB",
                            self.address,
                            MAX_LINE >> 20
                        )));
                    }
                }
                // Nothing there now: never wait for it on the arbiter thread.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Ok(if rows > 0 { SourcePoll::Ready } else { SourcePoll::Idle(self.poll_interval) });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io("reading from", e)),
            }
        }
        if self.eof && rows < max_rows {
            rows += self.drain_lines(out, max_rows - rows);
            if rows < max_rows && !self.buf.contains(&b'\n') {
                // The last line may lack its newline.
                if !self.buf.is_empty() {
                    let rest = std::mem::take(&mut self.buf);
                    self.position.consume(out, &rest);
                }
                return Ok(SourcePoll::Finished);
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn progress(&self) -> SourceProgress {
        SourceProgress { done: self.position.consumed, total: None }
    }

    fn snapshot_position(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        // Exactly the rows returned by the polls so far: the partial line in `buf` is not counted.
        encode(&self.position.consumed).map(Some)
    }

    fn restore_position(&mut self, positions: &[Vec<u8>]) -> Result<()> {
        // One subtask wrote it (parallelism 1); an empty entry means it had no position.
        if let Some(p) = positions.iter().find(|p| !p.is_empty()) {
            self.position.skip = decode::<u64>(p, "tcp_lines position")?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.stream = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::testing::task_info;
    use std::io::Write;
    use std::net::TcpListener;

    fn lines(b: &Batch) -> Vec<String> {
        b.rows().map(|r| r.str(0).unwrap_or_default().to_string()).collect()
    }

    /// Serves `data` to one connection, then closes it; returns the address.
    fn serve(data: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(data).unwrap();
        });
        (addr, t)
    }

    /// Polls until finished; idle polls are retried at once (the test has nothing else to run).
    fn read_all(src: &mut TcpLines, max_rows: usize) -> Vec<String> {
        let mut out = Batch::new(1);
        loop {
            match src.poll(&mut out, max_rows).unwrap() {
                SourcePoll::Finished => return lines(&out),
                SourcePoll::Ready | SourcePoll::Idle(_) => std::thread::yield_now(),
            }
        }
    }

    #[test]
    fn lines_until_the_peer_closes_then_finished() {
        let (addr, server) = serve(b"one\r\ntwo\n\nthree\nno newline");
        let mut src = TcpLines::new(addr, Duration::from_millis(1), Duration::from_secs(5));
        src.open(&task_info(0, 1, 128)).unwrap();
        assert_eq!(read_all(&mut src, 2), ["one", "two", "", "three", "no newline"]);
        assert_eq!(src.progress().done, 5);
        server.join().unwrap();
        src.close().unwrap();
    }

    #[test]
    fn a_restored_source_skips_the_lines_it_had_consumed() {
        let (addr, server) = serve(b"a\nb\nc\nd\n");
        let mut src = TcpLines::new(addr, Duration::from_millis(1), Duration::from_secs(5));
        src.open(&task_info(0, 1, 128)).unwrap();
        let mut out = Batch::new(1);
        while out.len() < 2 {
            let room = 2 - out.len();
            src.poll(&mut out, room).unwrap();
        }
        assert_eq!(lines(&out), ["a", "b"]);
        let pos = src.snapshot_position(1).unwrap().unwrap();
        server.join().unwrap();

        // The server replays everything to the new connection; the restored source goes on after `b`.
        let (addr, server) = serve(b"a\nb\nc\nd\n");
        let mut again = TcpLines::new(addr, Duration::from_millis(1), Duration::from_secs(5));
        again.open(&task_info(0, 1, 128)).unwrap();
        again.restore_position(&[pos]).unwrap();
        assert_eq!(read_all(&mut again, 100), ["c", "d"]);
        assert_eq!(decode::<u64>(&again.snapshot_position(2).unwrap().unwrap(), "position").unwrap(), 4);
        server.join().unwrap();
    }

    #[test]
    fn an_empty_socket_is_idle_not_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut src = TcpLines::new(listener.local_addr().unwrap(), Duration::from_millis(7), Duration::from_secs(5));
        src.open(&task_info(0, 1, 128)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut out = Batch::new(1);
        assert_eq!(src.poll(&mut out, 10).unwrap(), SourcePoll::Idle(Duration::from_millis(7)));
        peer.write_all(b"x\n").unwrap();
        drop(peer);
        assert_eq!(read_all(&mut src, 10), ["x"]);
    }

    #[test]
    fn a_refused_connection_is_an_error_naming_the_address() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed again at once
        let mut src = TcpLines::new(addr, Duration::from_millis(1), Duration::from_secs(5));
        let e = src.open(&task_info(0, 1, 128)).unwrap_err().to_string();
        assert!(e.contains(&addr.to_string()), "{e}");
    }
}
