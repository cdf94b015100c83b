#!/bin/bash
# Builds (or finds in the cache) the e2e guest image and prints its directory.
#
# The image holds: kernel (uncompressed vmlinux booted via PVH, or the
# bzImage if PVH does not boot), initramfs.img (busybox-static, the 9p
# modules, /init, the static workload), and host-side e2e-work,
# e2e-socketpair and e2e-reaper. Everything comes from Debian packages: the
# kernel package is fetched with apt-get download and unpacked with
# dpkg-deb -x, never installed.
#
# Cache: $E2E_CACHE_DIR (default /var/cache/virtfs-proxyd-e2e)/KEY, where KEY
# is the kernel package and version plus a hash of the e2e sources, so a
# second run is free and offline.
#
# Environment: E2E_KERNEL_PKG overrides the kernel package (default: what
# linux-image-amd64 depends on). Exit status 77 means "cannot build here"
# (no apt, no network, not root): callers skip.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")" && pwd)
readonly SRC_DIR
readonly CACHE_ROOT=${E2E_CACHE_DIR:-/var/cache/virtfs-proxyd-e2e}
readonly APT_DEPS="qemu-system-x86 busybox-static cpio xz-utils gcc libc6-dev binutils"
# Roots of the module set; their dependencies are resolved from modules.dep.
readonly MODULES="virtio_pci 9pnet_virtio 9p"
readonly APPLETS="sh mount mkdir cat cut insmod poweroff"
readonly CFLAGS=(-std=c11 -O2 -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes -Werror)

log() { echo "build-image: $*" >&2; }
skip() { log "cannot build the guest image: $*"; exit 77; }

apt_updated=no
apt_update() {
    [[ $apt_updated == yes ]] && return 0
    log "apt-get update"
    apt-get update -qq >&2 || return 1
    apt_updated=yes
}

install_deps() {
    local pkg missing=()
    for pkg in $APT_DEPS; do
        dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed ||
            missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || skip "missing packages ${missing[*]} and not root"
    log "installing ${missing[*]}"
    { apt_update && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; } ||
        skip "apt-get install ${missing[*]} failed"
}

# Prints "PACKAGE VERSION" of the kernel to use, from the local apt lists.
kernel_package() {
    local pkg=${E2E_KERNEL_PKG:-}
    if [[ -z $pkg ]]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
              awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    [[ -n $pkg ]] || return 1
    local ver
    ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
          awk '$1 == "Version:" { print $2; exit }')
    [[ -n $ver ]] && echo "$pkg $ver"
}

source_hash() {
    cat "$SRC_DIR/build-image.sh" "$SRC_DIR/init.sh" "$SRC_DIR/e2e-work.c" \
        "$SRC_DIR/e2e-socketpair.c" "$SRC_DIR/e2e-reaper.c" "$SRC_DIR/e2e-probe.c" |
        sha256sum | cut -c1-16
}

# Mirrors the kernel's scripts/extract-vmlinux: try every xz stream start
# in the bzImage until one decompresses to an ELF file.
extract_vmlinux() {
    local bzimage=$1 out=$2 off
    while read -r off; do
        tail -c "+$((off + 1))" "$bzimage" | xz -dc >"$out" 2>/dev/null || true
        [[ $(head -c 4 "$out" | od -An -c | tr -d ' ') == 177ELF ]] && return 0
    done < <(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bzimage" | cut -d: -f1)
    rm -f "$out"
    return 1
}

# Prints the module files (relative to lib/modules/KVER) in load order.
module_order() {
    local moddir=$1 done_list=" "
    visit() {
        local path=$1 dep deps=()
        [[ $done_list == *" $path "* ]] && return 0
        read -ra deps < <(awk -v m="$path:" '$1 == m { $1 = ""; print; exit }' "$moddir/modules.dep")
        for dep in "${deps[@]}"; do
            visit "$dep"
        done
        done_list+="$path "
        echo "$path"
    }
    local mod path
    for mod in $MODULES; do
        path=$(awk -F: -v m="/$mod.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m \
               { print $1; exit }' "$moddir/modules.dep")
        [[ -n $path ]] || { log "module $mod not in the kernel package"; return 1; }
        visit "$path"
    done
}

build_initramfs() {
    local kroot=$1 out=$2 root=$3/root kver moddir mod
    kver=$(ls "$kroot/lib/modules")
    moddir=$kroot/lib/modules/$kver
    busybox depmod -b "$kroot" "$kver"
    mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    for mod in $APPLETS; do ln -s busybox "$root/bin/$mod"; done
    module_order "$moddir" >"$3/order"
    while read -r mod; do
        cp "$moddir/$mod" "$root/lib/modules/"
        basename "$mod" >>"$root/lib/modules/load-order"
    done <"$3/order"
    install -m 0755 "$SRC_DIR/init.sh" "$root/init"
    install -m 0755 "$3/e2e-work" "$root/e2e-work"
    (cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out"
}

# A guest that only boots and powers off proves the kernel format boots.
boots() {
    local dir=$1 kernel=$2
    ln -sf "$kernel" "$dir/kernel"
    "$SRC_DIR/boot-guest.sh" --image "$dir" --accel tcg --timeout 60 \
        --log "$dir/probe.log" --append e2e.mode=probe 2>/dev/null || true
    grep -q E2E-DONE "$dir/probe.log"
}

build() {
    local key_dir=$1 pkg=$2 ver=$3 tmp
    mkdir -p "$CACHE_ROOT"
    tmp=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "building $key_dir"
    gcc "${CFLAGS[@]}" -static -o "$tmp/e2e-work" "$SRC_DIR/e2e-work.c"
    gcc "${CFLAGS[@]}" -o "$tmp/e2e-socketpair" "$SRC_DIR/e2e-socketpair.c"
    gcc "${CFLAGS[@]}" -o "$tmp/e2e-reaper" "$SRC_DIR/e2e-reaper.c"
    gcc "${CFLAGS[@]}" -o "$tmp/e2e-probe" "$SRC_DIR/e2e-probe.c"
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
        skip "apt-get download $pkg=$ver failed"
    dpkg-deb -x "$tmp"/*.deb "$tmp/kroot"
    build_initramfs "$tmp/kroot" "$tmp/initramfs.img" "$tmp"
    cp "$tmp"/kroot/boot/vmlinuz-* "$tmp/vmlinuz"
    if extract_vmlinux "$tmp/vmlinuz" "$tmp/vmlinux" && boots "$tmp" vmlinux; then
        rm "$tmp/vmlinuz"
    else
        log "PVH boot of vmlinux failed, using the bzImage"
        rm -f "$tmp/vmlinux"
        boots "$tmp" vmlinuz || { log "probe boot failed:"; cat "$tmp/probe.log" >&2; return 1; }
    fi
    rm -rf "$tmp/kroot" "$tmp"/*.deb "$tmp/root" "$tmp/order"
    echo "$pkg $ver" >"$tmp/kernel-package"
    mv -T "$tmp" "$key_dir" 2>/dev/null || rm -rf "$tmp" # lost a race: fine
    trap - EXIT
}

main() {
    local hash pkg_ver key_dir
    hash=$(source_hash)
    install_deps
    pkg_ver=$(kernel_package) || { apt_update && pkg_ver=$(kernel_package); } || pkg_ver=
    if [[ -z $pkg_ver ]]; then
        # Offline and no apt lists: any cached kernel built from these sources will do.
        key_dir=$(find "$CACHE_ROOT" -maxdepth 1 -name "*-$hash" 2>/dev/null | sort | tail -n 1 || true)
        [[ -n $key_dir ]] || skip "no kernel package known to apt and nothing cached"
    else
        key_dir=$CACHE_ROOT/$(tr ' :~' '_._' <<<"$pkg_ver")-$hash
        [[ -d $key_dir ]] || build "$key_dir" "${pkg_ver% *}" "${pkg_ver#* }"
    fi
    echo "$key_dir"
}

main "$@"
