# bench.cmake - the benchmarks of issue 6 (bench/), built only with
# -DFV_BUILD_BENCH=ON (scripts/bench configures a Release build with it).
# Included at the end of the top-level CMakeLists.txt, after the library,
# fvd (fvdcore) and the tests are defined.
#
#  - fv_bench: the driver and every benchmark that runs against the system
#    SQLite (fieldvault itself, plain SQLite, the session extension, the
#    VFS, the wire codec, sync through fvd).
#  - peer_sqlcipher: the SQLCipher peer, its own executable: Debian's
#    SQLCipher exports the same sqlite3_* symbols as the system SQLite, so
#    the two cannot be linked into one process.  fv_bench runs it.
# Everything comes from Debian packages (scripts/install-deps).
#
# In a cross build (toolchains/linux-aarch64.cmake) only the size target
# below is defined: fv_bench runs such a build to measure the aarch64 size.

if(NOT CMAKE_CROSSCOMPILING)
  pkg_check_modules(SQLCIPHER REQUIRED IMPORTED_TARGET sqlcipher)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
  pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)

  set(FV_BENCH_DIR ${PROJECT_SOURCE_DIR}/bench)

  # The SQLCipher peer: visitgen + the shared SQL peer, against SQLCipher's
  # header (its include dir comes first, so <sqlite3.h> is SQLCipher's).
  add_executable(peer_sqlcipher
    ${FV_BENCH_DIR}/peer_sqlcipher.c
    ${FV_BENCH_DIR}/peer_sql.c
    ${FV_BENCH_DIR}/visitgen.c)
  target_include_directories(peer_sqlcipher BEFORE PRIVATE ${SQLCIPHER_INCLUDE_DIRS} ${FV_BENCH_DIR})
  target_link_libraries(peer_sqlcipher PRIVATE PkgConfig::SQLCIPHER)
  target_compile_definitions(peer_sqlcipher PRIVATE SQLITE_HAS_CODEC)
  fv_strict(peer_sqlcipher)

  add_executable(fv_bench
    ${FV_BENCH_DIR}/fv_bench.c
    ${FV_BENCH_DIR}/util.c
    ${FV_BENCH_DIR}/results.c
    ${FV_BENCH_DIR}/visitgen.c
    ${FV_BENCH_DIR}/peer_sql.c
    ${FV_BENCH_DIR}/bench_visits.c
    ${FV_BENCH_DIR}/bench_vfs.c
    ${FV_BENCH_DIR}/bench_wire.c
    ${FV_BENCH_DIR}/bench_size.c
    ${FV_BENCH_DIR}/bench_fvd.c
    ${FV_BENCH_DIR}/bench_sync.c
    ${FV_BENCH_DIR}/bench_memory.c
    ${FV_BENCH_DIR}/bench_load.c
    ${PROJECT_SOURCE_DIR}/tests/pgutil.c)
  target_include_directories(fv_bench PRIVATE ${FV_BENCH_DIR}
    ${PROJECT_SOURCE_DIR}/core ${PROJECT_SOURCE_DIR}/sync ${PROJECT_SOURCE_DIR}/platform
    ${PROJECT_SOURCE_DIR}/tests)
  # tests/pgutil.c (the throwaway PostgreSQL cluster) needs libpq.
  target_link_libraries(fv_bench PRIVATE fieldvault PkgConfig::CJSON PkgConfig::ZSTD
    PkgConfig::LIBPQ Threads::Threads m)
  # The session extension is in Debian's libsqlite3 (SQLITE_ENABLE_SESSION and
  # SQLITE_ENABLE_PREUPDATE_HOOK); these make its API visible in sqlite3.h.
  target_compile_definitions(fv_bench PRIVATE
    PEER_HAVE_SESSION SQLITE_ENABLE_SESSION SQLITE_ENABLE_PREUPDATE_HOOK
    FV_BENCH_SQLCIPHER="$<TARGET_FILE:peer_sqlcipher>")
  add_dependencies(fv_bench peer_sqlcipher)
  if(NOT TARGET fvd)
    message(FATAL_ERROR "bench/: the sync benchmarks need fvd: configure with FV_BUILD_SERVER=ON")
  endif()
  target_compile_definitions(fv_bench PRIVATE FVD_BIN="$<TARGET_FILE:fvd>")
  add_dependencies(fv_bench fvd)
  fv_strict(fv_bench)
endif()

# Item 7, size: the library as a shared object built from the same sources
# as the static `fieldvault` (position-independent, hidden visibility: only
# FV_API symbols exported), with its dependencies (SQLite, libsodium,
# libcurl, the nanopb runtime) left as undefined symbols, so the stripped
# file is fieldvault's own code and data.  Built only for this measurement.
get_target_property(FV_BENCH_LIB_SOURCES fieldvault SOURCES)
list(FILTER FV_BENCH_LIB_SOURCES EXCLUDE REGEX "TARGET_OBJECTS")
add_library(fieldvault_size SHARED ${FV_BENCH_LIB_SOURCES} ${FV_PROTO_GEN_DIR}/fieldvault.pb.c)
get_target_property(FV_BENCH_LIB_INCLUDES fieldvault INCLUDE_DIRECTORIES)
target_include_directories(fieldvault_size PRIVATE ${FV_BENCH_LIB_INCLUDES})
target_link_libraries(fieldvault_size PRIVATE PkgConfig::SQLITE3 PkgConfig::SODIUM PkgConfig::CURL)
target_include_directories(fieldvault_size PRIVATE
  $<TARGET_PROPERTY:nanopb::protobuf-nanopb-static,INTERFACE_INCLUDE_DIRECTORIES>)
target_compile_definitions(fieldvault_size PRIVATE _POSIX_C_SOURCE=200809L)
set_target_properties(fieldvault_size PROPERTIES POSITION_INDEPENDENT_CODE ON
  C_VISIBILITY_PRESET hidden OUTPUT_NAME fieldvault_size)
add_dependencies(fieldvault_size fv_proto)

if(TARGET fv_bench)
  target_compile_definitions(fv_bench PRIVATE
    FV_BENCH_SIZE_LIB="$<TARGET_FILE:fieldvault_size>"
    FV_BENCH_STATIC_LIB="$<TARGET_FILE:fieldvault>"
    FV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(fv_bench fieldvault_size)
endif()
