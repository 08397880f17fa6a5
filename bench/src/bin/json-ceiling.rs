//! The ceiling for the `json` group: serde_json encoding and decoding the documents of
//! `bench/scripts/json_codec.luau` as Rust structs (no dynamic values at all). Prints
//! "<case> <microseconds per op>" lines like the Luau and Node scripts.

use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Item {
    id: u32,
    name: String,
    price: f64,
    tags: Vec<String>,
    active: bool,
}

#[derive(Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
    label: String,
}

#[derive(Serialize, Deserialize)]
struct Nested {
    values: Vec<u32>,
    point: Point,
    flags: Vec<bool>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    id: u32,
    name: String,
    score: f64,
    ratio: f64,
    description: String,
    nested: Nested,
}

fn measure(label: &str, seconds: f64, mut f: impl FnMut()) {
    f();
    let start = Instant::now();
    let mut runs = 0u32;
    let elapsed = loop {
        f();
        runs += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            break elapsed;
        }
    };
    println!("{label} {:.2}", elapsed / f64::from(runs) * 1e6);
}

fn main() {
    let small: Vec<Item> = (1..=50)
        .map(|i| Item {
            id: i,
            name: format!("item {i}"),
            price: f64::from(i) * 1.5,
            tags: vec!["a".into(), "b".into()],
            active: i % 2 == 0,
        })
        .collect();
    let big: Vec<Record> = (1..=5000)
        .map(|i| {
            let f = f64::from(i);
            Record {
                id: i,
                name: format!("record \"{i}\" café ✓"),
                score: f / 7.0,
                ratio: f * 0.001 + 0.5,
                description: "Lorem \"ipsum\" — dolor.".into(),
                nested: Nested {
                    values: vec![i, i + 1, i + 2],
                    point: Point {
                        x: f * 1.25,
                        y: -f / 3.0,
                        label: "p\\q".into(),
                    },
                    flags: vec![true, false],
                },
            }
        })
        .collect();
    let small_text = serde_json::to_string(&small).unwrap();
    let big_text = serde_json::to_string(&big).unwrap();
    println!(
        "# sizes: small {} bytes, big {} bytes",
        small_text.len(),
        big_text.len()
    );
    measure("small-encode", 1.0, || {
        std::hint::black_box(serde_json::to_string(&small).unwrap());
    });
    measure("small-decode", 1.0, || {
        std::hint::black_box(serde_json::from_str::<Vec<Item>>(&small_text).unwrap());
    });
    measure("big-encode", 2.0, || {
        std::hint::black_box(serde_json::to_string(&big).unwrap());
    });
    measure("big-decode", 2.0, || {
        std::hint::black_box(serde_json::from_str::<Vec<Record>>(&big_text).unwrap());
    });
}
