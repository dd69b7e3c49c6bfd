//! The shared library is installed as `libghostmem.so` (the documented link name is
//! `ghostmem`), so that is its SONAME: programs linked against it record `libghostmem.so`.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libghostmem.so");
    println!("cargo:rerun-if-changed=build.rs");
}
