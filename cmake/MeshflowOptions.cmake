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
