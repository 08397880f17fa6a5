//! The ceiling for reading a streamed body, and the load for streaming servers: a
//! raw hyper client on one thread.
//!
//! Usage:
//!   stream-client read <url>          GET once, read the body frame by frame;
//!                                     prints MiB/s
//!   stream-client read-luau <url>     the same, making each frame a Luau string
//!                                     (what any Luau runtime must do to hand a
//!                                     chunk to a script: Luau hashes and interns
//!                                     every string); the ceiling for `read()`
//!   stream-client ttfb <url> <count>  <count> sequential GETs on one connection;
//!                                     prints the median microseconds from sending
//!                                     the request to the first body byte

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

async fn connect(url: &hyper::Uri) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let address = format!("{}:{}", url.host().unwrap(), url.port_u16().unwrap_or(80));
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

fn request(url: &hyper::Uri) -> Request<Empty<Bytes>> {
    Request::get(url.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", url.authority().unwrap().as_str())
        .body(Empty::new())
        .unwrap()
}

fn main() {
    let mode: String = lunet_bench::arg(1, "read".to_string());
    let url: hyper::Uri = lunet_bench::arg::<String>(2, String::new())
        .parse()
        .unwrap();
    lunet_bench::current_thread().block_on(async move {
        let mut sender = connect(&url).await;
        match mode.as_str() {
            "read" | "read-luau" => {
                let lua = (mode == "read-luau").then(mlua::Lua::new);
                let started = Instant::now();
                let mut body = sender
                    .send_request(request(&url))
                    .await
                    .unwrap()
                    .into_body();
                let mut total = 0usize;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.unwrap().into_data() {
                        total += data.len();
                        if let Some(lua) = &lua {
                            std::hint::black_box(lua.create_string(&data).unwrap());
                        }
                    }
                }
                let seconds = started.elapsed().as_secs_f64();
                println!("{:.1}", total as f64 / (1 << 20) as f64 / seconds);
            }
            "ttfb" => {
                let count: usize = lunet_bench::arg(3, 200);
                let mut times = Vec::with_capacity(count);
                for _ in 0..count {
                    let started = Instant::now();
                    let mut body = sender
                        .send_request(request(&url))
                        .await
                        .unwrap()
                        .into_body();
                    let mut first = None;
                    while let Some(frame) = body.frame().await {
                        if frame.unwrap().data_ref().is_some_and(|d| !d.is_empty())
                            && first.is_none()
                        {
                            first = Some(started.elapsed());
                        }
                    }
                    times.push(first.expect("a body byte").as_secs_f64() * 1e6);
                }
                times.sort_by(f64::total_cmp);
                println!("{:.1}", times[times.len() / 2]);
            }
            other => panic!("unknown mode {other}"),
        }
    });
}
