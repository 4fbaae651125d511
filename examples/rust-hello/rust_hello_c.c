// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The C-only variant of rust_hello, built with `make RUST_HELLO_C_ONLY=y` (see Kbuild):
 * what dkms-rustc's `fallback` policy builds when no installed rustc matches the kernel.
 */

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init rust_hello_init(void)
{
	pr_info("rust_hello: hello (C-only build)\n");
	return 0;
}

static void __exit rust_hello_exit(void)
{
	pr_info("rust_hello: goodbye (C-only build)\n");
}

module_init(rust_hello_init);
module_exit(rust_hello_exit);

MODULE_DESCRIPTION("Hello world, the C-only variant of rust_hello (dkms-rustc fallback)");
MODULE_LICENSE("GPL");
