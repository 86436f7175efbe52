//! `ferry-delay`: relays TCP ports from one loopback address to another with an added delay each
//! way (see the library's documentation for what is emulated and what is not).
//!
//! ```text
//! ferry-delay --delay-ms 25 --listen 127.0.0.2 --upstream 127.0.0.1 --ports 2121,2222,42000-42099
//! ```
//!
//! Every port P in `--ports` is accepted on `LISTEN:P` and relayed to `UPSTREAM:P`, so an FTP
//! server's control port, its passive port range and an SFTP port all go through the same path (the
//! server advertises LISTEN as its passive address). Prints one `ready` line on standard output once
//! every port is bound, then runs until killed.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use ferry_delay::{serve, Link};
use tokio::net::TcpListener;

const USAGE: &str =
    "usage: ferry-delay --delay-ms MS [--window-kib KIB] --listen ADDR --upstream ADDR --ports P[,LOW-HIGH…]";
/// Most ports relayed at once (each is one listening socket).
const MAX_PORTS: usize = 4096;

#[derive(Debug)]
struct Args {
    delay: Duration,
    window: usize,
    listen: IpAddr,
    upstream: IpAddr,
    ports: Vec<u16>,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferry-delay: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry-delay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-delay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let link = Link::new(args.delay, args.window);
    let mut tasks = tokio::task::JoinSet::new();
    for &port in &args.ports {
        let at = SocketAddr::new(args.listen, port);
        let listener = TcpListener::bind(at)
            .await
            .map_err(|e| format!("cannot listen on {at}: {e}"))?;
        let upstream = SocketAddr::new(args.upstream, port);
        tasks.spawn(async move {
            serve(listener, upstream, link)
                .await
                .map_err(|e| format!("accepting on {at}: {e}"))
        });
    }
    println!(
        "ferry-delay: ready: {} ports, {} ms each way, window {} KiB",
        args.ports.len(),
        args.delay.as_millis(),
        args.window / 1024
    );
    let _ = std::io::stdout().flush();
    match tasks.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(()),
    }
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut delay, mut window, mut listen, mut upstream, mut ports) =
        (None, 4096 * 1024, None, None, Vec::new());
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--delay-ms" => delay = Some(Duration::from_millis(number(&value()?, "--delay-ms")?)),
            "--window-kib" => {
                let kib = number(&value()?, "--window-kib")?;
                if !(1..=1 << 20).contains(&kib) {
                    return Err("--window-kib must be 1 to 1048576".into());
                }
                window = usize::try_from(kib * 1024).map_err(|_| "--window-kib is too large")?;
            }
            "--listen" => listen = Some(address(&value()?, "--listen")?),
            "--upstream" => upstream = Some(address(&value()?, "--upstream")?),
            "--ports" => ports = port_list(&value()?)?,
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let (Some(delay), Some(listen), Some(upstream)) = (delay, listen, upstream) else {
        return Err("--delay-ms, --listen and --upstream are required".into());
    };
    if ports.is_empty() {
        return Err("--ports is required".into());
    }
    if listen == upstream {
        return Err("--listen and --upstream must differ (the same ports are bound on LISTEN)".into());
    }
    Ok(Args {
        delay,
        window,
        listen,
        upstream,
        ports,
    })
}

fn number(s: &str, flag: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{flag}: {s:?} is not a whole number"))
}

fn address(s: &str, flag: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("{flag}: {s:?} is not an IP address"))
}

/// `2121,2222,42000-42099` → every port listed, each once.
fn port_list(s: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for part in s.split(',') {
        let bad = || format!("--ports: {part:?} is not a port or LOW-HIGH range of ports 1-65535");
        let (low, high) = match part.split_once('-') {
            Some((l, h)) => (
                l.parse::<u16>().map_err(|_| bad())?,
                h.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = part.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if low == 0 || high < low {
            return Err(bad());
        }
        ports.extend(low..=high);
        if ports.len() > MAX_PORTS {
            return Err(format!("--ports: more than {MAX_PORTS} ports"));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn ports_and_ranges_are_expanded_once() {
        assert_eq!(port_list("21,30-32,31"), Ok(vec![21, 30, 31, 32]));
        assert!(port_list("0").is_err());
        assert!(port_list("40-30").is_err());
        assert!(port_list("1-65535").is_err(), "bounded");
    }

    #[test]
    fn arguments_are_checked() {
        let a = args("--delay-ms 25 --listen 127.0.0.2 --upstream 127.0.0.1 --ports 21").expect("valid");
        assert_eq!(a.delay, Duration::from_millis(25));
        assert_eq!(a.window, 4 << 20);
        assert!(args("--delay-ms 25 --listen 127.0.0.1 --upstream 127.0.0.1 --ports 21").is_err());
        assert!(args("--delay-ms x --listen 127.0.0.2 --upstream 127.0.0.1 --ports 21").is_err());
        assert!(args("--listen 127.0.0.2 --upstream 127.0.0.1 --ports 21").is_err());
        assert!(
            args("--delay-ms 1 --window-kib 0 --listen 127.0.0.2 --upstream 127.0.0.1 --ports 21").is_err()
        );
    }
}
