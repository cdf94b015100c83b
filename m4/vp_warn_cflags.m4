# VP_WARN_CFLAGS: the house warning set (STYLE.md), each flag kept only when
# the compiler accepts it, collected in WARN_CFLAGS.
AC_DEFUN([VP_WARN_CFLAGS], [
    WARN_CFLAGS=""
    for vp_flag in -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
                   -Wstrict-prototypes -Wno-unused-parameter; do
        vp_save_CFLAGS="$CFLAGS"
        CFLAGS="$CFLAGS -Werror $vp_flag"
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
            [WARN_CFLAGS="$WARN_CFLAGS $vp_flag"])
        CFLAGS="$vp_save_CFLAGS"
    done
    AC_SUBST([WARN_CFLAGS])
])
