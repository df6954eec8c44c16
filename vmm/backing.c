// SPDX-License-Identifier: MIT
/* Memory backings: names, page sizes and help text. */
#include "config.h"

#include <string.h>

#include "kvmstall.h"
#include "util.h"

static const struct ks_backing_info backings[KS_BACKING_NR] = {
	[KS_BACKING_ANON] = { "anon", 4 * KiB, false, false,
			      "anonymous memory, 4 KiB pages (THP off for it)" },
	[KS_BACKING_THP] = { "thp", 2 * MiB, false, false,
			     "anonymous memory with transparent huge pages (madvise)" },
	[KS_BACKING_HUGETLB_2M] = { "hugetlb-2M", 2 * MiB, true, false,
				    "private HugeTLB mapping, 2 MiB pages" },
	[KS_BACKING_HUGETLB_1G] = { "hugetlb-1G", 1 * GiB, true, false,
				    "private HugeTLB mapping, 1 GiB pages" },
	[KS_BACKING_MEMFD_HUGETLB_2M] = { "memfd-hugetlb-2M", 2 * MiB, true, true,
					  "shared memfd_create(MFD_HUGETLB), 2 MiB pages" },
};

const struct ks_backing_info *ks_backing_info(enum ks_backing b)
{
	return &backings[b];
}

bool ks_backing_parse(const char *s, enum ks_backing *out)
{
	unsigned int i;

	for (i = 0; i < KS_BACKING_NR; i++) {
		if (!strcmp(s, backings[i].name)) {
			*out = (enum ks_backing)i;
			return true;
		}
	}
	return false;
}
