#!/bin/sh
# Installs the .deb with the real dpkg and its real maintainer scripts into a throwaway Debian
# root, inside a private mount namespace (run under `unshare --mount`): /usr is an overlay of this
# machine's /usr (so the root has Debian's tools and cxrd's libraries, and what dpkg writes stays
# in the overlay), /etc a copy without any cxrd user, the dpkg database empty. Then: install,
# reinstall with an edited conffile, run the installed cxrd as the cxrd user, purge. Prints
# `key: value` lines for package_test.py to check.
#
# Usage: install_root.sh DEB WORK_DIR DICOM_FILE
set -eu
deb=$1
work=$2
dicom=$3
root=$work/root

mkdir -p "$work/usr-upper" "$work/usr-work" "$root/usr" "$root/var/lib/dpkg/info" \
    "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/dev" "$root/proc" \
    "$root/run" "$root/tmp" "$root/srv"
chmod 1777 "$root/tmp"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$work/usr-upper,workdir=$work/usr-work" \
    "$root/usr"
for link in bin sbin lib lib64; do
    ln -s "usr/$link" "$root/$link" # Debian 12's merged /usr
done
cp -a /etc "$root/etc"
rm -rf "$root/etc/cxrd"
for table in passwd group shadow gshadow; do
    [ -f "$root/etc/$table" ] && sed -i '/^cxrd:/d' "$root/etc/$table"
done
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"

in_root() { chroot "$root" "$@"; }
attributes() { in_root stat -c '%a %U:%G' "$1"; }

echo "user-before: $(in_root getent passwd cxrd || echo none)"
dpkg --root="$root" --force-depends --force-confold -i "$deb" >"$work/dpkg-install.log" 2>&1
echo "status: $(dpkg --root="$root" -s cxrd | sed -n 's/^Status: //p')"
echo "conffiles: $(dpkg --root="$root" -s cxrd | awk '/^Conffiles:/ { on = 1; next } /^[^ ]/ { on = 0 } on { print $1 }')"
echo "user: $(in_root getent passwd cxrd)"
echo "group: $(in_root getent group cxrd)"
for path in /etc/cxrd /etc/cxrd/cxrd.ini /etc/cxrd/jwt-secret /var/lib/cxrd /srv/cxrd/in \
    /srv/cxrd/out; do
    echo "mode $path: $(attributes "$path")"
done
echo "secret-bytes: $(wc -c <"$root/etc/cxrd/jwt-secret")"
secret_before=$(cat "$root/etc/cxrd/jwt-secret")

# A site's edit of the conffile survives a reinstall; the postinst runs a second time.
echo "; edited by the site" >>"$root/etc/cxrd/cxrd.ini"
dpkg --root="$root" --force-depends --force-confold -i "$deb" >>"$work/dpkg-install.log" 2>&1
echo "conffile-kept: $(grep -c '^; edited by the site' "$root/etc/cxrd/cxrd.ini")"
echo "secret-kept: $([ "$(cat "$root/etc/cxrd/jwt-secret")" = "$secret_before" ] && echo yes)"
echo "user-again: $(in_root getent passwd cxrd)"

# The installed binary as the service user: the model from /usr/share/cxrd, the settings and the
# secret from /etc/cxrd, results under /srv/cxrd/out.
cp "$dicom" "$root/srv/cxrd/in/case.dcm"
chmod 0644 "$root/srv/cxrd/in/case.dcm"
if in_root setpriv --reuid=cxrd --regid=cxrd --clear-groups --reset-env \
    /usr/bin/cxrd infer /srv/cxrd/in/case.dcm --output /srv/cxrd/out --patient-id DEB1 \
    --config /etc/cxrd/cxrd.ini >"$work/infer.log" 2>&1; then
    echo "infer: ok"
else
    echo "infer: failed"
fi
echo "infer-model: $(grep -o 'cxr-default-[0-9.]*' "$root/srv/cxrd/out/DEB1/DEB1_predictions.json" | head -1)"
echo "infer-owner: $(attributes /srv/cxrd/out/DEB1/DEB1_report.pdf)"
in_root setpriv --reuid=cxrd --regid=cxrd --clear-groups --reset-env \
    /usr/bin/cxrd token --config /etc/cxrd/cxrd.ini --subject deb >"$work/token" 2>"$work/token.log" &&
    echo "token: $(cut -c1-3 "$work/token")"

dpkg --root="$root" --force-depends --purge cxrd >>"$work/dpkg-install.log" 2>&1
echo "purged-binary: $([ -e "$root/usr/bin/cxrd" ] && echo present || echo gone)"
echo "purged-secret: $([ -e "$root/etc/cxrd/jwt-secret" ] && echo present || echo gone)"
echo "results-kept: $([ -e "$root/srv/cxrd/out/DEB1/DEB1_report.pdf" ] && echo yes || echo no)"
