//! Start-up time as a client sees it: spawn a server, then send one fixed
//! request every millisecond until it answers `200`, and print the time
//! from spawn to that answer. Repeats, stopping the server (its whole
//! process group) between runs.
//!
//! `first-answer PORT REQUEST_FILE REPEAT -- COMMAND [ARGS…]` prints one
//! line per run (`run N: X.X ms`) and a last line `median X.X ms min X.X max X.X`.
//! REQUEST_FILE holds the raw HTTP/1.1 request (e.g. a signed webhook).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a server may take to answer before the run is a failure.
const GIVE_UP: Duration = Duration::from_secs(60);

fn answers_200(addr: &SocketAddr, request: &[u8]) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn port_free(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(50)).is_err()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    if split < 4 || split + 1 >= args.len() {
        eprintln!("usage: first-answer PORT REQUEST_FILE REPEAT -- COMMAND [ARGS…]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT is a number");
    let request = std::fs::read(&args[2]).expect("REQUEST_FILE is readable");
    let repeat: usize = args[3].parse().expect("REPEAT is a number");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut times = Vec::new();
    for run in 1..=repeat {
        let until = Instant::now() + Duration::from_secs(10);
        while !port_free(&addr) {
            assert!(Instant::now() < until, "port {port} is still in use");
            std::thread::sleep(Duration::from_millis(20));
        }
        let started = Instant::now();
        let mut child = Command::new(&args[split + 1])
            .args(&args[split + 2..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so a server that forks is stopped whole.
            .process_group(0)
            .spawn()
            .expect("the server starts");
        let answered = loop {
            if answers_200(&addr, &request) {
                break Some(started.elapsed());
            }
            if started.elapsed() > GIVE_UP || child.try_wait().ok().flatten().is_some() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
        match answered {
            Some(elapsed) => {
                println!("run {run}: {:.1} ms", elapsed.as_secs_f64() * 1e3);
                times.push(elapsed.as_secs_f64() * 1e3);
            }
            None => {
                eprintln!("run {run}: no 200 answer");
                std::process::exit(1);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median {:.1} ms min {:.1} max {:.1}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
