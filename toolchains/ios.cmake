# ios.cmake - build fieldvault as a static library for iOS (device arm64 by
# default; the simulator with -DFV_IOS_SIMULATOR=ON), for an app to link and
# call from Swift through platform/ios/module.modulemap.  Needs macOS with
# Xcode; not built on the Linux machines (nothing here can compile Apple
# code), so this file is kept small.
#
#   cmake -S . -B build-ios -G Xcode -DCMAKE_TOOLCHAIN_FILE=toolchains/ios.cmake \
#         -DFV_IOS_PREBUILT=/path/to/ios-prebuilt
#
# FV_IOS_PREBUILT: include/ and lib/ with libsodium.a, libcurl.a (built with
#   Secure Transport or OpenSSL; libssl.a/libcrypto.a beside it are linked
#   when present) and libprotobuf-nanopb.a for the chosen SDK, as
#   toolchains/README.md describes.  SQLite is the SDK's (libsqlite3).
# The Keychain key store (platform/ios/keychain.c, Security framework) is
# compiled in.
set(CMAKE_SYSTEM_NAME iOS)
if(NOT CMAKE_OSX_ARCHITECTURES)
  set(CMAKE_OSX_ARCHITECTURES arm64)
endif()
if(NOT CMAKE_OSX_DEPLOYMENT_TARGET)
  set(CMAKE_OSX_DEPLOYMENT_TARGET 13.0)
endif()
if(FV_IOS_SIMULATOR)
  set(CMAKE_OSX_SYSROOT iphonesimulator)
else()
  set(CMAKE_OSX_SYSROOT iphoneos)
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

if(NOT FV_IOS_PREBUILT AND DEFINED ENV{FV_IOS_PREBUILT})
  set(FV_IOS_PREBUILT "$ENV{FV_IOS_PREBUILT}")
endif()
if(NOT FV_IOS_PREBUILT OR NOT EXISTS "${FV_IOS_PREBUILT}/lib/libsodium.a"
   OR NOT EXISTS "${FV_IOS_PREBUILT}/lib/libcurl.a"
   OR NOT EXISTS "${FV_IOS_PREBUILT}/lib/libprotobuf-nanopb.a")
  message(FATAL_ERROR "fieldvault: set FV_IOS_PREBUILT to a directory with include/ and "
                      "lib/libsodium.a, lib/libcurl.a, lib/libprotobuf-nanopb.a for this SDK "
                      "(toolchains/README.md)")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FV_IOS_PREBUILT FV_IOS_SIMULATOR)
list(APPEND CMAKE_FIND_ROOT_PATH "${FV_IOS_PREBUILT}")

set(FV_DEPS_FILE "${CMAKE_CURRENT_LIST_DIR}/mobile-deps.cmake")
set(FV_DEPS_PREFIX "${FV_IOS_PREBUILT}")
unset(FV_SQLITE_AMALGAMATION)                 # the SDK's libsqlite3
set(FV_BUILD_SERVER OFF CACHE BOOL "Build fvd and the tests that need it" FORCE)
set(FV_BUILD_TESTS OFF CACHE BOOL "Build the cmocka test suite" FORCE)
set(FV_BUILD_JNI OFF CACHE BOOL "Build the JNI binding" FORCE)
set(FV_BUILD_KEYCHAIN ON CACHE BOOL "Compile the Keychain key store (Apple only)" FORCE)
