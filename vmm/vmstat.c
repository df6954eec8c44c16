// SPDX-License-Identifier: MIT
/* The host kernel's own memory activity; see vmstat.h. */
#include "config.h"

#include "vmstat.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/*
 * Migration (compaction, NUMA balancing, mbind), direct compaction and
 * kcompactd, NUMA balancing's hinting protections and its migrations,
 * khugepaged's collapses, huge page splits, and reclaim.
 */
const char *const ks_vmstat_names[KS_VMSTAT_N] = {
	"pgmigrate_success", "compact_stall",	    "compact_daemon_wake",
	"numa_pte_updates",  "numa_pages_migrated", "thp_collapse_alloc",
	"thp_split_pmd",     "pgsteal_kswapd",	    "pgsteal_direct",
	"pswpout",
};

void ks_vmstat_parse(const char *text, uint64_t *v, bool *found)
{
	const char *p = text;
	unsigned int i;

	for (i = 0; i < KS_VMSTAT_N; i++)
		found[i] = false;
	while (p && *p) {
		for (i = 0; i < KS_VMSTAT_N; i++) {
			size_t n = strlen(ks_vmstat_names[i]);
			char *end;

			if (strncmp(p, ks_vmstat_names[i], n) || p[n] != ' ' ||
			    !isdigit((unsigned char)p[n + 1]))
				continue;
			errno = 0;
			v[i] = strtoull(p + n + 1, &end, 10);
			found[i] = !errno && end != p + n + 1 && (*end == '\n' || !*end);
			break;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

void ks_vmstat_read(uint64_t *v, bool *found)
{
	char *s = read_file("/proc/vmstat");
	unsigned int i;

	for (i = 0; i < KS_VMSTAT_N; i++)
		found[i] = false;
	if (s)
		ks_vmstat_parse(s, v, found);
	free(s);
}
