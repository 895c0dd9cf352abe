//! Issue 12, part 1: clients that hold connections without using them, and
//! a shutdown that lets requests in flight finish.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tenantry::http_server::ConnectionLimits;

use crate::harness::{TestApp, TestDb};

/// The app on a fresh database, with the default limits as `set` changes them.
async fn app_with(set: impl FnOnce(&mut ConnectionLimits)) -> TestApp {
    let mut limits = ConnectionLimits::default();
    set(&mut limits);
    let db = TestDb::new().await;
    TestApp::builder(db).limits(limits).start().await
}

/// True once the server has closed `stream` (a read sees EOF or a reset).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Reads until the server has sent a whole status line, or `within` passes.
fn status_line(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(str::to_owned)
}

/// Headers trickling in one byte a second: today's server (no header
/// timeout) kept such a connection open for as long as the client liked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_slowly_are_cut_off() {
    let app = app_with(|limits| limits.header_read_timeout = Duration::from_secs(2)).await;
    let addr = app.addr;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if closed_by_server(&mut stream) || stream.write_all(b"a").is_err() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        None
    })
    .await
    .unwrap();
    let after = outcome.expect("a slow client still holds its connection after 10 s");
    assert!(
        after < Duration::from_secs(6),
        "cut off only after {after:?}"
    );
}

/// A keep-alive connection that goes quiet after its request is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let app = app_with(|limits| limits.idle_timeout = Duration::from_secs(1)).await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let status = status_line(&mut stream, Duration::from_secs(5));
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
        let start = Instant::now();
        while !closed_by_server(&mut stream) {
            assert!(
                start.elapsed() < Duration::from_secs(6),
                "an idle keep-alive connection stayed open"
            );
        }
    })
    .await
    .unwrap();
}

/// Past the bound, a new connection waits until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_bounded() {
    let app = app_with(|limits| limits.max_connections = 2).await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let first = TcpStream::connect(addr).unwrap();
        let _second = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(
            status_line(&mut third, Duration::from_millis(700)),
            None,
            "a third connection was served while two were open"
        );
        drop(first);
        assert_eq!(
            status_line(&mut third, Duration::from_secs(5)).as_deref(),
            Some("HTTP/1.1 200 OK"),
            "the waiting connection is served once a slot frees"
        );
    })
    .await
    .unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGTERM: the server stops accepting, the request in flight (its body
/// still arriving) gets its answer, an idle connection does not hold the
/// shutdown up, and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_then_exits() {
    let db = TestDb::new().await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TENANTRY_BIND", &bind)
        .env("TENANTRY_SHUTDOWN_GRACE_SECS", "10")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tenantry serve");
    let addr: SocketAddr = bind.parse().unwrap();
    let pid = server.id();

    let outcome = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut ready = false;
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(mut s) = TcpStream::connect(addr) {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .unwrap();
                if status_line(&mut s, Duration::from_secs(2)).is_some() {
                    ready = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ready, "the server never answered");

        let _idle = TcpStream::connect(addr).unwrap();
        let body = "email=a%40b.test&password=xxxxxxxxxx";
        let mut in_flight = TcpStream::connect(addr).unwrap();
        write!(
            in_flight,
            "POST /login HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{}",
            body.len(),
            &body[..5]
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: sends a signal to the child we started.
        unsafe {
            libc::kill(i32::try_from(pid).unwrap(), libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(500));
        let refused = TcpStream::connect(addr).is_err();
        in_flight.write_all(&body.as_bytes()[5..]).unwrap();
        let status = status_line(&mut in_flight, Duration::from_secs(5));
        (refused, status)
    })
    .await
    .unwrap();

    let start = Instant::now();
    let exit = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(8) {
            let _ = server.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (refused, status) = outcome;
    assert!(refused, "new connections are refused once shutting down");
    let status = status.expect("the request in flight got no answer");
    assert!(status.starts_with("HTTP/1.1 "), "{status}");
    let exit = exit.expect("the server did not exit after the requests finished");
    assert!(exit.success(), "exit status {exit}");
}
