#!/usr/bin/env bash
# Builds the sqlguard container image from this checkout, with no image registry: a Debian base
# from the package repositories (mmdebstrap, cached), imported into podman, and the Containerfile's
# runtime stage built on it (chroot isolation) around a binary built on the host.
#   scripts/image.sh                      # release build, then the image localhost/sqlguard:<version>
#   scripts/image.sh --binary PATH        # use this binary (the test suite passes its own)
#   scripts/image.sh --tag NAME           # image name (default localhost/sqlguard:<version>)
#   scripts/image.sh --dir DIR            # work directory (default $CARGO_TARGET_DIR/image, target/image)
#   scripts/image.sh --rebuild-base       # build the base again (new package versions)
# Everything lives under DIR: base-bookworm.tar, the image storage (podman/buildah
# --root DIR/storage --runroot DIR/run) and the build context. Run the image with
#   buildah --root DIR/storage --runroot DIR/run from --pull-never IMAGE
#   buildah ... run --isolation chroot --user 10001:10001 CONTAINER -- sqlguard --version
# (plain `podman run` needs a runtime that may set rlimits; elsewhere it works as usual).
# Needs mmdebstrap, podman and buildah: scripts/install-deps.sh --test installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
binary= tag= dir=$target/image rebuild_base=
while [ $# -gt 0 ]; do
  case "$1" in
  --binary) binary=${2:?--binary PATH}; shift 2 ;;
  --tag) tag=${2:?--tag NAME}; shift 2 ;;
  --dir) dir=${2:?--dir DIR}; shift 2 ;;
  --rebuild-base) rebuild_base=1; shift ;;
  *) echo "usage: scripts/image.sh [--binary PATH] [--tag NAME] [--dir DIR] [--rebuild-base]" >&2; exit 2 ;;
  esac
done

for tool in mmdebstrap podman strip; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-deps.sh --test" >&2; exit 1; }
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# One build at a time per work directory (test processes may call this together).
exec 9>"$dir/lock"
flock 9

if [ -z "$binary" ]; then
  cargo build --release --locked -q
  binary=$target/release/sqlguard
fi
[ -x "$binary" ] || { echo "no executable sqlguard binary at $binary" >&2; exit 1; }
version=$("$binary" --version | awk '{print $2}')
[ -n "$version" ] || { echo "$binary --version printed no version" >&2; exit 1; }
tag=${tag:-localhost/sqlguard:$version}

podman=(podman --root "$dir/storage" --runroot "$dir/run")
base_image=localhost/sqlguard-base:bookworm

# The base: Debian bookworm with apt, from the repositories this host uses (no host name here).
base_tar=$dir/base-bookworm.tar
if [ -n "$rebuild_base" ] || [ ! -s "$base_tar" ]; then
  sources=
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then sources=$f; break; fi
  done
  [ -n "$sources" ] || { echo "no Debian apt sources on this host (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)" >&2; exit 1; }
  echo "building the Debian base with mmdebstrap (a minute or two; cached in $base_tar)"
  # Without documentation and translations, as the Containerfile installs its packages.
  excludes=()
  for p in '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*'; do
    excludes+=("--dpkgopt=path-exclude=$p")
  done
  mmdebstrap --quiet --variant=apt "${excludes[@]}" --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$dir/base-bookworm.tmp.tar" "$sources"
  mv "$dir/base-bookworm.tmp.tar" "$base_tar"
  "${podman[@]}" rmi -f "$base_image" >/dev/null 2>&1 || true
fi
if ! "${podman[@]}" image exists "$base_image"; then
  "${podman[@]}" import -q "$base_tar" "$base_image" >/dev/null
fi

# The build context holds the binary alone, without debug information (as the builder stage's).
rm -rf "$dir/context"
mkdir -p "$dir/context"
strip -o "$dir/context/sqlguard" "$binary"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
"${podman[@]}" build -q --isolation chroot --pull=never \
  --build-arg BASE_IMAGE="$base_image" --build-arg BINARY_FROM=context \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  --build-arg SOURCE="${IMAGE_SOURCE:-unknown}" \
  -f Containerfile -t "$tag" "$dir/context" >/dev/null
rm -rf "$dir/context"
# Earlier builds of the same tag are now dangling: drop them (the cached layers stay).
"${podman[@]}" image prune -f >/dev/null

size=$("${podman[@]}" image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $((size / 1000000)) MB ($size bytes), storage $dir/storage"
