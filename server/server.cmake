# server.cmake - fvd, the central sync endpoint.  Included by the top-level
# CMakeLists.txt after the fieldvault library (and sync.cmake); pg.cmake,
# included right after, adds the PostgreSQL backend to `fvdcore`.
#
#  - sync/sign.c (request signing: the client signs, fvd verifies, the
#    tests do both) is added to the fieldvault library here, so that every
#    side links the same code.
#  - fvdcore: a static library with every server source but fvd.c's main:
#    the store backends, HTTP front, auth, the endpoint handlers.  server/
#    is on its consumers' include path (tests reach fvd.h, auth.h, store.h).
#  - fvd: the executable (serve, admin).
#  - test_fvd (defined by the top-level test glob) also links fvdcore and
#    libcurl, knows where fvd is (FVD_BIN), and is built after it; with
#    pg.cmake's fvpgutil it runs on PostgreSQL too.  test_keys likewise,
#    with tests/fvdproc.c (fvreliability) to run fvd, and
#    test_policy_server (the access policy and users' roles changed on a
#    running fvd, with devices through the public API).

pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd>=0.9.71)
if(NOT TARGET PkgConfig::CURL)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
endif()
find_package(Threads REQUIRED)

target_sources(fieldvault PRIVATE ${PROJECT_SOURCE_DIR}/sync/sign.c)

add_library(fvdcore STATIC
  server/store_sqlite.c
  server/store_scope.c
  server/reply.c
  server/auth.c
  server/enroll.c
  server/push.c
  server/pull.c
  server/acl.c
  server/http.c
  server/adminkeys.c
  server/keys.c
  server/grants.c
)
target_include_directories(fvdcore
  PUBLIC ${PROJECT_SOURCE_DIR}/server
  PRIVATE ${PROJECT_SOURCE_DIR}/core ${PROJECT_SOURCE_DIR}/sync ${PROJECT_SOURCE_DIR}/platform)
target_link_libraries(fvdcore PUBLIC fieldvault PkgConfig::MHD Threads::Threads)
fv_strict(fvdcore)

add_executable(fvd server/fvd.c)
target_link_libraries(fvd PRIVATE fvdcore)
target_include_directories(fvd PRIVATE ${PROJECT_SOURCE_DIR}/core ${PROJECT_SOURCE_DIR}/platform)
fv_strict(fvd)

# Deferred: the test targets are defined later in the top-level file.
function(fvd_test_config)
  if(TARGET test_fvd)
    target_link_libraries(test_fvd PRIVATE fvdcore PkgConfig::CURL)
    target_compile_definitions(test_fvd PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
    add_dependencies(test_fvd fvd)
    # With pg.cmake's throwaway-cluster helper, test_fvd also runs fvd on
    # PostgreSQL.
    if(TARGET fvpgutil)
      target_link_libraries(test_fvd PRIVATE fvpgutil)
      target_compile_definitions(test_fvd PRIVATE FVD_TEST_PG=1)
    endif()
  endif()
  # Field keys end to end: the fvd binary on both backends, fvdproc.c
  # (fvreliability) to run it, adminkeys.c (fvdcore) to read the key file.
  if(TARGET test_keys)
    target_link_libraries(test_keys PRIVATE fvdcore fvreliability fvpgutil)
    target_compile_definitions(test_keys PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
    add_dependencies(test_keys fvd)
  endif()
  # `fvd admin policy set|show` and `set-user` against a serving fvd, with
  # real devices, on both backends.
  if(TARGET test_policy_server)
    target_link_libraries(test_policy_server PRIVATE fvreliability fvpgutil)
    target_compile_definitions(test_policy_server PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
    add_dependencies(test_policy_server fvd)
  endif()
endfunction()
cmake_language(DEFER CALL fvd_test_config)
