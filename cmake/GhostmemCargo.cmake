# Build crates/ghostmem-capi with cargo and define the targets `ghostmem` (static library) and
# `ghostmem_shared` (shared library), with the aliases ghostmem::ghostmem and
# ghostmem::ghostmem_shared.
#
# cargo runs on every build (it returns at once when nothing changed) in the workspace's target
# directory, so CMake and `cargo build --release` share one build. It builds the workspace's
# libraries (`--workspace --lib`, which is the engine and this C ABI crate) rather than
# `-p ghostmem-capi` alone: with the whole workspace selected, cargo resolves the same features
# as `cargo build --release --workspace` (the command-line tool's dependencies turn on more
# features of shared proc-macro crates), so the engine built there is reused, not rebuilt. (A
# build that included examples resolved dev-dependency features too: the engine is then
# compiled once more, about 20 s.)
# The artifacts are copied to <build>/lib as libghostmem.a and libghostmem.so (the shared
# library's SONAME is libghostmem.so, set by the crate's build.rs).

find_program(GHOSTMEM_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
if(NOT GHOSTMEM_CARGO)
  message(FATAL_ERROR "GhostMem: cargo not found. Install a Rust toolchain (https://rustup.rs) or set GHOSTMEM_CARGO.")
endif()

# The real path: when this directory is reached through a symlink, cargo still sees the
# workspace where `cargo build` does, and reuses its build.
get_filename_component(_ghostmem_workspace "${PROJECT_SOURCE_DIR}" REALPATH)
if(DEFINED ENV{CARGO_TARGET_DIR})
  set(_ghostmem_default_target_dir "$ENV{CARGO_TARGET_DIR}")
else()
  set(_ghostmem_default_target_dir "${_ghostmem_workspace}/target")
endif()
set(GHOSTMEM_CARGO_TARGET_DIR "${_ghostmem_default_target_dir}" CACHE PATH
    "cargo's target directory (default: the workspace's, shared with cargo build)")

set(_ghostmem_cargo_out "${GHOSTMEM_CARGO_TARGET_DIR}/release")
set(GHOSTMEM_LIBRARY_DIR "${PROJECT_BINARY_DIR}/lib")
set(GHOSTMEM_STATIC_LIBRARY "${GHOSTMEM_LIBRARY_DIR}/libghostmem.a")
set(GHOSTMEM_SHARED_LIBRARY "${GHOSTMEM_LIBRARY_DIR}/libghostmem.so")
set(GHOSTMEM_INCLUDE_DIR "${PROJECT_SOURCE_DIR}/include")
# What a program linking the Rust static library also needs (`rustc --print
# native-static-libs`: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc). libgcc_s is left to the
# compiler driver, which adds it (or libgcc_eh with -static, where -lgcc_s would fail).
set(GHOSTMEM_STATIC_LINK_LIBRARIES pthread dl m rt util)

add_custom_target(ghostmem_cargo_build
  COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${GHOSTMEM_CARGO_TARGET_DIR}"
          "${GHOSTMEM_CARGO}" build --release --workspace --lib
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${GHOSTMEM_LIBRARY_DIR}"
  COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${_ghostmem_cargo_out}/libghostmem_capi.a"
          "${GHOSTMEM_STATIC_LIBRARY}"
  COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${_ghostmem_cargo_out}/libghostmem_capi.so"
          "${GHOSTMEM_SHARED_LIBRARY}"
  BYPRODUCTS "${GHOSTMEM_STATIC_LIBRARY}" "${GHOSTMEM_SHARED_LIBRARY}"
  WORKING_DIRECTORY "${_ghostmem_workspace}"
  COMMENT "cargo build --release --workspace --lib (libghostmem)"
  USES_TERMINAL
  VERBATIM)

add_library(ghostmem STATIC IMPORTED GLOBAL)
set_target_properties(ghostmem PROPERTIES
  IMPORTED_LOCATION "${GHOSTMEM_STATIC_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${GHOSTMEM_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${GHOSTMEM_STATIC_LINK_LIBRARIES}")
add_dependencies(ghostmem ghostmem_cargo_build)

add_library(ghostmem_shared SHARED IMPORTED GLOBAL)
set_target_properties(ghostmem_shared PROPERTIES
  IMPORTED_LOCATION "${GHOSTMEM_SHARED_LIBRARY}"
  IMPORTED_SONAME "libghostmem.so"
  INTERFACE_INCLUDE_DIRECTORIES "${GHOSTMEM_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES pthread)
add_dependencies(ghostmem_shared ghostmem_cargo_build)

add_library(ghostmem::ghostmem ALIAS ghostmem)
add_library(ghostmem::ghostmem_shared ALIAS ghostmem_shared)
