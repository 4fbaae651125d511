// SPDX-License-Identifier: GPL-2.0-or-later

//! Hello world as an out-of-tree Rust kernel module (kernels whose `module!`
//! takes `author: "x"`, e.g. Linux 6.12; newer ones take `authors: [..]`).

use kernel::prelude::*;

module! {
    type: RustHello,
    name: "rust_hello",
    author: "dkms-rustc developers",
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
