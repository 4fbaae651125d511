// SPDX-License-Identifier: GPL-2.0-or-later

//! Hello world as an out-of-tree Rust kernel module.
//!
//! One source for Linux 6.12 and 7.2: their `module!` macros differ only in the author
//! key (6.12 takes `author: "x"`, 7.2 `authors: ["x"]`), so this module names none.

use kernel::prelude::*;

module! {
    type: RustHello,
    name: "rust_hello",
    description: "Hello world in Rust, built out of tree by DKMS with dkms-rustc",
    license: "GPL",
}

struct RustHello;

impl kernel::Module for RustHello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("rust_hello: hello\n");
        Ok(RustHello)
    }
}

impl Drop for RustHello {
    fn drop(&mut self) {
        pr_info!("rust_hello: goodbye\n");
    }
}
