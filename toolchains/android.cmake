# android.cmake - build fieldvault for Android with the NDK: the static
# library, libfieldvault_jni.so for the Java API, for one ABI per build
# directory.  Wraps the NDK's own toolchain file.
#
#   cmake -S . -B build-android-arm64 \
#     -DCMAKE_TOOLCHAIN_FILE=toolchains/android.cmake \
#     -DANDROID_NDK=$HOME/Android/Sdk/ndk/<version> \
#     -DFV_ANDROID_PREBUILT=/path/to/prebuilt \
#     -DANDROID_ABI=arm64-v8a -DANDROID_PLATFORM=android-24
#
# ANDROID_ABI: arm64-v8a (default), armeabi-v7a, x86_64, x86.
# ANDROID_PLATFORM: the minimum API level (default android-24).
# FV_ANDROID_PREBUILT (or the environment variable of that name): libsodium,
#   libcurl and nanopb's runtime built per ABI, and SQLite's amalgamation;
#   toolchains/README.md gives the exact layout.  It is checked first, so a
#   layout mistake is reported before anything else.
# ANDROID_NDK (or $ANDROID_NDK, $ANDROID_NDK_HOME, $ANDROID_NDK_ROOT): the
#   NDK's root directory.
#
# What it sets for fieldvault's build: the dependencies come from the
# prebuilt layout through toolchains/mobile-deps.cmake (FV_DEPS_FILE),
# SQLite is compiled from the amalgamation, no fvd and no test programs
# (they cannot run on the build machine), the JNI library on.

if(NOT ANDROID_ABI)
  set(ANDROID_ABI arm64-v8a)
endif()
if(NOT ANDROID_PLATFORM)
  set(ANDROID_PLATFORM android-24)
endif()
set(FV_ANDROID_ABIS arm64-v8a armeabi-v7a x86_64 x86)
if(NOT ANDROID_ABI IN_LIST FV_ANDROID_ABIS)
  message(FATAL_ERROR "fieldvault: ANDROID_ABI=${ANDROID_ABI} is not one of ${FV_ANDROID_ABIS}")
endif()

# ---- 1. the prebuilt dependencies (toolchains/README.md) ----
if(NOT FV_ANDROID_PREBUILT AND DEFINED ENV{FV_ANDROID_PREBUILT})
  set(FV_ANDROID_PREBUILT "$ENV{FV_ANDROID_PREBUILT}")
endif()
if(NOT FV_ANDROID_PREBUILT)
  message(FATAL_ERROR
    "fieldvault: set FV_ANDROID_PREBUILT to the directory holding the prebuilt "
    "libsodium, libcurl and nanopb for each ABI and SQLite's amalgamation, laid out "
    "as toolchains/README.md describes.")
endif()
get_filename_component(FV_ANDROID_PREBUILT "${FV_ANDROID_PREBUILT}" ABSOLUTE)
set(FV_ANDROID_PREBUILT "${FV_ANDROID_PREBUILT}" CACHE PATH "Prebuilt dependencies (toolchains/README.md)")
set(fv_abi_dir "${FV_ANDROID_PREBUILT}/${ANDROID_ABI}")
set(fv_missing "")
foreach(f
    sqlite/sqlite3.c sqlite/sqlite3.h
    ${ANDROID_ABI}/include/sodium.h ${ANDROID_ABI}/lib/libsodium.a
    ${ANDROID_ABI}/include/curl/curl.h ${ANDROID_ABI}/lib/libcurl.a
    ${ANDROID_ABI}/include/pb.h ${ANDROID_ABI}/include/pb_encode.h
    ${ANDROID_ABI}/include/pb_decode.h ${ANDROID_ABI}/include/pb_common.h
    ${ANDROID_ABI}/lib/libprotobuf-nanopb.a)
  if(NOT EXISTS "${FV_ANDROID_PREBUILT}/${f}")
    string(APPEND fv_missing "\n  ${FV_ANDROID_PREBUILT}/${f}")
  endif()
endforeach()
if(fv_missing)
  message(FATAL_ERROR "fieldvault: the prebuilt dependencies for ${ANDROID_ABI} are incomplete "
                      "(layout: toolchains/README.md); missing:${fv_missing}")
endif()

# ---- 2. the NDK ----
if(NOT ANDROID_NDK)
  foreach(v ANDROID_NDK ANDROID_NDK_HOME ANDROID_NDK_ROOT)
    if(NOT ANDROID_NDK AND DEFINED ENV{${v}} AND NOT "$ENV{${v}}" STREQUAL "")
      set(ANDROID_NDK "$ENV{${v}}")
    endif()
  endforeach()
endif()
if(NOT ANDROID_NDK OR NOT EXISTS "${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  if(ANDROID_NDK)
    set(fv_ndk_seen " (${ANDROID_NDK} has no build/cmake/android.toolchain.cmake)")
  else()
    set(fv_ndk_seen "")
  endif()
  message(FATAL_ERROR
    "fieldvault: the Android NDK was not found${fv_ndk_seen}.  Point ANDROID_NDK at the "
    "NDK's root directory, the one holding build/cmake/android.toolchain.cmake: "
    "-DANDROID_NDK=$HOME/Android/Sdk/ndk/<version> (Android Studio's SDK Manager installs it "
    "there), or export ANDROID_NDK (or ANDROID_NDK_HOME).  NDK r23 or later.  "
    "The prebuilt dependencies in ${FV_ANDROID_PREBUILT} for ${ANDROID_ABI} are complete.")
endif()
set(ANDROID_NDK "${ANDROID_NDK}" CACHE PATH "The Android NDK's root directory")
# try_compile projects re-read this file: hand them what it needs.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ANDROID_NDK FV_ANDROID_PREBUILT ANDROID_ABI
     ANDROID_PLATFORM)

include("${ANDROID_NDK}/build/cmake/android.toolchain.cmake")

# ---- 3. fieldvault's settings ----
list(APPEND CMAKE_FIND_ROOT_PATH "${fv_abi_dir}")
set(FV_DEPS_FILE "${CMAKE_CURRENT_LIST_DIR}/mobile-deps.cmake")
set(FV_DEPS_PREFIX "${fv_abi_dir}")
set(FV_SQLITE_AMALGAMATION "${FV_ANDROID_PREBUILT}/sqlite")
set(FV_BUILD_SERVER OFF CACHE BOOL "Build fvd and the tests that need it" FORCE)
set(FV_BUILD_TESTS OFF CACHE BOOL "Build the cmocka test suite" FORCE)
set(FV_BUILD_JNI ON CACHE BOOL "Build the JNI binding" FORCE)
