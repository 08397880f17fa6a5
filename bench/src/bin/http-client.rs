//! The ceiling for `net.request`: a reused reqwest client doing the same requests.
//!
//! Usage: http-client <url> <requests> <concurrency>   prints requests/s

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let url: String = lunet_bench::arg(1, String::from("http://127.0.0.1:8080/"));
    let requests: usize = lunet_bench::arg(2, 2000);
    let concurrency: usize = lunet_bench::arg(3, 1);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rate = lunet_bench::current_thread().block_on(async move {
        let client = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let client = client.clone();
            let url = url.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let response = client.get(&url).send().await.unwrap();
                    response.bytes().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        requests as f64 / start.elapsed().as_secs_f64()
    });
    println!("{rate:.1}");
}
