# fuzz.cmake - libFuzzer builds of the fuzz harnesses, for scripts/fuzz.
# Included by the top-level CMakeLists.txt only with -DFV_BUILD_FUZZ=ON, and
# only with clang (Debian's clang 14 + libclang-rt-14-dev).  fuzz/build.sh
# configures such a build in build-fuzz/ (tests off, warnings not fatal:
# the normal builds are the compiler-as-reviewer gate).
#
# Everything of ours (fieldvault, the generated protobuf code, fvdcore) is
# compiled with coverage instrumentation and ASan+UBSan; every executable
# links the sanitizer runtimes.  nanopb: with FV_NANOPB_SOURCE_DIR pointing
# at Debian's nanopb source package (fuzz/build.sh fetches it with
# `apt-get source` into the build directory), pb_common.c, pb_decode.c and
# pb_encode.c are compiled here with the same instrumentation and Debian's
# own flags (-DPB_ENABLE_MALLOC, debian/rules) and linked ahead of
# libprotobuf-nanopb.a, so the fuzzer sees inside the decoder; without it
# Debian's uninstrumented static library is linked and a warning says so.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FV_BUILD_FUZZ needs clang (CC=clang); fuzz/build.sh sets it up")
endif()

set(FV_FUZZ_CFLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer -g)
set(FV_FUZZ_LDFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)

foreach(t fieldvault fv_proto fvdcore)
  if(TARGET ${t})
    target_compile_options(${t} PRIVATE ${FV_FUZZ_CFLAGS})
  endif()
endforeach()
# Executables defined so far (fv, fvd, tests) link instrumented libraries.
get_property(fv_fuzz_existing DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
foreach(t ${fv_fuzz_existing})
  get_target_property(type ${t} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_link_options(${t} PRIVATE -fsanitize=address,undefined)
  endif()
endforeach()

set(FV_NANOPB_SOURCE_DIR "" CACHE PATH
    "nanopb source tree (Debian's source package) to build instrumented for fuzzing")
set(fv_fuzz_extra "")
if(FV_NANOPB_SOURCE_DIR AND EXISTS ${FV_NANOPB_SOURCE_DIR}/pb_decode.c)
  add_library(fv_nanopb_fuzz OBJECT ${FV_NANOPB_SOURCE_DIR}/pb_common.c
    ${FV_NANOPB_SOURCE_DIR}/pb_decode.c ${FV_NANOPB_SOURCE_DIR}/pb_encode.c)
  target_include_directories(fv_nanopb_fuzz PRIVATE ${FV_NANOPB_SOURCE_DIR})
  target_compile_definitions(fv_nanopb_fuzz PRIVATE PB_ENABLE_MALLOC)
  target_compile_options(fv_nanopb_fuzz PRIVATE ${FV_FUZZ_CFLAGS})
  set(fv_fuzz_extra $<TARGET_OBJECTS:fv_nanopb_fuzz>)
  message(STATUS "fuzz: nanopb instrumented, built from ${FV_NANOPB_SOURCE_DIR}")
else()
  message(WARNING "fuzz: FV_NANOPB_SOURCE_DIR not set: linking Debian's uninstrumented "
                  "libprotobuf-nanopb.a (the fuzzer gets no coverage inside pb_decode)")
endif()

include(${PROJECT_SOURCE_DIR}/fuzz/harnesses.cmake)
fv_fuzz_harnesses("" "" "${FV_FUZZ_CFLAGS}" "${FV_FUZZ_LDFLAGS}" ${fv_fuzz_extra})
