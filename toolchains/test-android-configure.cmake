# test-android-configure.cmake - issue 8, done means 2: configuring with
# toolchains/android.cmake against a prebuilt directory laid out as
# toolchains/README.md documents fails only for the missing NDK, with a
# message that says what to point ANDROID_NDK at.  Also: a layout with a file
# missing is reported as such (before the NDK), and an ANDROID_NDK that is
# not an NDK is named.  Run by ctest (toolchain_android_configure):
#   cmake -DSRC=<source dir> -DWORK=<scratch dir> -P toolchains/test-android-configure.cmake

file(REMOVE_RECURSE "${WORK}")
set(pre "${WORK}/prebuilt")
set(abi arm64-v8a)
# The documented layout, with placeholder files (the NDK check comes before
# anything reads them).
foreach(f
    sqlite/sqlite3.c sqlite/sqlite3.h
    ${abi}/include/sodium.h ${abi}/include/sodium/version.h ${abi}/lib/libsodium.a
    ${abi}/include/curl/curl.h ${abi}/lib/libcurl.a
    ${abi}/include/pb.h ${abi}/include/pb_encode.h ${abi}/include/pb_decode.h
    ${abi}/include/pb_common.h ${abi}/lib/libprotobuf-nanopb.a)
  file(WRITE "${pre}/${f}" "")
endforeach()

set(failures 0)
function(configure name out_var)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env --unset=ANDROID_NDK --unset=ANDROID_NDK_HOME
            --unset=ANDROID_NDK_ROOT --unset=FV_ANDROID_PREBUILT
            ${CMAKE_COMMAND} -S "${SRC}" -B "${WORK}/build-${name}"
            "-DCMAKE_TOOLCHAIN_FILE=${SRC}/toolchains/android.cmake"
            "-DFV_ANDROID_PREBUILT=${pre}" -DANDROID_ABI=${abi} ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(SEND_ERROR "${name}: configuring succeeded; it must fail")
  endif()
  # CMake wraps messages: compare with every run of white space as one space
  string(REGEX REPLACE "[ \t\r\n]+" " " all "${out}${err}")
  set(${out_var} "${all}" PARENT_SCOPE)
endfunction()

function(expect name text pattern)
  if(NOT text MATCHES "${pattern}")
    message(SEND_ERROR "${name}: the output does not match '${pattern}':\n${text}")
  else()
    message(STATUS "${name}: ok ('${pattern}')")
  endif()
endfunction()

# Exactly one error of the configuration itself: ours.  (A fatal error in a
# toolchain file stops CMake before it has a compiler and a make program,
# and CMake then adds its own two generic notes, "CMAKE_MAKE_PROGRAM is not
# set" and "CMAKE_C_COMPILER not set, after EnableLanguage", which carry no
# file location; they are consequences of the stop, not other causes.)
function(one_error name text)
  string(REGEX MATCHALL "CMake Error at [^ ]+" errors "${text}")
  list(LENGTH errors n)
  if(NOT n EQUAL 1 OR NOT errors MATCHES "toolchains/android\\.cmake:")
    message(SEND_ERROR "${name}: ${n} located errors (${errors}), want one from android.cmake:\n${text}")
  endif()
  string(REGEX REPLACE "CMake Error at [^ ]+ \\(message\\):" "" rest "${text}")
  string(REGEX REPLACE "CMake Error: CMake was unable to find a build program corresponding to \"[^\"]*\"\\. CMAKE_MAKE_PROGRAM is not set\\. You probably need to select a different build tool\\." "" rest "${rest}")
  string(REPLACE "CMake Error: CMAKE_C_COMPILER not set, after EnableLanguage" "" rest "${rest}")
  if(rest MATCHES "CMake Error|[Ss]odium|libcurl\\.so|pkg-config|nanopb|[Ww]arning")
    message(SEND_ERROR "${name}: another error or warning:\n${text}")
  endif()
endfunction()

# 1. the documented layout, no NDK: the only error is the NDK's
configure(no-ndk out)
one_error(no-ndk "${out}")
expect(no-ndk "${out}" "the Android NDK was not found\\.")
expect(no-ndk "${out}" "Point ANDROID_NDK at the NDK's root directory")
expect(no-ndk "${out}" "android\\.toolchain\\.cmake")
expect(no-ndk "${out}" "prebuilt dependencies in [^ ]*/prebuilt for arm64-v8a are complete")

# 2. ANDROID_NDK pointing somewhere else: named in the message
file(MAKE_DIRECTORY "${WORK}/not-an-ndk")
configure(bad-ndk out "-DANDROID_NDK=${WORK}/not-an-ndk")
one_error(bad-ndk "${out}")
expect(bad-ndk "${out}" "not-an-ndk has no build/cmake/android\\.toolchain\\.cmake")

# 3. a layout with a file missing: that file, not the NDK
file(REMOVE "${pre}/${abi}/lib/libcurl.a")
configure(incomplete out)
one_error(incomplete "${out}")
expect(incomplete "${out}" "incomplete")
expect(incomplete "${out}" "arm64-v8a/lib/libcurl\\.a")
if(out MATCHES "NDK was not found")
  message(SEND_ERROR "incomplete: the layout must be reported before the NDK")
endif()

# 4. an ABI the layout lacks
configure(other-abi out -DANDROID_ABI=x86_64)
expect(other-abi "${out}" "x86_64/lib/libsodium\\.a")

file(REMOVE_RECURSE "${WORK}")
