# Cross build for 64-bit ARM (Debian's arm64) with Debian 12's cross toolchain
# (crossbuild-essential-arm64: aarch64-linux-gnu-gcc/g++ 12).
#   cmake -S . -B build/arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
#         -DMESHFLOW_ARM64_SYSROOT=/path/to/sysroot -DMESHFLOW_BUILD_TESTS=OFF -DMESHFLOW_BUILD_BENCH=OFF
# The arm64 libraries come from MESHFLOW_ARM64_SYSROOT, a directory into which Debian 12's
# arm64 -dev packages were unpacked (deploy/cross/arm64.sh makes one with mmdebstrap
# --variant=extract). Nothing :arm64 is installed on the build machine, so its own (amd64)
# packages are never touched: some -dev packages cannot be installed for both architectures.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(MESHFLOW_ARM64_SYSROOT "$ENV{MESHFLOW_ARM64_SYSROOT}" CACHE PATH
    "Debian 12 arm64 -dev packages unpacked into a directory")
# try_compile projects read this file again; they get the sysroot through the environment.
set(ENV{MESHFLOW_ARM64_SYSROOT} "${MESHFLOW_ARM64_SYSROOT}")

if(NOT MESHFLOW_ARM64_SYSROOT)
  message(FATAL_ERROR "set MESHFLOW_ARM64_SYSROOT to the arm64 sysroot (deploy/cross/arm64.sh makes one)")
endif()
set(CMAKE_SYSROOT "${MESHFLOW_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${MESHFLOW_ARM64_SYSROOT}")
# The sysroot is not merged-/usr: the linker must also look in its /lib for the libraries
# that the -dev packages' .so links point to.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${MESHFLOW_ARM64_SYSROOT}/lib/aarch64-linux-gnu -Wl,-rpath-link,${MESHFLOW_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${CMAKE_EXE_LINKER_FLAGS_INIT}")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${MESHFLOW_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${MESHFLOW_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${MESHFLOW_ARM64_SYSROOT}/usr/share/pkgconfig")

# Programs (protoc, help2man, gzip) are the build machine's; libraries, headers and CMake
# package files only the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
