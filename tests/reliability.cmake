# reliability.cmake - the reliability tests (issue 7).  Included by the
# top-level CMakeLists.txt right after the test loop, which has defined one
# target per tests/test_*.c.  Here:
#  - fvreliability: tests/faultproxy.c (the fault-injecting proxy) and
#    tests/fvdproc.c (fvd as a child process);
#  - link lines for the test programs that run a real fvd through it
#    (test_soak, test_reliability): fvd, its PostgreSQL test helper, the
#    proxy.  In a build without fvd (FV_BUILD_SERVER=OFF: cross builds)
#    they are compiled without FVD_BIN and exit 77, which ctest reports as
#    skipped;
#  - the fuzz harnesses' corpus replay (fuzz/replay.cmake).
find_package(Threads REQUIRED)

add_library(fvreliability STATIC ${PROJECT_SOURCE_DIR}/tests/faultproxy.c
  ${PROJECT_SOURCE_DIR}/tests/fvdproc.c)
target_include_directories(fvreliability PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(fvreliability PUBLIC fvtest Threads::Threads)
fv_strict(fvreliability)

function(fv_reliability_test_config)
  foreach(t test_soak test_reliability)
    if(TARGET ${t})
      target_link_libraries(${t} PRIVATE fvreliability)
      if(TARGET fvd AND TARGET fvpgutil)
        target_link_libraries(${t} PRIVATE fvpgutil)
        target_compile_definitions(${t} PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
        add_dependencies(${t} fvd)
      endif()
      set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL fv_reliability_test_config)

include(${PROJECT_SOURCE_DIR}/fuzz/replay.cmake)
