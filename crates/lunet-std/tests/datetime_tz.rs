//! `@lune/datetime` in local time, with `TZ` set to New York time. A test binary of
//! its own, because it sets `TZ` for the whole process; its one test runs the
//! script `tests/luau/datetime_local.luau` once with a zone name from the system's
//! zoneinfo database (when it has one) and once with the equivalent POSIX TZ string,
//! which needs no database.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const TIME_LIMIT: Duration = Duration::from_secs(60);

fn run_local_script(tz: &str) {
    // SAFETY: this binary has this one test, and the variable is set while no other
    // thread of ours runs: before the runtime's thread starts, and after the previous
    // run's thread has finished (its result was received and it ended with it).
    unsafe { std::env::set_var("TZ", tz) };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/luau/datetime_local.luau");
    let (sender, receiver) = mpsc::channel();
    let args = vec![tz.to_string()];
    let runner = std::thread::spawn(move || {
        let code = lunet_runtime::run_script(&path, args, lunet_std::install);
        let _ = sender.send(code);
    });
    match receiver.recv_timeout(TIME_LIMIT) {
        Ok(0) => runner.join().unwrap(),
        Ok(code) => panic!("datetime_local.luau failed with TZ={tz} (exit code {code})"),
        Err(_) => panic!("datetime_local.luau did not finish within {TIME_LIMIT:?}"),
    }
}

#[test]
fn local_time_follows_tz() {
    if Path::new("/usr/share/zoneinfo/America/New_York").exists() {
        run_local_script("America/New_York");
    } else {
        eprintln!("no zoneinfo database: only the POSIX TZ string is tested");
    }
    run_local_script("EST5EDT,M3.2.0,M11.1.0");
}
