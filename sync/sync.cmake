# sync.cmake - the sync wire format: nanopb code generated at build time from
# sync/fieldvault.proto (+ .options) with Debian's nanopb generator, and the
# streaming codec sync/wire.c.  Included by the top-level CMakeLists.txt right
# after the `fieldvault` target is defined; everything lands in that static
# library, so its consumers (fv, the tests) link without extra steps.
#
# The generated .pb.c is third-party-shaped code: it is built as an OBJECT
# library without fv_strict and its objects are added to `fieldvault`.
# sync/wire.c is our code and is compiled as part of `fieldvault`, under
# fv_strict.  Nothing is downloaded: nanopb (runtime, headers, CMake config)
# and protoc come from Debian packages (see scripts/install-deps).

find_package(nanopb CONFIG REQUIRED)   # nanopb::protobuf-nanopb-static
find_program(FV_NANOPB_GENERATOR NAMES nanopb_generator nanopb_generator.py
             REQUIRED)
find_program(FV_PROTOC NAMES protoc REQUIRED)

set(FV_PROTO_DIR ${PROJECT_SOURCE_DIR}/sync)
set(FV_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/sync-gen)
file(MAKE_DIRECTORY ${FV_PROTO_GEN_DIR})

# Generator output is deterministic (no timestamps since nanopb 0.4).
# --error-on-unmatched: a typo in fieldvault.options must fail the build, not
# silently leave a field unbounded.
add_custom_command(
  OUTPUT ${FV_PROTO_GEN_DIR}/fieldvault.pb.c ${FV_PROTO_GEN_DIR}/fieldvault.pb.h
  COMMAND ${FV_NANOPB_GENERATOR} -q --error-on-unmatched
          -I ${FV_PROTO_DIR}
          -f ${FV_PROTO_DIR}/fieldvault.options
          -D ${FV_PROTO_GEN_DIR}
          ${FV_PROTO_DIR}/fieldvault.proto
  DEPENDS ${FV_PROTO_DIR}/fieldvault.proto ${FV_PROTO_DIR}/fieldvault.options
  WORKING_DIRECTORY ${FV_PROTO_DIR}
  COMMENT "nanopb: generating fieldvault.pb.c/.pb.h"
  VERBATIM)

add_library(fv_proto OBJECT ${FV_PROTO_GEN_DIR}/fieldvault.pb.c)
target_link_libraries(fv_proto PUBLIC nanopb::protobuf-nanopb-static)
target_include_directories(fv_proto PUBLIC ${FV_PROTO_GEN_DIR})
if(CMAKE_POSITION_INDEPENDENT_CODE)
  set_target_properties(fv_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
endif()

target_sources(fieldvault PRIVATE
  ${PROJECT_SOURCE_DIR}/sync/wire.c
  $<TARGET_OBJECTS:fv_proto>)
# sync/ and the generated header are on the consumers' include path so that
# the test programs can reach the internal codec (fvtest only adds core/ and
# platform/).  Build-tree only: the installed public API stays
# include/fieldvault.h.
target_include_directories(fieldvault
  PUBLIC $<BUILD_INTERFACE:${FV_PROTO_DIR}> $<BUILD_INTERFACE:${FV_PROTO_GEN_DIR}>)
target_link_libraries(fieldvault PUBLIC nanopb::protobuf-nanopb-static)
add_dependencies(fieldvault fv_proto)

# test_wire runs Google's own tooling (protoc --decode, and Python's protobuf
# runtime through tests/interop/*.py).  Debian's python3-protobuf is
# importable from Debian's interpreter only, which a PATH with pyenv or a
# venv may shadow: pick an interpreter that can import it.  The test target
# is defined later in the top-level file, hence the deferred call.
find_program(FV_PYTHON3_ON_PATH NAMES python3)
set(FV_PYTHON3 "")
foreach(py /usr/bin/python3 ${FV_PYTHON3_ON_PATH})
  if(NOT FV_PYTHON3 AND EXISTS ${py})
    execute_process(COMMAND ${py} -c "import google.protobuf"
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(FV_PYTHON3 ${py})
    endif()
  endif()
endforeach()
if(NOT FV_PYTHON3)
  message(WARNING "fieldvault: no python3 can import google.protobuf "
                  "(apt install python3-protobuf): test_wire's interop tests will fail")
  set(FV_PYTHON3 /usr/bin/python3)
endif()

function(fv_wire_test_config)
  if(TARGET test_wire)
    target_compile_definitions(test_wire PRIVATE
      FV_PROTOC="${FV_PROTOC}" FV_PYTHON3="${FV_PYTHON3}")
  endif()
endfunction()
cmake_language(DEFER CALL fv_wire_test_config)
