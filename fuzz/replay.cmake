# replay.cmake - the fuzz harnesses in the normal test build: each one as a
# plain program (fuzz/replay_main.c for main, no libFuzzer, any compiler)
# that ctest runs once over every committed seed (fuzz/corpus/<name>/) and
# every regression input (fuzz/regressions/<name>/: inputs that once found
# a bug).  So the harnesses keep building, and CI replays the corpora under
# the ASan+UBSan build even without clang's fuzzer.  Also builds
# fuzz_gen_corpus, which (re)writes the seed corpora (fuzz/gen_corpus.c).
# Included by tests/reliability.cmake.
include(${PROJECT_SOURCE_DIR}/fuzz/harnesses.cmake)

fv_fuzz_harnesses(_replay ${FV_FUZZ_DIR}/replay_main.c "" "")

foreach(h ${FV_FUZZ_HARNESSES})
  if(TARGET fuzz_${h}_replay)
    add_test(NAME fuzz_replay_${h}
      COMMAND fuzz_${h}_replay ${FV_FUZZ_DIR}/corpus/${h} ${FV_FUZZ_DIR}/regressions/${h})
    set_tests_properties(fuzz_replay_${h} PROPERTIES TIMEOUT 600
      ENVIRONMENT "FV_FUZZ_TMP=${CMAKE_BINARY_DIR}/testtmp")
  endif()
endforeach()

add_executable(fuzz_gen_corpus ${FV_FUZZ_DIR}/gen_corpus.c)
target_link_libraries(fuzz_gen_corpus PRIVATE fvfuzzcommon_replay)
fv_strict(fuzz_gen_corpus)
