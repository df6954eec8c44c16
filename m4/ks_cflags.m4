# SPDX-License-Identifier: MIT
# KS_APPEND_CFLAGS(VARIABLE, FLAGS)
# ---------------------------------
# Append to VARIABLE each of FLAGS that the C compiler accepts.  Flags are
# tried with -Werror so that a compiler which only warns about an unknown
# option (clang) does not end up with it.
AC_DEFUN([KS_APPEND_CFLAGS], [
	for ks_flag in $2; do
		AS_VAR_PUSHDEF([ks_cache], [ks_cv_cflag_$ks_flag])
		AC_CACHE_CHECK([whether $CC accepts $ks_flag], [ks_cache], [
			ks_save_CFLAGS=$CFLAGS
			CFLAGS="$CFLAGS -Werror $ks_flag"
			AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
				[AS_VAR_SET([ks_cache], [yes])],
				[AS_VAR_SET([ks_cache], [no])])
			CFLAGS=$ks_save_CFLAGS
		])
		AS_VAR_IF([ks_cache], [yes], [$1="$$1 $ks_flag"])
		AS_VAR_POPDEF([ks_cache])
	done
])
