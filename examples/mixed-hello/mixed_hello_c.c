// SPDX-License-Identifier: GPL-2.0-or-later
/* The C half of mixed-hello: built for every kernel. */

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init mixed_hello_c_init(void)
{
	pr_info("mixed_hello_c: hello\n");
	return 0;
}

static void __exit mixed_hello_c_exit(void)
{
	pr_info("mixed_hello_c: goodbye\n");
}

module_init(mixed_hello_c_init);
module_exit(mixed_hello_c_exit);

MODULE_DESCRIPTION("Hello world in C, beside a Rust module in one DKMS package");
MODULE_LICENSE("GPL");
