# harnesses.cmake - the fuzz harnesses as CMake targets, shared by the two
# ways they are built:
#  - fuzz/replay.cmake (the normal test build, any compiler): each harness
#    linked with fuzz/replay_main.c into fuzz_<name>_replay, a plain program
#    that ctest runs over the committed corpus and regression inputs;
#  - fuzz/fuzz.cmake (-DFV_BUILD_FUZZ=ON, clang): each harness linked with
#    libFuzzer into fuzz_<name>, for scripts/fuzz.
# fv_fuzz_harnesses(SUFFIX MAIN_SOURCE COMPILE_FLAGS LINK_FLAGS [EXTRA_SOURCES...])
# defines fvfuzzcommon${SUFFIX} (fuzz_common.c), fvparser${SUFFIX} (tools/fv.c
# compiled a second time with FV_FUZZ_PARSER, see tools/fv_fuzz.h) and one
# executable per harness.  The fvd harness needs server/ (fvdcore); it is
# skipped in builds without it.
include_guard(GLOBAL)

set(FV_FUZZ_DIR ${PROJECT_SOURCE_DIR}/fuzz)
set(FV_FUZZ_HARNESSES wire fvd vfs apply fv_args csv)

function(fv_fuzz_harnesses suffix main_src compile_flags link_flags)
  set(extra ${ARGN})
  set(common fvfuzzcommon${suffix})
  add_library(${common} STATIC ${FV_FUZZ_DIR}/fuzz_common.c)
  target_include_directories(${common} PUBLIC ${FV_FUZZ_DIR} ${PROJECT_SOURCE_DIR}/core
    ${PROJECT_SOURCE_DIR}/sync ${PROJECT_SOURCE_DIR}/platform)
  target_link_libraries(${common} PUBLIC fieldvault)
  target_compile_options(${common} PRIVATE ${compile_flags})
  fv_strict(${common})

  # fv's argument parser: fv.c with its main renamed and the parser exposed
  # (the fv binary's own build of fv.c is untouched).
  set(parser fvparser${suffix})
  add_library(${parser} STATIC ${PROJECT_SOURCE_DIR}/tools/fv.c ${PROJECT_SOURCE_DIR}/tools/fv_json.c
    ${PROJECT_SOURCE_DIR}/tools/fv_csv.c)
  target_compile_definitions(${parser} PRIVATE FV_FUZZ_PARSER main=fv_cli_main)
  target_compile_options(${parser} PRIVATE
    "SHELL:-include ${PROJECT_SOURCE_DIR}/tools/fv_fuzz.h" ${compile_flags})
  target_include_directories(${parser} PUBLIC ${PROJECT_SOURCE_DIR}/tools)
  target_link_libraries(${parser} PUBLIC fieldvault)
  fv_strict(${parser})

  foreach(h ${FV_FUZZ_HARNESSES})
    if(h STREQUAL "fvd" AND NOT TARGET fvdcore)
      continue()
    endif()
    set(t fuzz_${h}${suffix})
    add_executable(${t} ${FV_FUZZ_DIR}/fuzz_${h}.c ${main_src} ${extra})
    target_link_libraries(${t} PRIVATE ${common})
    if(h STREQUAL "fvd")
      target_link_libraries(${t} PRIVATE fvdcore)
    elseif(h STREQUAL "fv_args" OR h STREQUAL "csv") # csv: tools/fv_csv.c, in the parser library
      target_link_libraries(${t} PRIVATE ${parser})
    endif()
    target_compile_options(${t} PRIVATE ${compile_flags})
    target_link_options(${t} PRIVATE ${link_flags})
    fv_strict(${t})
  endforeach()
endfunction()
