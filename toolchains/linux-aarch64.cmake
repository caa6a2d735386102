# linux-aarch64.cmake - cross-build fieldvault for 64-bit Arm Linux with
# Debian's cross compiler (gcc-aarch64-linux-gnu) against Debian's arm64
# packages installed through multiarch (libsqlite3-dev:arm64,
# libsodium-dev:arm64, libcurl4-openssl-dev:arm64, libnanopb-dev:arm64,
# libcmocka-dev:arm64; scripts/install-cross installs them).  Test programs
# run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so ctest works as on
# the host.  scripts/cross-test is the one command that uses this file.
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=toolchains/linux-aarch64.cmake
#
# Multiarch puts the arm64 libraries in /usr/lib/aarch64-linux-gnu and their
# headers in /usr/include (shared) and /usr/include/aarch64-linux-gnu, which
# Debian's cross gcc searches by itself: the "sysroot" is /, so no
# CMAKE_SYSROOT; only pkg-config and find_package must be told to look at the
# arm64 directories, and host programs (protoc, nanopb_generator) are still
# found on PATH.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(FV_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${FV_CROSS_TRIPLE}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${FV_CROSS_TRIPLE})
find_program(FV_CROSS_STRIP ${FV_CROSS_TRIPLE}-strip)
if(FV_CROSS_STRIP)
  set(CMAKE_STRIP ${FV_CROSS_STRIP})
endif()

# pkg-config: only the arm64 .pc files (and arch-independent ones).  Set in
# the environment of the configure run; try_compile re-reads this file.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${FV_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})

# find_package and find_library search <prefix>/lib/aarch64-linux-gnu by
# CMAKE_LIBRARY_ARCHITECTURE (so nanopb's CMake package is the arm64 one);
# programs are host programs.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# Run target programs (ctest, add_test) under qemu-user.  The loader and the
# arm64 libraries are Debian's multiarch ones (/lib/ld-linux-aarch64.so.1,
# /usr/lib/aarch64-linux-gnu: libc6:arm64 comes with the -dev:arm64
# packages), so no -L prefix.  Not -L /usr/aarch64-linux-gnu (the cross
# compiler's own libc, libc6-arm64-cross 2.36-8cross1): under Debian 12's
# qemu 7.2 a program loaded from there hangs in fork() (the child never
# runs), which every test that forks or runs `fv` needs.
find_program(FV_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(FV_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FV_QEMU_AARCH64})
endif()

# Nothing of the server side is cross-built: fvd needs libmicrohttpd and
# libpq, its tests a PostgreSQL server; the library, fv and the unit tests
# need none of them.  The JNI binding is built for the host JVM only.
set(FV_BUILD_SERVER OFF CACHE BOOL "Build fvd and the tests that need it" FORCE)
set(FV_BUILD_JNI OFF CACHE BOOL "Build the JNI shared library" FORCE)
