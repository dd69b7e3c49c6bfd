//! `GhostMem::global()`: one process-wide instance, budget from `GHOSTMEM_MAX_PAGES`.
//!
//! The budget is read once, when the instance is first created, so the environment-variable
//! cases run in child processes (this binary re-run with `child_global_entry --exact
//! --ignored`).

// Test data deliberately truncates counters into bytes and words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use std::process::Command;

use ghostmem::{DEFAULT_MAX_MEMORY_PAGES, GhostMem, page_size};

const CHILD_VAR: &str = "GHOSTMEM_TEST_GLOBAL_CHILD";

#[test]
fn global_is_one_instance_shared_by_all_threads() {
    let here = GhostMem::global() as *const GhostMem as usize;
    let there = std::thread::spawn(|| GhostMem::global() as *const GhostMem as usize)
        .join()
        .unwrap();
    assert_eq!(here, there, "global() returned two different instances");
    // Memory from one thread is usable and freeable from another.
    let p = common::alloc(GhostMem::global(), 3 * page_size()) as usize;
    std::thread::spawn(move || {
        let p = p as *mut u8;
        // SAFETY: a live allocation of 3 pages from the global instance.
        unsafe {
            common::fill(p, 3 * page_size(), 31);
            common::assert_pattern(p, 3 * page_size(), 31, "global memory on another thread");
            common::free(GhostMem::global(), p, 3 * page_size());
        }
    })
    .join()
    .unwrap();
}

#[test]
fn global_instance_evicts_and_restores() {
    let g = GhostMem::global();
    let pages = 4 * g.config().max_memory_pages();
    let size = pages * page_size();
    let p = common::alloc(g, size);
    // SAFETY: a live allocation of `size` bytes.
    unsafe {
        common::fill(p, size, 32);
        common::assert_pattern(p, size, 32, "global instance data");
    }
    let s = g.stats();
    assert!(s.evictions > 0 && s.restores > 0, "{s:?}");
    common::assert_within_budget(&s, "global instance");
    // SAFETY: live allocation, not used afterwards.
    unsafe { common::free(g, p, size) };
}

fn child_budget(env: Option<&str>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_global_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_VAR, "1");
    match env {
        Some(v) => cmd.env("GHOSTMEM_MAX_PAGES", v),
        None => cmd.env_remove("GHOSTMEM_MAX_PAGES"),
    };
    let out = cmd.output().expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child with GHOSTMEM_MAX_PAGES={env:?} failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .find_map(|l| l.split("GLOBAL-BUDGET ").nth(1))
        .unwrap_or_else(|| panic!("no budget line in the child's output:\n{stdout}\n{stderr}"))
        .trim()
        .to_owned()
}

#[test]
fn global_budget_defaults_to_five_pages() {
    assert_eq!(child_budget(None), DEFAULT_MAX_MEMORY_PAGES.to_string());
}

#[test]
fn global_budget_comes_from_the_environment() {
    assert_eq!(child_budget(Some("7")), "7");
    assert_eq!(child_budget(Some(" 12 ")), "12");
}

#[test]
fn global_budget_ignores_an_unparsable_environment_value() {
    assert_eq!(
        child_budget(Some("lots")),
        DEFAULT_MAX_MEMORY_PAGES.to_string()
    );
}

/// Child side of the environment tests, not a test in its own right: ignored in a normal run,
/// and a failure when run without [`CHILD_VAR`] (`--ignored` by hand).
#[test]
#[ignore = "the child side of the other tests, which run it with --ignored --exact"]
fn child_global_entry() {
    assert!(
        std::env::var_os(CHILD_VAR).is_some(),
        "child_global_entry runs only as a child: {CHILD_VAR} unset"
    );
    let g = GhostMem::global();
    let budget = g.stats().budget_pages;
    assert_eq!(budget, g.config().max_memory_pages() as u64);
    // Use it, so a wrong budget also shows up as a broken instance.
    let size = (budget as usize + 3) * page_size();
    let p = common::alloc(g, size);
    // SAFETY: a live allocation of `size` bytes.
    unsafe {
        common::fill(p, size, 33);
        common::assert_pattern(p, size, 33, "child global instance");
        common::free(g, p, size);
    }
    let s = g.stats();
    assert!(s.evictions >= 3, "{s:?}");
    common::assert_within_budget(&s, "child global instance");
    println!("GLOBAL-BUDGET {budget}");
}
