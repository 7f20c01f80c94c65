//! The floors of the machine: a round trip between two processes over a
//! Unix socket (blocking and spinning), and a spawn-and-wait of a trivial
//! binary. `matrix` and `startup` report goplug's figures against them.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::{TINY, percentile};

/// How the two ends of the socket floor wait for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Blocking reads: each message wakes a sleeping process, so an idle
    /// vCPU's wake-up latency is in every round trip.
    Block,
    /// Non-blocking reads polled in a loop: both ends stay on a CPU.
    Spin,
}

impl Wait {
    fn flag(self) -> &'static str {
        match self {
            Self::Block => "--pong",
            Self::Spin => "--pong-spin",
        }
    }
}

/// One empty poll: spin, and now and then let the other end have the CPU
/// when both share one (the machine is shared).
fn idle(polls: u32) -> u32 {
    if polls % 4096 == 4095 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
    polls.wrapping_add(1)
}

/// Writes all of `buf`, polling while the socket is full.
fn spin_write(stream: &mut UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    let mut polls = 0u32;
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => polls = idle(polls),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf`, polling while nothing has arrived.
fn spin_read(stream: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    let mut polls = 0u32;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => polls = idle(polls),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The floor: a 16-byte ping-pong over a Unix socket between this process
/// and a copy of its binary, which must call [`pong_main`] first; p50 and
/// p99 of `round_trips` round trips after a warm-up of a tenth.
pub fn unix_floor(round_trips: usize, wait: Wait) -> Result<(Duration, Duration), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("pong.sock");
    let listener = UnixListener::bind(&path).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg(wait.flag())
        .arg(&path)
        .spawn()
        .map_err(|e| e.to_string())?;
    let measured = ping(&listener, round_trips, wait);
    // The child exits when its end of the socket closes (dropped above).
    let _ = child.wait();
    measured
}

fn ping(
    listener: &UnixListener,
    round_trips: usize,
    wait: Wait,
) -> Result<(Duration, Duration), String> {
    let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
    stream
        .set_nonblocking(wait == Wait::Spin)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let mut latencies = Vec::with_capacity(round_trips);
    for i in 0..round_trips + round_trips / 10 {
        let started = Instant::now();
        match wait {
            Wait::Block => {
                stream.write_all(TINY).map_err(|e| e.to_string())?;
                stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
            }
            Wait::Spin => {
                spin_write(&mut stream, TINY).map_err(|e| e.to_string())?;
                spin_read(&mut stream, &mut buf).map_err(|e| e.to_string())?;
            }
        }
        if i >= round_trips / 10 {
            latencies.push(started.elapsed());
        }
    }
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}

/// The median p50 and the median p99 of several floor measurements; an
/// error if none succeeded.
pub fn median_floor(
    floors: Vec<Result<(Duration, Duration), String>>,
) -> Result<(Duration, Duration), String> {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut last_error = None;
    for floor in floors {
        match floor {
            Ok((p50, p99)) => {
                p50s.push(p50);
                p99s.push(p99);
            }
            Err(e) => last_error = Some(e),
        }
    }
    if p50s.is_empty() {
        return Err(last_error.unwrap_or_else(|| "no floor measurement".to_owned()));
    }
    p50s.sort();
    p99s.sort();
    Ok((p50s[p50s.len() / 2], p99s[p99s.len() / 2]))
}

fn pong(path: &Path, wait: Wait) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(path)?;
    let mut buf = [0u8; 16];
    match wait {
        Wait::Block => {
            while stream.read_exact(&mut buf).is_ok() {
                stream.write_all(&buf)?;
            }
        }
        Wait::Spin => {
            stream.set_nonblocking(true)?;
            while spin_read(&mut stream, &mut buf).is_ok() {
                spin_write(&mut stream, &buf)?;
            }
        }
    }
    Ok(())
}

/// The floor of a plugin launch: `runs` spawns of `/bin/true`, each waited
/// for (Rust's `Command::status`), their times added to `times`.
pub fn spawn_floor(runs: usize, times: &mut Vec<Duration>) -> Result<(), String> {
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new("/bin/true")
            .status()
            .map_err(|e| format!("spawning /bin/true: {e}"))?;
        if !status.success() {
            return Err(format!("/bin/true exited with {status}"));
        }
        times.push(started.elapsed());
    }
    Ok(())
}

/// The other end of [`unix_floor`]: a binary that measures the floor calls
/// this first with its arguments, and returns the exit code it gives.
pub fn pong_main(args: &[String]) -> Option<ExitCode> {
    let wait = [Wait::Block, Wait::Spin]
        .into_iter()
        .find(|wait| args.get(1).map(String::as_str) == Some(wait.flag()))?;
    Some(match args.get(2).map(|p| pong(Path::new(p), wait)) {
        Some(Ok(())) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
