# Project-wide build settings: one place for warnings and sanitizers.
option(MESHFLOW_WERROR "Treat compiler warnings as errors" ON)
option(MESHFLOW_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(MESHFLOW_FUZZ "Build libFuzzer targets (needs clang)" OFF)
option(MESHFLOW_BUILD_TESTS "Build the test suite" ON)
option(MESHFLOW_BUILD_BENCH "Build the benchmarks" ON)

# Applied to every meshflow target, never to third-party code.
function(meshflow_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
                                           -Wunused -Woverloaded-virtual -Wformat=2)
  if(MESHFLOW_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(MESHFLOW_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# meshflow_library(<name> <sources...>): the static library meshflow_<name>, which the rest of the
# tree links as meshflow::<name>, with the defaults above.
function(meshflow_library name)
  add_library(meshflow_${name} STATIC ${ARGN})
  add_library(meshflow::${name} ALIAS meshflow_${name})
  meshflow_target_defaults(meshflow_${name})
endfunction()

# meshflow_program(<name> <sources...> LIBS <targets...>): an installed command-line program.
function(meshflow_program name)
  cmake_parse_arguments(P "" "" "LIBS" ${ARGN})
  add_executable(${name} ${P_UNPARSED_ARGUMENTS})
  meshflow_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${P_LIBS})
  install(TARGETS ${name} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
