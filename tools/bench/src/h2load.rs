//! GetDocument load from h2load (nghttp2's HTTP/2 load generator, a separate
//! process written in C): the server's throughput with a client that costs
//! little CPU, beside the benchmark's own tonic clients, which share the
//! machine's cores with the server and cost about as much per call.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// One h2load run.
pub struct H2Load {
    pub requests: usize,
    pub seconds: f64,
}

impl H2Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Whether h2load is installed.
pub fn available() -> bool {
    Command::new("h2load")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The gRPC frame of a message: a byte saying uncompressed, its length, the message.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// Sends `requests` GetDocument calls whose framed request is in `request` to
/// `addr` (`host:port`) over 16 connections, one call at a time on each.
/// h2load counts a gRPC error (HTTP 200 with a `grpc-status` trailer) as a
/// success, so the run fails unless the DATA bytes received are exactly
/// `requests` framed documents of `response_len` bytes.
pub fn get_document(
    addr: &str,
    request: &Path,
    requests: usize,
    response_len: usize,
) -> anyhow::Result<H2Load> {
    let out = Command::new("h2load")
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            "16",
            "-m",
            "1",
            "-t",
            "1",
        ])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("-d")
        .arg(request)
        .arg(format!(
            "http://{addr}/trove.v1.DocumentService/GetDocument"
        ))
        .output()
        .context("running h2load")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "h2load failed: {text}");
    let (seconds, succeeded, data) =
        parse(&text).with_context(|| format!("h2load said: {text}"))?;
    anyhow::ensure!(
        succeeded == requests && data == (requests * (response_len + 5)) as u64,
        "h2load: {succeeded} of {requests} calls succeeded with {data} bytes of data, not {} \
         (a gRPC error carries no document)",
        requests * (response_len + 5)
    );
    Ok(H2Load { requests, seconds })
}

/// The run's seconds, succeeded calls and DATA bytes, from h2load's summary:
/// `finished in 73.96ms, …`, `requests: … 1000 succeeded, …` and
/// `traffic: … 1.59MB (1666000) data`.
fn parse(text: &str) -> Option<(f64, usize, u64)> {
    let finished = text.lines().find_map(|l| l.strip_prefix("finished in "))?;
    let elapsed = finished.split(',').next()?.trim();
    let seconds = if let Some(ms) = elapsed.strip_suffix("ms") {
        ms.parse::<f64>().ok()? / 1000.0
    } else if let Some(us) = elapsed.strip_suffix("us") {
        us.parse::<f64>().ok()? / 1e6
    } else {
        elapsed.strip_suffix('s')?.parse::<f64>().ok()?
    };
    let requests = text.lines().find_map(|l| l.strip_prefix("requests: "))?;
    let succeeded = requests
        .split(", ")
        .find_map(|part| part.strip_suffix(" succeeded"))?
        .parse()
        .ok()?;
    let traffic = text.lines().find_map(|l| l.strip_prefix("traffic: "))?;
    let data_part = traffic.split(", ").find(|part| part.ends_with(" data"))?;
    let data = data_part
        .split_once('(')?
        .1
        .split_once(')')?
        .0
        .parse()
        .ok()?;
    Some((seconds, succeeded, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_h2loads_summary() {
        let text = "finished in 73.96ms, 13521.37 req/s, 21.90MB/s\n\
            requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed, 0 errored, 0 timeout\n\
            status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx\n\
            traffic: 1.62MB (1698520) total, 3.48KB (3560) headers (space savings 94.99%), 1.59MB (1666000) data\n";
        let (seconds, succeeded, data) = parse(text).unwrap();
        assert!((seconds - 0.07396).abs() < 1e-9);
        assert_eq!((succeeded, data), (1000, 1_666_000));
        let text = text.replace("73.96ms", "5.12s");
        assert!((parse(&text).unwrap().0 - 5.12).abs() < 1e-9);
        assert!(parse("finished in soon").is_none());
    }

    #[test]
    fn frames_a_message() {
        assert_eq!(grpc_frame(b"ab"), vec![0, 0, 0, 0, 2, b'a', b'b']);
    }
}
