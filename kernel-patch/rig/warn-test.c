// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module: WARNs when loaded, so that the rig's runner can be shown
 * to fail a run whose guest kernel printed a warning.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init warn_test_init(void)
{
	WARN(1, "kvmstall rig: warning injected on purpose by warn_test.ko\n");
	return 0;
}

static void __exit warn_test_exit(void)
{
}

module_init(warn_test_init);
module_exit(warn_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmstall rig self-test: a WARN on load");
