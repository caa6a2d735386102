# platform.cmake - the platform layer's build glue (issue 8).  Included by
# the top-level CMakeLists.txt near the end, after the library, fvd and the
# test targets exist.
#
#  - platform/platform.c (the hook table every core/ and sync/ call goes
#    through) joins the library; which platform's default file is compiled
#    beside it (posix/, android/ extras, ios/ extras) is chosen here, never
#    by #ifdef in logic.
#  - tests/test_hooks.c (devices syncing with a real fvd through a
#    test-supplied HTTP transport and key store, and threads) needs the fvd
#    binary (FVD_BIN, SQLite store: no PostgreSQL) and pthreads.
#  - toolchain_android_configure: toolchains/android.cmake against the
#    documented prebuilt layout, without an NDK (issue 8, done means 2).
#  - Cross builds (toolchains/linux-aarch64.cmake) run their tests under
#    qemu-user: every test gets FV_TEST_EXEC_WRAPPER so that tu_run can
#    start `fv` (an aarch64 program) from inside the emulator.

target_sources(fieldvault PRIVATE ${PROJECT_SOURCE_DIR}/platform/platform.c)
if(ANDROID)
  # logcat as the default logger; everything else is POSIX (bionic).
  target_sources(fieldvault PRIVATE ${PROJECT_SOURCE_DIR}/platform/android/log_android.c)
  find_library(FV_ANDROID_LOG log)
  target_link_libraries(fieldvault PUBLIC ${FV_ANDROID_LOG})
else()
  target_sources(fieldvault PRIVATE ${PROJECT_SOURCE_DIR}/platform/posix/log_posix.c)
endif()
if(APPLE AND FV_BUILD_KEYCHAIN)
  # The Keychain key store: compiled only for Apple platforms (Security).
  target_sources(fieldvault PRIVATE ${PROJECT_SOURCE_DIR}/platform/ios/keychain.c)
  target_link_libraries(fieldvault PUBLIC "-framework Security" "-framework CoreFoundation")
endif()

# Issue 8, done means 2: the Android toolchain against the documented
# prebuilt layout fails only for the missing NDK (a configure-only test).
if(FV_BUILD_TESTS AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME toolchain_android_configure
    COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR}
            -DWORK=${CMAKE_BINARY_DIR}/testtmp/toolchain-android
            -P ${PROJECT_SOURCE_DIR}/toolchains/test-android-configure.cmake)
endif()

function(fv_platform_test_config)
  if(TARGET test_hooks AND TARGET fvd)
    find_package(Threads REQUIRED)
    target_link_libraries(test_hooks PRIVATE Threads::Threads)
    target_compile_definitions(test_hooks PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
    add_dependencies(test_hooks fvd)
  endif()
  if(CMAKE_CROSSCOMPILING AND CMAKE_CROSSCOMPILING_EMULATOR AND FV_BUILD_TESTS)
    list(GET CMAKE_CROSSCOMPILING_EMULATOR 0 wrapper)
    get_property(tests DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY TESTS)
    foreach(t ${tests})
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "FV_TEST_EXEC_WRAPPER=${wrapper}")
    endforeach()
  endif()
endfunction()
cmake_language(DEFER CALL fv_platform_test_config)
