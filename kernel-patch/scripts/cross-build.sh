#!/bin/sh
# SPDX-License-Identifier: MIT
# Compile-check the patch series in kernel-patch/series:
#  bisect: after every prefix of the series, x86's KVM (kvm, kvm-intel,
#          kvm-amd as modules) still builds, without new warnings;
#  cross:  with the whole series, the KVM code of arm64, MIPS and PowerPC
#          builds with Debian's cross compilers, without new warnings.
# "New" is measured against the stock base built with the same config.
# Nothing is linked into a kernel: only the arch's KVM directory, the files
# the series touches outside it, and a check that the KVM objects do not
# gain references to KVM symbols that nothing defines or exports.
#
# All of it happens in $CACHE/cross, in a tree and build directories of its
# own (build-kernel.sh's tree is someone else's working tree).  Build
# directories are kept, so reruns recompile only what changed, and a
# prefix or config found clean is not checked again for the same patches.
set -eu
. "$(dirname "$0")/common.sh"
# The same compiler messages (quotes) and sort order whatever the locale;
# kbuild unexports LC_ALL, hence the others.
LC_ALL=C LANG=C LC_CTYPE=C LC_MESSAGES=C
export LC_ALL LANG LC_CTYPE LC_MESSAGES

all_configs="x86 arm64 mips mips64 ppc64 e500 e500mc ppc32"
usage() {
	cat << EOF
usage: ${0##*/} [-h] [--bisect-only | --cross-only] [--every-prefix] [--force] [CONFIG...]

Checks kernel-patch/series against the base tree, in $CACHE/cross:
  bisect  x86 KVM builds after each prefix of the series (config x86)
  cross   the whole series builds on the other configs
New compiler warnings (against the stock base), build errors and KVM
objects referring to KVM symbols nothing defines or exports all fail.
CONFIG picks configs (default: all of them):
  x86     x86_64_defconfig + configs/{common,release}.config (KVM*=m)
  arm64   arm64 defconfig, KVM=y
  mips    malta_kvm_defconfig: 32-bit, trap & emulate, KVM=m
  mips64  loongson3_defconfig: 64-bit, VZ, KVM=m
  ppc64   powernv_defconfig (ppc64le), Book3S HV=m and PR=m
  e500    mpc85xx_defconfig (32-bit), KVM_E500V2=y
  e500mc  corenet32_smp_defconfig (32-bit), KVM_E500MC=y
  ppc32   pmac32_defconfig, Book3S 32 PR: KVM_BOOK3S_32=m
  --bisect-only  only the x86 bisect check
  --cross-only   only the cross configs
  --every-prefix the bisect check on the cross configs too: every prefix
                 of the series builds on every config (slow: about a
                 minute per prefix and config on 2 cores)
  --force        recheck what an earlier run found clean
Delete $CACHE/cross to start from scratch.
EOF
}

# config_of NAME: how to configure and build NAME.  frag lists the options
# merged onto the defconfig (each must survive olddefconfig).
config_of() {
	fragfiles=
	case $1 in
	x86)
		arch=x86 xc='' defconfig=x86_64_defconfig frag=''
		# What the rig's release kernel uses, so the warnings are the same.
		fragfiles="$KP_DIR/configs/common.config $KP_DIR/configs/release.config"
		;;
	arm64)
		arch=arm64 xc=aarch64-linux-gnu- defconfig=defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM=y CONFIG_TRANSPARENT_HUGEPAGE=y"
		;;
	mips)
		arch=mips xc=mips64el-linux-gnuabi64- defconfig=malta_kvm_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM=m CONFIG_KVM_MIPS_TE=y"
		;;
	mips64)
		arch=mips xc=mips64el-linux-gnuabi64- defconfig=loongson3_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM=m CONFIG_KVM_MIPS_VZ=y"
		;;
	ppc64)
		arch=powerpc xc=powerpc64le-linux-gnu- defconfig=powernv_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM_BOOK3S_64=m CONFIG_KVM_BOOK3S_64_HV=m CONFIG_KVM_BOOK3S_64_PR=m"
		;;
	e500)
		arch=powerpc xc=powerpc-linux-gnu- defconfig=mpc85xx_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM_E500V2=y"
		;;
	e500mc)
		arch=powerpc xc=powerpc-linux-gnu- defconfig=corenet32_smp_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM_E500MC=y"
		;;
	ppc32)
		arch=powerpc xc=powerpc-linux-gnu- defconfig=pmac32_defconfig
		frag="CONFIG_VIRTUALIZATION=y CONFIG_KVM_BOOK3S_32=m"
		;;
	*) return 1 ;;
	esac
}

# Command line
bisect=1 crossck=1 force=0 every=0 picked=
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--bisect-only) crossck=0 ;;
	--cross-only) bisect=0 ;;
	--force) force=1 ;;
	--every-prefix) every=1 ;;
	-*) die "unknown option '$1' (see ${0##*/} -h)" ;;
	*)
		config_of "$1" || die "unknown config '$1': choose from $all_configs"
		case " $picked " in
		*" $1 "*) ;;
		*) picked="$picked $1" ;;
		esac
		;;
	esac
	shift
done
[ $bisect = 1 ] || [ $crossck = 1 ] || die "--bisect-only and --cross-only exclude each other"
configs=
for c in ${picked:-$all_configs}; do
	if [ "$c" = x86 ]; then
		[ $bisect = 1 ] || [ -z "$picked" ] || die "x86 is the bisect check, which --cross-only leaves out"
		[ $bisect = 0 ] || configs="$configs $c"
	else
		[ $crossck = 1 ] || [ -z "$picked" ] || die "$c is a cross config, which --bisect-only leaves out"
		[ $crossck = 0 ] || configs="$configs $c"
	fi
done
# A check runs only when one of its configs is picked.
bisect_configs=x86
[ $every = 0 ] || bisect_configs=$configs
case " $configs " in *" x86 "*) ;; *) [ $every = 1 ] || bisect=0 ;; esac
[ "$configs" != " x86" ] || crossck=0
case $CACHE in *[[:space:]]*) die "KVMSTALL_CACHE ($CACHE) must not contain white space" ;; esac

# Tools
apt_hint="apt-get install build-essential flex bison bc libelf-dev libssl-dev patch util-linux gcc-aarch64-linux-gnu gcc-mips64el-linux-gnuabi64 gcc-powerpc64le-linux-gnu gcc-powerpc-linux-gnu"
for tool in make gcc nm flex bison bc perl patch cmp flock sha256sum; do
	command -v $tool > /dev/null || die "cross-build.sh needs $tool: $apt_hint"
done
for c in $configs; do
	config_of "$c"
	for tool in "${xc}gcc" "${xc}nm"; do
		command -v "$tool" > /dev/null || die "config $c needs $tool: $apt_hint"
	done
done

# The series: names of files in kernel-patch/, which must exist.
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/series" | while read -r p; do
	case $p in
	*/* | .*) die "series: '$p' is not a file name in kernel-patch/" ;;
	esac
	[ -f "$KP_DIR/$p" ] || die "series lists $p, which does not exist"
done

"$KP_DIR/scripts/fetch-base.sh" > /dev/null
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
cross="$CACHE/cross"
tree="$cross/tree"
mkdir -p "$cross/bin"
exec 9> "$cross/lock"
flock -n 9 || die "another cross-build.sh is using $cross (lock $cross/lock)"
# The series as "SHA NAME" lines: a patch's identity is its contents.
series="$cross/series.now"
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/series" | while read -r p; do
	echo "$(hash_of "$KP_DIR/$p") $p"
done > "$series"
npatch=$(wc -l < "$series")
: > "$cross/notes.seen"
self=$(hash_of "$0")
jobs=$(nproc)
t_start=$(date +%s)

# The compiler wrapper keeps each object's diagnostics next to it
# (OBJ.warn).  Warnings are then read from every object in the build
# directory, also those an incremental build did not recompile.
wrap="$cross/bin/kvmstall-cc"
cat > "$wrap.new" << 'EOF'
#!/bin/sh
# Written by kernel-patch/scripts/cross-build.sh: runs the compiler and, for
# an object, keeps its diagnostics in OBJECT.warn as well.
o=
prev=
for a; do
	[ "$prev" != -o ] || o=$a
	prev=$a
done
case $o in
*.o) ;;
*) exec "$@" ;;
esac
# A failed compile must not leave an old object behind.
rm -f "$o"
rc=0
"$@" 2> "$o.warn" || rc=$?
cat "$o.warn" >&2
exit $rc
EOF
chmod +x "$wrap.new"
if cmp -s "$wrap.new" "$wrap"; then rm "$wrap.new"; else mv "$wrap.new" "$wrap"; fi

# The working tree.  tree.applied lists the patches in it ("SHA NAME"),
# tree.touched every path a patch has been allowed to change, and
# tree.dirty marks an update in progress (then the tree is reset).
# Files are restored by copying, which gives them a new mtime, so the
# build directories recompile whatever they compiled from other contents.
if [ "$(cat "$tree/.kvmstall-cross-tree" 2> /dev/null)" != "$SRC" ]; then
	log "copying $SRC to $tree"
	t0=$(date +%s)
	# Objects in old build directories may be newer than the fresh copy.
	rm -rf "$tree" "$cross/build" "$cross/tree.applied" "$cross/tree.touched" "$cross/tree.dirty"
	cp -a "$SRC" "$tree"
	echo "$SRC" > "$tree/.kvmstall-cross-tree"
	log "copied in $(($(date +%s) - t0)) s"
fi
touch "$cross/tree.applied"

patch_files() { # the paths a patch touches
	sed -n -e 's#^--- a/##p' -e 's#^+++ b/##p' -e 's#^rename from ##p' \
		-e 's#^rename to ##p' -e 's#^copy to ##p' "$1" | sed 's/\t.*//' | sort -u
}

tree_reset() {
	touch "$cross/tree.dirty"
	: > "$cross/tree.applied"
	if [ -f "$cross/tree.touched" ]; then
		sort -u "$cross/tree.touched" | while read -r f; do
			[ -n "$f" ] || continue
			if [ -f "$SRC/$f" ]; then
				if ! cmp -s "$SRC/$f" "$tree/$f"; then
					rm -f "$tree/$f"
					mkdir -p "$(dirname "$tree/$f")"
					cp "$SRC/$f" "$tree/$f"
				fi
			else
				rm -f "$tree/$f"
			fi
		done
	fi
	rm -f "$cross/tree.touched" "$cross/tree.dirty"
}

# tree_to K: the base plus the first K patches.  Sets bad_patch to the
# name of a patch that does not apply (the tree then holds those before it).
tree_to() {
	bad_patch=
	[ ! -e "$cross/tree.dirty" ] || tree_reset
	head -n "$1" "$series" > "$cross/want"
	tp_have=$(wc -l < "$cross/tree.applied")
	if [ "$tp_have" -gt "$1" ] || ! head -n "$tp_have" "$cross/want" | cmp -s - "$cross/tree.applied"; then
		tree_reset
		tp_have=0
	fi
	tail -n +$((tp_have + 1)) "$cross/want" > "$cross/todo"
	while read -r tp_sha tp_p; do
		tp_files=$(patch_files "$KP_DIR/$tp_p")
		for tp_f in $tp_files; do
			# Restoring and deleting paths must stay inside the tree.
			case /$tp_f/ in
			*/../* | //*) die "$tp_p names the path '$tp_f': refusing it" ;;
			esac
		done
		touch "$cross/tree.dirty"
		# shellcheck disable=SC2086 # one path a line
		printf '%s\n' $tp_files >> "$cross/tree.touched"
		if ! patch -d "$tree" -p1 -f --dry-run < "$KP_DIR/$tp_p" > "$cross/patch.log" 2>&1; then
			rm -f "$cross/tree.dirty"
			bad_patch=$tp_p
			log "$tp_p does not apply on top of the base and the $(wc -l < "$cross/tree.applied") patches before it:"
			grep -v '^checking file' "$cross/patch.log" | head -n 8 | sed 's/^/  /' >&2
			return 0
		fi
		patch -d "$tree" -p1 -f --no-backup-if-mismatch < "$KP_DIR/$tp_p" > "$cross/patch.log" 2>&1 ||
			die "$tp_p applied in a dry run but not for real; see $cross/patch.log"
		if grep -q 'with fuzz' "$cross/patch.log"; then
			log "note: $tp_p applies only with fuzz: $(grep 'with fuzz' "$cross/patch.log" | head -n 3 | tr '\n' ' ')"
		fi
		echo "$tp_sha $tp_p" >> "$cross/tree.applied"
		rm -f "$cross/tree.dirty"
	done < "$cross/todo"
}

# select_config NAME: the variables of one config and its build directory.
select_config() {
	name=$1
	config_of "$name"
	out="$cross/build/$name"
	ccv=$("${xc}gcc" --version | head -n 1)
	# Change any of these and the build directory starts over.
	key=$( {
		echo "layout 1 $name $arch $xc $defconfig $frag $BASE_DEB_VERSION $ccv"
		# shellcheck disable=SC2086 # a list of files
		[ -z "$fragfiles" ] || cat $fragfiles
	} | sha256sum | cut -c1-16)
	targets="arch/$arch/kvm/"
	if [ -f "$out/extras" ]; then
		targets="$targets $(awk '$2 == "built" { print $1 }' "$out/extras" | tr '\n' ' ')"
	fi
}

kbuild() { # kbuild LABEL TARGET...: make on the current tree; sets build_rc
	kb_label=$1
	shift
	kb_t0=$(date +%s)
	build_rc=0
	# KBUILD_MODULES=1: a directory target otherwise skips modules (obj-m).
	nice -n 10 make -C "$tree" O="$out" ARCH="$arch" CROSS_COMPILE="$xc" \
		CC="$wrap ${xc}gcc" KBUILD_MODULES=1 -k -j"$jobs" "$@" \
		> "$out/$kb_label.log" 2>&1 || build_rc=$?
	build_s=$(($(date +%s) - kb_t0))
	log "$name $kb_label: $build_s s$([ $build_rc = 0 ] || echo ", make failed")"
}

normalise() { # diagnostics without line numbers, offsets and build paths
	sed -e ':a' -e 's#/[^/.][^/]*/\.\./#/#' -e 'ta' \
		-e "s#$tree/##g" -e "s#$out/##g" \
		-e 's#^\([^ :]*\):[0-9]*:[0-9]*: #\1: #' -e 's#^\([^ :]*\):[0-9]*: #\1: #' \
		-e 's#+0x[0-9a-f]*#+0x?#g'
}

cc_warnings() { # the compiler diagnostics of every object in $out, sorted
	find "$out" -name '*.o.warn' | while read -r w; do
		[ ! -f "${w%.warn}" ] || cat "$w"
	done | grep -E ' (warning|error): ' | normalise | sort || true
}

tool_warnings() { # LOG: objtool and linker warnings in a make log
	grep -E '^[^ :]+\.o: warning:|(^|[ /-])ld(\.bfd)?: warning:|^WARNING: ' "$1" | normalise | sort -u || true
}

more_often() { # STOCK NOW: the lines NOW has more often than STOCK
	awk 'FILENAME == ARGV[1] { n[$0]++; next } n[$0] > 0 { n[$0]--; next } { print }' "$1" "$2"
}

units() { # the KVM directory's final objects: its modules and built-in.a
	[ ! -f "$out/arch/$arch/kvm/modules.order" ] || sed 's#\.ko$#.o#' "$out/arch/$arch/kvm/modules.order"
	[ ! -f "$out/arch/$arch/kvm/built-in.a" ] || echo "arch/$arch/kvm/built-in.a"
}

symbols() { # "UNIT D|U|X SYMBOL": defined, undefined and exported symbols
	for u in $(units); do
		"${xc}nm" "$out/$u" | awk -v u="$u" '
			NF == 2 && $1 == "U" { und[$2] = 1 }
			NF == 3 && $2 ~ /^[A-TV-Z]$/ { def[$3] = 1 }
			NF == 3 && $3 ~ /^__ksymtab_/ { print u, "X", substr($3, 11) }
			END {
				for (s in def) print u, "D", s
				for (s in und) if (!(s in def)) print u, "U", s
			}'
	done | sort
}

# check_symbols LABEL: references that appeared since stock must resolve
# within KVM (exported, where they cross into a module), or look like
# they come from the rest of the kernel (not named kvm*).  Sets sym_bad.
check_symbols() {
	symbols > "$out/$1.syms"
	awk -v stock="$out/stock.syms" '
		FILENAME == stock { if ($2 == "U") old[$1 " " $3] = 1; next }
		$2 == "D" { def[$3] = def[$3] " " $1 }
		$2 == "X" { xp[$1 " " $3] = 1 }
		$2 == "U" && !(($1 " " $3) in old) { new[$1 " " $3] = 1 }
		END {
			for (k in new) {
				split(k, a, " ")
				u = a[1]; s = a[2]
				if (s in def) {
					ok = 0
					n = split(def[s], v, " ")
					for (i = 1; i <= n; i++)
						if ((v[i] " " s) in xp && u !~ /built-in\.a$/) ok = 1
					if (!ok) print "error: " u " uses " s ", which" def[s] " defines but does not export to it"
				} else if (s ~ /^_*kvm|^__(tracepoint|traceiter|SCK__tp_func|SCT__tp_func)_kvm/)
					print "error: " u " uses " s ", which no KVM object defines"
				else
					other[u] = other[u] " " s
			}
			for (u in other)
				print "note: " u " now also uses (from the rest of the kernel, unchecked):" other[u]
		}' "$out/stock.syms" "$out/$1.syms" | sort > "$out/$1.symcheck"
	sym_bad=0
	! grep -q '^error' "$out/$1.symcheck" || sym_bad=1
	# A note stays true for every later prefix: say it once a run.
	sed "s/^/  $name: /" "$out/$1.symcheck" | while read -r l; do
		if [ "${l#*: note: }" = "$l" ] || ! grep -qxF "$l" "$cross/notes.seen"; then
			echo "$l" >> "$cross/notes.seen"
			echo "  $l" >&2
		fi
	done
}

# evaluate LABEL: compare the build just made with stock; sets bad and why.
evaluate() {
	bad=0 why=
	if [ "$build_rc" != 0 ]; then
		bad=1 why="build errors"
		log "$name $1: make failed; the errors (full log $out/$1.log):"
		grep -E 'error:|Error [0-9]|No rule to make|undefined reference' "$out/$1.log" |
			grep -v '^make.*Error [0-9]' | head -n 20 | sed 's/^/  /' >&2 || true
	fi
	cc_warnings > "$out/$1.warn"
	tool_warnings "$out/$1.log" > "$out/$1.toolwarn"
	{
		more_often "$out/stock.warn" "$out/$1.warn" | grep -v ': error: ' || true
		more_often "$out/stock.toolwarn" "$out/$1.toolwarn"
	} > "$out/$1.new"
	if [ -s "$out/$1.new" ]; then
		bad=1 why="${why:+$why, }new warnings"
		log "$name $1: new warnings:"
		sed 's/^/  /' "$out/$1.new" >&2
		# objtool runs only when its object is rebuilt: rebuild it next time.
		sed -n 's#^\([^ :]*\.o\): warning:.*#\1#p' "$out/$1.new" | while read -r o; do
			rm -f "$out/$o"
		done
	fi
	if [ "$build_rc" = 0 ]; then
		check_symbols "$1"
		[ $sym_bad = 0 ] || bad=1 why="${why:+$why, }unresolved symbols"
	fi
}

# configure: a fresh build directory with the config's .config.  Sets
# config_err when a fragment option does not hold.
configure() {
	config_err=
	rm -rf "$out"
	mkdir -p "$out"
	# All the options on top of the defconfig, in one fragment.
	{
		# shellcheck disable=SC2086 # lists of files and of options
		[ -z "$fragfiles" ] || cat $fragfiles
		# shellcheck disable=SC2086
		printf '%s\n' $frag
	} > "$out/kvm.config"
	make -C "$tree" O="$out" ARCH="$arch" CROSS_COMPILE="$xc" CC="$wrap ${xc}gcc" \
		"$defconfig" > "$out/config.log" 2>&1 || { config_err="make $defconfig failed; see $out/config.log"; return 0; }
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$out/kvm.config" \
		>> "$out/config.log" 2>&1
	make -C "$tree" O="$out" ARCH="$arch" CROSS_COMPILE="$xc" CC="$wrap ${xc}gcc" \
		olddefconfig >> "$out/config.log" 2>&1 || { config_err="olddefconfig failed; see $out/config.log"; return 0; }
	# Every option must survive olddefconfig, or the config tests less than it says.
	sed -n -e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set/!\1/p' -e '/^CONFIG_/p' "$out/kvm.config" > "$out/kvm.want"
	while read -r line; do
		case $line in
		!*)
			! grep -q "^${line#!}=" "$out/.config" || config_err="${line#!} is set: $(grep "^${line#!}=" "$out/.config")"
			;;
		*)
			grep -qx "$line" "$out/.config" ||
				config_err="$line was dropped by olddefconfig (now: $(grep "^${line%%=*}=" "$out/.config" || echo unset))"
			;;
		esac
	done < "$out/kvm.want"
}

# Per config: done (key matches and stock recorded), or FAIL reasons.
stock_fail=
need_stock=
need_probe=
extras_of() { # the files outside the KVM directories that the series touches and $arch may build
	while read -r _ ex_p; do patch_files "$KP_DIR/$ex_p"; done < "$series" | sort -u | while read -r f; do
		case $f in
		*.c | *.S) ;;
		*) continue ;;
		esac
		case $f in
		virt/kvm/* | arch/$arch/kvm/* | tools/* | scripts/* | samples/* | Documentation/* | usr/*) continue ;;
		arch/$arch/*) ;;
		arch/*) continue ;;
		esac
		echo "${f%.*}.o"
	done
}
for c in $configs; do
	select_config "$c"
	if [ "$(cat "$out/.kvmstall-key" 2> /dev/null)" != "$key" ] || [ ! -f "$out/stock.syms" ]; then
		need_stock="$need_stock $c"
	fi
	for o in $(extras_of); do
		grep -q "^$o " "$out/extras" 2> /dev/null || { need_probe="$need_probe $c" && break; }
	done
done

# Stock: everything compared against is recorded from a cold build.
if [ -n "$need_stock$need_probe" ]; then
	tree_to 0
fi
for c in $need_stock; do
	select_config "$c"
	log "$c: configuring ($defconfig) and building stock"
	configure
	if [ -n "$config_err" ]; then
		log "$c: $config_err"
		stock_fail="$stock_fail $c"
		rm -f "$out/.kvmstall-key"
		continue
	fi
	# shellcheck disable=SC2086 # a list of targets
	kbuild stock $targets
	if [ $build_rc != 0 ]; then
		log "$c: the stock base does not build; see $out/stock.log:"
		grep -E 'error:|Error [0-9]' "$out/stock.log" | head -n 10 | sed 's/^/  /' >&2 || true
		stock_fail="$stock_fail $c"
		continue
	fi
	cc_warnings > "$out/stock.warn"
	tool_warnings "$out/stock.log" > "$out/stock.toolwarn"
	symbols > "$out/stock.syms"
	log "$c: stock has $(wc -l < "$out/stock.warn") compiler and $(wc -l < "$out/stock.toolwarn") other warnings"
	echo "$key" > "$out/.kvmstall-key"
done
# Files outside KVM that the series touches: is each built by the config?
for c in $need_probe; do
	case " $stock_fail " in *" $c "*) continue ;; esac
	select_config "$c"
	for o in $(extras_of); do
		! grep -q "^$o " "$out/extras" 2> /dev/null || continue
		kbuild probe "$o"
		if [ $build_rc = 0 ]; then
			echo "$o built" >> "$out/extras"
			log "$c: the series touches ${o%.o}.*, which this config builds: checking it too"
			# Only its own warnings join stock's: the KVM objects may be patched ones.
			if [ -f "$out/$o.warn" ]; then
				{
					cat "$out/stock.warn"
					normalise < "$out/$o.warn" | grep -E ' (warning|error): ' || true
				} | sort > "$out/stock.warn.new"
				mv "$out/stock.warn.new" "$out/stock.warn"
			fi
			tool_warnings "$out/probe.log" | sort -u - "$out/stock.toolwarn" > "$out/stock.toolwarn.new"
			mv "$out/stock.toolwarn.new" "$out/stock.toolwarn"
		elif grep -q "No rule to make target '$o'" "$out/probe.log"; then
			echo "$o absent" >> "$out/extras"
		else
			echo "$o broken" >> "$out/extras"
			log "$c: note: stock ${o%.o}.* does not build with this config; not checking it"
		fi
	done
done

result_file() { # result_file K: where a clean result for the first K patches is kept
	echo "$out/clean.$(head -n "$1" "$series" | { echo "$self"; cat; } | sha256sum | cut -c1-16)"
}

summary=
bisect_status=0
[ $bisect = 1 ] || bisect_configs=
for bc in $bisect_configs; do
	select_config "$bc"
	t0=$(date +%s)
	fails=
	cached=0
	case " $stock_fail " in
	*" $bc "*) fails=" the stock base does not build" ;;
	*)
		i=1
		while [ $i -le "$npatch" ]; do
			p=$(sed -n "${i}p" "$series" | cut -d' ' -f2)
			res=$(result_file $i)
			if [ $force = 0 ] && [ -f "$res" ]; then
				cached=$((cached + 1))
				i=$((i + 1))
				continue
			fi
			tree_to $i
			if [ -n "$bad_patch" ]; then
				fails="$fails after ${p%%-*} (does not apply)"
				break
			fi
			# shellcheck disable=SC2086
			kbuild "after-${p%%-*}" $targets
			evaluate "after-${p%%-*}"
			if [ $bad = 1 ]; then
				fails="$fails after ${p%%-*} ($why)"
			else
				touch "$res"
			fi
			i=$((i + 1))
		done
		;;
	esac
	took=$(($(date +%s) - t0))
	if [ -n "$fails" ]; then
		bisect_status=1
		summary="${summary}bisect $bc: FAIL:$fails [$took s]
"
	else
		summary="${summary}bisect $bc: PASS: all $npatch prefixes build cleanly ($cached known clean from earlier runs) [$took s]
"
	fi
done

cross_status=0
bad_patch=
if [ $crossck = 1 ]; then
	t0=$(date +%s)
	passed='' failed='' cached=0
	for c in $configs; do
		[ "$c" != x86 ] || continue
		select_config "$c"
		case " $stock_fail " in
		*" $c "*)
			failed="$failed $c (stock does not build)"
			continue
			;;
		esac
		res=$(result_file "$npatch")
		if [ $force = 0 ] && [ -f "$res" ]; then
			passed="$passed $c"
			cached=$((cached + 1))
			continue
		fi
		[ -n "$bad_patch" ] || tree_to "$npatch"
		if [ -n "$bad_patch" ]; then
			failed="$failed $c (${bad_patch%%-*} does not apply)"
			continue
		fi
		# shellcheck disable=SC2086
		kbuild patched $targets
		evaluate patched
		if [ $bad = 1 ]; then
			failed="$failed $c ($why)"
		else
			passed="$passed $c"
			touch "$res"
		fi
	done
	took=$(($(date +%s) - t0))
	if [ -n "$failed" ]; then
		cross_status=1
		summary="${summary}cross: FAIL:$failed; PASS:${passed:- none} [$took s]
"
	else
		summary="${summary}cross: PASS:$passed ($cached known clean from earlier runs) [$took s]
"
	fi
fi

log "done in $(($(date +%s) - t_start)) s; logs in $cross/build/CONFIG/"
printf '%s' "$summary"
[ $bisect_status = 0 ] && [ $cross_status = 0 ]
