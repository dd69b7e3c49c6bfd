//! The cost of a pin/unpin pair, on a resident range and on an evicted one (which the pin
//! brings back), for 1 and 16 pages. Prints the median and 99th percentile of each.
//!
//! `cargo run --release -p ghostmem --example pin_cost`
#![allow(
    unsafe_code,
    reason = "the example writes ghost pages through a raw pointer"
)]

use std::time::Instant;

use ghostmem::{Config, GhostMem, page_size};

const BUDGET: usize = 64;
const ROUNDS: usize = 2000;

fn main() -> Result<(), ghostmem::Error> {
    let g = GhostMem::new(Config::builder().max_memory_pages(BUDGET).build()?)?;
    let page = page_size();
    let pages = 4 * BUDGET;
    let p = g.alloc_raw(pages * page)?.as_ptr();
    for i in 0..pages * page / 8 {
        // SAFETY: inside the allocation, 8-byte aligned (the allocation is page-aligned).
        unsafe { p.cast::<u64>().add(i).write(i as u64) };
    }
    println!("backend {}, budget {BUDGET} pages", g.fault_backend());
    for len in [1, 16] {
        // Resident: pin the same range over and over.
        let mut resident = Vec::with_capacity(ROUNDS);
        let _warm = g.pin(p, len * page)?;
        drop(_warm);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            drop(g.pin(p, len * page)?);
            resident.push(t.elapsed().as_nanos());
        }
        // Evicted: walk the region so that the range pinned was pushed out by the last pins.
        let mut evicted = Vec::with_capacity(ROUNDS);
        let before = g.stats().restores;
        for r in 0..ROUNDS {
            let at = (r * len * 3) % (pages - len);
            // SAFETY: `at + len` pages lie inside the allocation.
            let q = unsafe { p.add(at * page) };
            let t = Instant::now();
            drop(g.pin(q, len * page)?);
            evicted.push(t.elapsed().as_nanos());
        }
        let restored = g.stats().restores - before;
        let pct = |v: &mut Vec<u128>, q: usize| {
            v.sort_unstable();
            v[v.len() * q / 100] as f64 / 1000.0
        };
        println!(
            "{len:>2} page(s): resident p50 {:.2} us p99 {:.2} us | evicted p50 {:.2} us p99 {:.2} us ({:.1} pages restored per pin)",
            pct(&mut resident, 50),
            pct(&mut resident, 99),
            pct(&mut evicted, 50),
            pct(&mut evicted, 99),
            restored as f64 / ROUNDS as f64
        );
    }
    // SAFETY: allocated above with this size, not used afterwards.
    unsafe { g.free_raw(p, pages * page) }.expect("freeing the region");
    Ok(())
}
