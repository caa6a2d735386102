#!/usr/bin/env bash
# fuzz/build.sh [BUILD_DIR] - build the libFuzzer harnesses (clang 14,
# -fsanitize=fuzzer,address,undefined) into BUILD_DIR (default build-fuzz/).
#
# nanopb: the decoder is where hostile bytes go first, so it is compiled
# here from Debian's own source package with the fuzzer's instrumentation
# (fuzz/fuzz.cmake).  The source is fetched once with `apt-get source`
# into BUILD_DIR/nanopb-src, using a private apt configuration in that
# directory (a deb-src line for the Debian archive; the system's apt
# sources are not touched, nothing lands in the repository).  If that is
# impossible (offline, no dpkg-dev), the build links Debian's
# uninstrumented libprotobuf-nanopb.a instead and says so.
#
# Prints "fuzz-build: nanopb instrumented" or "... not instrumented" last.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

fetch_nanopb() {
  local src=$dir/nanopb-src
  local have
  have=$(find "$src" -maxdepth 2 -name pb_decode.c 2>/dev/null | head -n1 || true)
  if [ -n "$have" ]; then dirname "$have"; return 0; fi
  command -v apt-get >/dev/null && command -v dpkg-source >/dev/null || return 1
  local ver codename
  ver=$(dpkg-query -W -f='${Version}\n' libnanopb-dev 2>/dev/null | head -n1)
  [ -n "$ver" ] || return 1
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || return 1
  rm -rf "$src" && mkdir -p "$src/apt/lists/partial" "$src/apt/cache/archives/partial"
  echo "deb-src http://deb.debian.org/debian $codename main" > "$src/apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$src/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$src/apt/lists" -o "Dir::Cache=$src/apt/cache"
              -o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)")
  echo "fuzz-build: fetching Debian's nanopb $ver source (apt-get source, into $src)" >&2
  apt-get -q "${opts[@]}" update >"$src/apt.log" 2>&1 || return 1
  (cd "$src" && apt-get -q "${opts[@]}" source "nanopb=$ver" >>"$src/apt.log" 2>&1) || return 1
  have=$(find "$src" -maxdepth 2 -name pb_decode.c | head -n1)
  [ -n "$have" ] && dirname "$have"
}

nanopb_dir=""
if nanopb_dir=$(fetch_nanopb); then
  instrumented="nanopb instrumented (Debian source package, $nanopb_dir)"
else
  nanopb_dir=""
  instrumented="nanopb NOT instrumented: could not fetch Debian's source package (see $dir/nanopb-src/apt.log); linked Debian's libprotobuf-nanopb.a"
fi

CC=${FV_FUZZ_CC:-clang} cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFV_BUILD_FUZZ=ON -DFV_BUILD_TESTS=OFF -DFV_BUILD_BENCH=OFF -DFV_WERROR=OFF \
  -DFV_NANOPB_SOURCE_DIR="$nanopb_dir" >/dev/null
if ! cmake --build "$dir" -j"$(nproc)" --target fuzz_wire fuzz_fvd fuzz_vfs fuzz_apply \
     fuzz_fv_args fuzz_csv >"$dir/build.log" 2>&1; then
  grep -E "error|Error" "$dir/build.log" | head -n 40 >&2
  echo "fuzz-build: the build failed (full log: $dir/build.log)" >&2
  exit 1
fi
echo "fuzz-build: $instrumented"
