//! Unit tests that must be the only thread of their process: whether dropping a store gives
//! its mappings back shows only in the process's size, which the other tests of the binary
//! change all the time. Such a test is an `#[ignore]`d child entry, run by a parent test with
//! [`run`]: the test binary again, with that one test and one test thread.

use std::process::Command;

/// Set in the child's environment, so that a child entry run by hand (`--ignored`) refuses.
const CHILD_VAR: &str = "GHOSTMEM_TEST_ALONE";

/// Run the ignored unit test `name` (its full path, e.g. `store::table::tests::x`) alone in a
/// child process; fail if it fails or did not run.
pub(crate) fn run(name: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_VAR, "1")
        .output()
        .expect("running the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "{name}: {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {report}"
    );
}

/// Called first by a child entry: panics unless [`run`] started this process.
pub(crate) fn check_child() {
    assert!(
        std::env::var_os(CHILD_VAR).is_some(),
        "a child entry, run only by its parent test ({CHILD_VAR} unset)"
    );
}

/// The process's address space (`VmSize`), in bytes.
pub(crate) fn vm_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("a VmSize line in /proc/self/status");
    kib * 1024
}
