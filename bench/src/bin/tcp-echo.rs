//! TCP echo server and the raw tokio client figure for TCP throughput.
//!
//! Usage:
//!   tcp-echo server <port>
//!   tcp-echo client <port> <megabytes>   writes 64 KiB chunks and reads the echo; prints MB/s

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let mode: String = lunet_bench::arg(1, String::from("server"));
    let port: u16 = lunet_bench::arg(2, 8082);
    lunet_bench::current_thread().block_on(async move {
        if mode == "server" {
            lunet_bench::accept_loop(port, |stream| async move {
                // A large copy buffer, so the server is not what limits a client.
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::with_capacity(256 * 1024, r);
                let _ = tokio::io::copy_buf(&mut r, &mut w).await;
            })
            .await;
        }
        let megabytes: usize = lunet_bench::arg(3, 256);
        let total = megabytes * 1024 * 1024;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let _ = stream.set_nodelay(true);
        let (mut r, mut w) = stream.into_split();
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                w.write_all(&chunk).await.unwrap();
                sent += chunk.len();
            }
            w
        });
        let mut buffer = vec![0u8; 64 * 1024];
        let mut received = 0;
        while received < total {
            let n = r.read(&mut buffer).await.unwrap();
            assert!(n > 0, "echo server closed early");
            received += n;
        }
        drop(writer.await.unwrap());
        println!("{:.1}", megabytes as f64 / start.elapsed().as_secs_f64());
    });
}
