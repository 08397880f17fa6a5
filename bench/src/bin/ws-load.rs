//! WebSocket load generator, and the raw tokio-tungstenite client figure.
//!
//! Usage:
//!   ws-load rtt <url> <seconds>            one client, sequential round trips; prints round trips/s
//!   ws-load clients <url> <clients> <seconds>  many clients echoing 32-byte messages; prints messages/s
//!   ws-load oneway <url> <messages>        pipelined 1 KiB binary messages to a `sink` server,
//!                                          then a text message; timed until its echo arrives
//!                                          (the server has read them all); prints messages/s

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

async fn rtt(url: String, seconds: f64) -> f64 {
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut count = 0u64;
    while Instant::now() < deadline {
        ws.send(Message::text("ping-payload-32-bytes-long-xxxxx"))
            .await
            .unwrap();
        ws.next().await.unwrap().unwrap();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

async fn clients(url: String, clients: usize, seconds: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap();
            let mut count = 0u64;
            while Instant::now() < deadline {
                ws.send(Message::text("ping-payload-32-bytes-long-xxxxx"))
                    .await
                    .unwrap();
                ws.next().await.unwrap().unwrap();
                count += 1;
            }
            let _ = ws.close(None).await;
            count
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    // The count too, for bench/instructions.py (the rate's time includes the
    // handshakes and closes).
    eprintln!("messages: {total}");
    total as f64 / start.elapsed().as_secs_f64()
}

async fn oneway(url: String, messages: usize) -> f64 {
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let start = Instant::now();
    let payload = vec![b'x'; 1024];
    for _ in 0..messages {
        sink.feed(Message::binary(payload.clone())).await.unwrap();
    }
    sink.send(Message::text("done")).await.unwrap();
    stream.next().await.unwrap().unwrap();
    messages as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mode: String = lunet_bench::arg(1, String::from("rtt"));
    let url: String = lunet_bench::arg(2, String::from("ws://127.0.0.1:8081"));
    let rate = lunet_bench::current_thread().block_on(async move {
        match mode.as_str() {
            "rtt" => rtt(url, lunet_bench::arg(3, 5.0)).await,
            "clients" => clients(url, lunet_bench::arg(3, 50), lunet_bench::arg(4, 5.0)).await,
            "oneway" => oneway(url, lunet_bench::arg(3, 100_000)).await,
            other => panic!("unknown mode {other}"),
        }
    });
    println!("{rate:.1}");
}
