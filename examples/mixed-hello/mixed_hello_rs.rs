// SPDX-License-Identifier: GPL-2.0-or-later

//! The Rust half of mixed-hello: built only for kernels with Rust (Linux 6.12 and 7.2).

use kernel::prelude::*;

module! {
    type: MixedHello,
    name: "mixed_hello_rs",
    description: "Hello world in Rust, beside a C module in one DKMS package",
    license: "GPL",
}

struct MixedHello;

impl kernel::Module for MixedHello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("mixed_hello_rs: hello\n");
        Ok(MixedHello)
    }
}

impl Drop for MixedHello {
    fn drop(&mut self) {
        pr_info!("mixed_hello_rs: goodbye\n");
    }
}
