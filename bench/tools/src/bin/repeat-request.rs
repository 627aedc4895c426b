//! Send one raw HTTP/1.1 request N times, one after another, over one
//! keep-alive connection, and check every answer is `200`: a fixed,
//! countable amount of work for instruction-count profiling (bench/profile).
//!
//! `repeat-request PORT REQUEST_FILE N`; REQUEST_FILE must not say
//! `Connection: close`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: repeat-request PORT REQUEST_FILE N");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT is a number");
    let request = std::fs::read(&args[2]).expect("REQUEST_FILE is readable");
    let n: usize = args[3].parse().expect("N is a number");
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");
    let mut writer = stream.try_clone().expect("a second handle");
    let mut reader = BufReader::new(stream);
    for i in 0..n {
        writer.write_all(&request).expect("the request is sent");
        let mut status = String::new();
        reader.read_line(&mut status).expect("a status line");
        assert!(status.starts_with("HTTP/1.1 200"), "answer {i}: {status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a header line");
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("a numeric content-length");
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("the whole body");
    }
    println!("{n} answers, all 200");
}
