//! Simulated browsers for the benchmark (`make bench`, phase `browsers`):
//! each polls the run list, one run and that run's log once per interval,
//! with the ETag it last got and from the log offset it reached, as the
//! SPA does. Prints one JSON object with the latencies and statuses.
//!
//!     browsers BASE_URL RUN_IDS BROWSERS SECONDS [INTERVAL_MS]
//!
//! `RUN_IDS` is a comma-separated list; browser `n` follows run `n mod k`.
//! `EXECUTOR_TOKEN`, when set, is sent as a bearer token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    by_status: HashMap<u16, u64>,
    transport_errors: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: browsers BASE_URL RUN_IDS BROWSERS SECONDS [INTERVAL_MS]");
        std::process::exit(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    let runs: Vec<i64> = args[2].split(',').filter_map(|r| r.parse().ok()).collect();
    let browsers: usize = args[3].parse().unwrap_or(1000);
    let seconds: u64 = args[4].parse().unwrap_or(60);
    let interval = Duration::from_millis(args.get(5).and_then(|a| a.parse().ok()).unwrap_or(1000));
    let token = std::env::var("EXECUTOR_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if runs.is_empty() {
        eprintln!("no run ids");
        std::process::exit(2);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_idle_connections(browsers * 2)
        .max_idle_connections_per_host(browsers * 2)
        .build();
    let threads: Vec<_> = (0..browsers)
        .map(|n| {
            let (base, agent, tally, token) = (
                base.clone(),
                agent.clone(),
                Arc::clone(&tally),
                token.clone(),
            );
            let run = runs[n % runs.len()];
            // Browsers open the page at different moments of a second.
            let offset = interval.mul_f64(n as f64 / browsers as f64);
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    browse(
                        &agent,
                        &base,
                        run,
                        token.as_deref(),
                        offset,
                        interval,
                        until,
                        &tally,
                    )
                })
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the browsers: {e}");
            std::process::exit(1);
        });
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    tally.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        let n = tally.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
        tally.latencies_us[rank.min(n) - 1] as f64 / 1000.0
    };
    let statuses: Vec<String> = tally
        .by_status
        .iter()
        .map(|(status, count)| format!("\"{status}\": {count}"))
        .collect();
    println!(
        "{{\"requests\": {}, \"rps\": {:.1}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \
         \"transport_errors\": {}, \"statuses\": {{{}}}}}",
        tally.latencies_us.len(),
        tally.latencies_us.len() as f64 / elapsed,
        pct(50.0),
        pct(99.0),
        pct(100.0),
        tally.transport_errors,
        statuses.join(", ")
    );
}

#[allow(clippy::too_many_arguments)]
fn browse(
    agent: &ureq::Agent,
    base: &str,
    run: i64,
    token: Option<&str>,
    offset: Duration,
    interval: Duration,
    until: Instant,
    tally: &Mutex<Tally>,
) {
    std::thread::sleep(offset);
    let mut etags: HashMap<String, String> = HashMap::new();
    let mut log_offset: i64 = 0;
    let mut mine = Tally::default();
    let mut next = Instant::now();
    while Instant::now() < until {
        for path in [
            "/api/runs?per_page=50".to_string(),
            format!("/api/runs/{run}"),
            format!("/api/runs/{run}/log?offset={log_offset}"),
        ] {
            let mut request = agent.get(&format!("{base}{path}"));
            if let Some(token) = token {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            if let Some(etag) = etags.get(&path) {
                request = request.set("If-None-Match", etag);
            }
            let asked = Instant::now();
            let answer = request.call();
            let took = asked.elapsed().as_micros() as u64;
            match answer {
                Ok(response) | Err(ureq::Error::Status(_, response)) => {
                    mine.latencies_us.push(took);
                    *mine.by_status.entry(response.status()).or_default() += 1;
                    if let Some(etag) = response.header("etag") {
                        etags.insert(path.clone(), etag.to_string());
                    }
                    let status = response.status();
                    let body = response.into_string().unwrap_or_default();
                    if status == 200 && path.contains("/log?") {
                        if let Some(next_offset) = next_offset(&body) {
                            log_offset = next_offset;
                        }
                    }
                }
                Err(_) => mine.transport_errors += 1,
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let mut all = tally.lock().unwrap_or_else(|p| p.into_inner());
    all.latencies_us.extend(mine.latencies_us);
    for (status, count) in mine.by_status {
        *all.by_status.entry(status).or_default() += count;
    }
    all.transport_errors += mine.transport_errors;
}

/// `next_offset` of a log answer.
fn next_offset(body: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(body).ok()?["next_offset"].as_i64()
}
