// SPDX-License-Identifier: GPL-2.0-or-later

//! Minimal Rust kernel module for the trees made by tests/kerneltree.py.
//!
//! It uses only `kernel::prelude::*` and `module!`, in the shape of the
//! kernel's samples/rust/rust_minimal.rs, so that building it needs the
//! tree's `rust/` metadata (core, kernel, macros, pin_init).

use kernel::prelude::*;

module! {
    type: Hello,
    name: "hello",
    authors: ["dkms-rustc"],
    description: "dkms-rustc test module",
    license: "GPL",
}

struct Hello;

impl kernel::Module for Hello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello from Rust\n");
        Ok(Hello)
    }
}
