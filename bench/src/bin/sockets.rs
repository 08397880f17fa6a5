//! Raw tokio ceilings and the load generator for the `sockets` benchmark group:
//! many short TCP connections (accept, echo a few bytes, close) and UDP echo round
//! trips.
//!
//! Usage:
//!   sockets tcp-server <port>                 echoes each connection until it closes
//!   sockets udp-server <port>                 echoes each datagram to its sender
//!   sockets tcp-load <port> <seconds> <conc>  `conc` workers each loop: connect, write
//!                                             32 bytes, read them back, close; prints
//!                                             connections per second
//!   sockets udp-load <port> <seconds> <conc>  `conc` sockets each send 64 bytes and
//!                                             wait for the echo, in a loop; prints
//!                                             round trips per second

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let mode: String = lunet_bench::arg(1, String::from("tcp-server"));
    let port: u16 = lunet_bench::arg(2, 9100);
    let seconds: f64 = lunet_bench::arg(3, 5.0);
    let concurrency: usize = lunet_bench::arg(4, 32);
    let runtime = lunet_bench::current_thread();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        match mode.as_str() {
            "tcp-server" => tcp_server(port).await,
            "udp-server" => udp_server(port).await,
            "tcp-load" => load(seconds, concurrency, move |done| tcp_client(port, done)).await,
            "udp-load" => load(seconds, concurrency, move |done| udp_client(port, done)).await,
            other => panic!("unknown mode {other}"),
        }
    });
}

async fn tcp_server(port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn udp_server(port: u16) {
    let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if let Ok((n, from)) = socket.recv_from(&mut buffer).await {
            let _ = socket.send_to(&buffer[..n], from).await;
        }
    }
}

/// Runs `concurrency` workers for `seconds` and prints how many operations they
/// completed per second.
async fn load<F, Fut>(seconds: f64, concurrency: usize, worker: F)
where
    F: Fn(Rc<Cell<u64>>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let done = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::task::spawn_local(worker(done.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let count = done.get();
    let elapsed = start.elapsed().as_secs_f64();
    for task in tasks {
        task.abort();
    }
    println!("{:.1}", count as f64 / elapsed);
}

async fn tcp_client(port: u16, done: Rc<Cell<u64>>) {
    let message = [b'x'; 32];
    let mut echo = [0u8; 32];
    loop {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        if stream.write_all(&message).await.is_ok() && stream.read_exact(&mut echo).await.is_ok() {
            done.set(done.get() + 1);
        }
        // Closed by the client, so TIME_WAIT piles up here, not on the server.
        drop(stream);
    }
}

async fn udp_client(port: u16, done: Rc<Cell<u64>>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(("127.0.0.1", port)).await.unwrap();
    let message = [b'x'; 64];
    let mut echo = [0u8; 2048];
    loop {
        if socket.send(&message).await.is_err() {
            continue;
        }
        // A lost datagram (a full buffer) is given up on after 100 ms.
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut echo)).await
        {
            done.set(done.get() + 1);
        }
    }
}
