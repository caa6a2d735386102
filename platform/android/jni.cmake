# jni.cmake - the JNI binding (platform/android/): libfieldvault_jni, the
# Java API jar (org.fieldvault.*), and its test on the host JVM.  Included
# by the top-level CMakeLists.txt near the end, after the library, fvd and
# the tests.
#
# On the host: ON by default when a JDK is found (find_package(JNI) and
# Java), OFF under the sanitizers (a JVM cannot load an ASan-instrumented
# library without preloading the runtime) and when cross-compiling to
# anything but Android.  With the NDK (toolchains/android.cmake) the
# library is built for the app's ABI; the Java sources are compiled by the
# app's Gradle build (see platform/android/README.md), so no jar here.
#
# The static library goes inside a shared object, so its code (and the
# generated nanopb code) is compiled position-independent when JNI is on.

set(FV_JNI_DEFAULT OFF)
if(ANDROID)
  set(FV_JNI_DEFAULT ON)
elseif(NOT CMAKE_CROSSCOMPILING AND NOT FV_SANITIZE)
  find_package(Java QUIET COMPONENTS Development Runtime)
  # FindJNI looks under JAVA_HOME and a list of known places; point it at
  # the JDK whose javac was found, so that jni.h and javac agree.
  if(Java_JAVAC_EXECUTABLE AND NOT DEFINED ENV{JAVA_HOME} AND NOT JAVA_HOME)
    file(REAL_PATH ${Java_JAVAC_EXECUTABLE} fv_javac)
    get_filename_component(fv_jdk ${fv_javac} DIRECTORY)
    get_filename_component(JAVA_HOME ${fv_jdk} DIRECTORY)
  endif()
  # Only jni.h is needed (and the JVM to run the tests): no AWT.
  find_package(JNI QUIET COMPONENTS JVM)
  if(JNI_FOUND AND Java_FOUND)
    set(FV_JNI_DEFAULT ON)
  endif()
endif()
option(FV_BUILD_JNI "Build the JNI binding (libfieldvault_jni + Java API)" ${FV_JNI_DEFAULT})

if(FV_BUILD_JNI)
  set_target_properties(fieldvault PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(TARGET fv_proto)
    set_target_properties(fv_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
  endif()

  add_library(fieldvault_jni SHARED ${PROJECT_SOURCE_DIR}/platform/android/fieldvault_jni.c)
  target_link_libraries(fieldvault_jni PRIVATE fieldvault)
  fv_strict(fieldvault_jni)
  if(NOT ANDROID)
    # jni.h comes with the NDK's sysroot on Android, with the JDK here.
    find_package(JNI REQUIRED COMPONENTS JVM)
    target_include_directories(fieldvault_jni SYSTEM PRIVATE ${JNI_INCLUDE_DIRS})
  endif()
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang" AND NOT APPLE)
    # only JNI_OnLoad (and fieldvault's FV_API) leave the object; the static
    # libraries inside it stay private, and nothing is left undefined
    target_link_options(fieldvault_jni PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined)
  endif()

  if(NOT ANDROID)
    find_package(Java REQUIRED COMPONENTS Development Runtime)
    include(UseJava)
    file(GLOB FV_JAVA_SOURCES CONFIGURE_DEPENDS
         ${PROJECT_SOURCE_DIR}/platform/android/java/org/fieldvault/*.java)
    # The API itself at Java 8 (what Android's toolchain accepts everywhere);
    # warnings are errors, as for the C code.
    set(CMAKE_JAVA_COMPILE_FLAGS --release 8 -Xlint:all,-options -Werror)
    add_jar(fieldvault_java SOURCES ${FV_JAVA_SOURCES} OUTPUT_NAME fieldvault)
    if(FV_BUILD_TESTS)
      set(CMAKE_JAVA_COMPILE_FLAGS -Xlint:all,-options -Werror)
      add_jar(fieldvault_java_test
        SOURCES ${PROJECT_SOURCE_DIR}/platform/android/test/org/fieldvault/VaultTest.java
        INCLUDE_JARS fieldvault_java OUTPUT_NAME fieldvault-test)
      add_dependencies(fieldvault_java_test fieldvault_jni)
      get_target_property(fv_api_jar fieldvault_java JAR_FILE)
      get_target_property(fv_test_jar fieldvault_java_test JAR_FILE)
      set(fv_fvd_arg "")
      if(TARGET fvd)
        set(fv_fvd_arg "-Dorg.fieldvault.fvd=$<TARGET_FILE:fvd>")
        add_dependencies(fieldvault_java_test fvd)
      endif()
      add_test(NAME java_vault
        COMMAND ${Java_JAVA_EXECUTABLE} -Xcheck:jni
                -Dorg.fieldvault.library=$<TARGET_FILE:fieldvault_jni> ${fv_fvd_arg}
                -Dorg.fieldvault.tmp=${CMAKE_BINARY_DIR}/testtmp
                -cp ${fv_api_jar}:${fv_test_jar} org.fieldvault.VaultTest)
      # -Xcheck:jni's warnings (a leaked local reference, a call with an
      # exception pending) fail the test.
      set_tests_properties(java_vault PROPERTIES TIMEOUT 300
        FAIL_REGULAR_EXPRESSION "WARNING[^\n]*JNI|FATAL ERROR|\\[FAIL\\]")
      unset(CMAKE_JAVA_COMPILE_FLAGS)
    endif()
  endif()
endif()
