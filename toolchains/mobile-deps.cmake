# mobile-deps.cmake - fieldvault's three dependencies as the targets the
# top-level CMakeLists.txt expects (PkgConfig::SQLITE3, PkgConfig::SODIUM,
# PkgConfig::CURL) and nanopb's CMake package, from prebuilt libraries
# instead of pkg-config.  Named by toolchains/android.cmake and ios.cmake
# through FV_DEPS_FILE; reads:
#   FV_DEPS_PREFIX          include/ and lib/ of the prebuilt libsodium,
#                           libcurl and nanopb runtime (one ABI / SDK)
#   FV_SQLITE_AMALGAMATION  a directory with sqlite3.c and sqlite3.h: SQLite
#                           is compiled here (Android has no system SQLite
#                           for apps); unset: the SDK's libsqlite3 (iOS)

set(fv_inc "${FV_DEPS_PREFIX}/include")
set(fv_lib "${FV_DEPS_PREFIX}/lib")

# SQLite -------------------------------------------------------------------
if(FV_SQLITE_AMALGAMATION)
  add_library(fv_sqlite3 STATIC "${FV_SQLITE_AMALGAMATION}/sqlite3.c")
  target_include_directories(fv_sqlite3 SYSTEM PUBLIC "${FV_SQLITE_AMALGAMATION}")
  # Stock SQLite with the recommended options for an embedded library: no
  # extension loading (no dlopen), no double-quoted string literals; the
  # library stays thread-safe (serialized) as the system builds are.
  target_compile_definitions(fv_sqlite3 PRIVATE SQLITE_THREADSAFE=1 SQLITE_DQS=0
                             SQLITE_OMIT_LOAD_EXTENSION SQLITE_DEFAULT_MEMSTATUS=0)
  set_target_properties(fv_sqlite3 PROPERTIES POSITION_INDEPENDENT_CODE ON)
  add_library(PkgConfig::SQLITE3 ALIAS fv_sqlite3)
else()
  find_library(FV_SQLITE3_LIBRARY sqlite3 REQUIRED)
  add_library(PkgConfig::SQLITE3 INTERFACE IMPORTED)
  target_link_libraries(PkgConfig::SQLITE3 INTERFACE "${FV_SQLITE3_LIBRARY}")
endif()

# libsodium ----------------------------------------------------------------
add_library(PkgConfig::SODIUM STATIC IMPORTED)
set_target_properties(PkgConfig::SODIUM PROPERTIES
  IMPORTED_LOCATION "${fv_lib}/libsodium.a"
  INTERFACE_INCLUDE_DIRECTORIES "${fv_inc}")

# libcurl, and its TLS library when it was built with OpenSSL --------------
add_library(PkgConfig::CURL STATIC IMPORTED)
set(fv_curl_deps "")
foreach(l ssl crypto nghttp2)
  if(EXISTS "${fv_lib}/lib${l}.a")
    list(APPEND fv_curl_deps "${fv_lib}/lib${l}.a")
  endif()
endforeach()
list(APPEND fv_curl_deps z)
if(APPLE)
  list(APPEND fv_curl_deps "-framework Security" "-framework CoreFoundation"
       "-framework SystemConfiguration")
endif()
set_target_properties(PkgConfig::CURL PROPERTIES
  IMPORTED_LOCATION "${fv_lib}/libcurl.a"
  INTERFACE_INCLUDE_DIRECTORIES "${fv_inc}"
  INTERFACE_COMPILE_DEFINITIONS CURL_STATICLIB
  INTERFACE_LINK_LIBRARIES "${fv_curl_deps}")

# nanopb: sync/sync.cmake asks for find_package(nanopb CONFIG); answer with
# a package made here over the prebuilt runtime (nanopb_generator and
# protoc are host programs, found on PATH as usual).
set(fv_nanopb_dir "${CMAKE_BINARY_DIR}/fv-nanopb-package")
file(WRITE "${fv_nanopb_dir}/nanopb-config.cmake"
"if(NOT TARGET nanopb::protobuf-nanopb-static)
  add_library(nanopb::protobuf-nanopb-static STATIC IMPORTED)
  set_target_properties(nanopb::protobuf-nanopb-static PROPERTIES
    IMPORTED_LOCATION \"${fv_lib}/libprotobuf-nanopb.a\"
    INTERFACE_INCLUDE_DIRECTORIES \"${fv_inc}\")
endif()
set(nanopb_FOUND TRUE)
")
set(nanopb_DIR "${fv_nanopb_dir}" CACHE PATH "nanopb's CMake package (made by mobile-deps.cmake)" FORCE)
