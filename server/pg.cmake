# pg.cmake - fvd's PostgreSQL backend (server/store_pg.c, libpq) and the
# PostgreSQL test helpers.  Included by the top-level CMakeLists.txt right
# after server/server.cmake, which defines the static library `fvdcore`
# (all of fvd but main); this file adds the backend to it.
#
# Tests: fvpgutil (tests/pgutil.c) starts a throwaway PostgreSQL cluster;
# any test program may link it.  tests/test_server_store.c runs the store
# suite on both backends and links fvdcore and fvpgutil; the test targets
# are defined later in the top-level file, hence the deferred call.  The
# server binaries come from Debian's postgresql package (scripts/install-deps);
# a missing server fails the test, it is never skipped.

pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

if(NOT TARGET fvdcore)
  message(FATAL_ERROR "server/pg.cmake: server/server.cmake must define the fvdcore library "
                      "before pg.cmake is included")
endif()

# fvdcore is built with fv_strict (server.cmake), store_pg.c included.
target_sources(fvdcore PRIVATE ${PROJECT_SOURCE_DIR}/server/store_pg.c)
target_link_libraries(fvdcore PUBLIC PkgConfig::LIBPQ)

if(FV_BUILD_TESTS)
  find_package(Threads REQUIRED)

  add_library(fvpgutil STATIC ${PROJECT_SOURCE_DIR}/tests/pgutil.c)
  target_include_directories(fvpgutil PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(fvpgutil PUBLIC PkgConfig::LIBPQ)
  fv_strict(fvpgutil)

  function(fv_pg_test_config)
    if(TARGET test_server_store)
      target_link_libraries(test_server_store PRIVATE fvdcore fvpgutil Threads::Threads)
      target_include_directories(test_server_store PRIVATE ${PROJECT_SOURCE_DIR}/server)
    endif()
  endfunction()
  cmake_language(DEFER CALL fv_pg_test_config)
endif()
