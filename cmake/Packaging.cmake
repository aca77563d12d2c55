# The Debian package (cpack -G DEB in a build directory): the exporter and the gateway with
# their private OpenSSL names for civetweb (common/web/compat), their systemd units, default
# configs and man pages, dashboards, alert rules, runbooks and example Prometheus config. Checked by tests/deploy/check_package.sh.
include(GNUInstallDirs)

set(MESHFLOW_SHARE_DIR ${CMAKE_INSTALL_DATADIR}/meshflow)
set(MESHFLOW_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/meshflow)

# The exporter finds its compat libssl.so/libcrypto.so in the package's private directory
# before the system's (a RUNPATH, searched ahead of the default paths); relative to the
# binary, so that the install prefix does not matter.
foreach(target meshflow-exporter meshflow-gateway)
  if(TARGET ${target})
    set_target_properties(${target} PROPERTIES
      INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}/meshflow")
  endif()
endforeach()

set(deploy ${PROJECT_SOURCE_DIR}/deploy)
# /etc and /lib/systemd are absolute: they do not move with the prefix.
install(FILES ${deploy}/systemd/meshflow-exporter.service ${deploy}/systemd/meshflow-gateway.service
        DESTINATION /lib/systemd/system)
install(FILES ${deploy}/meshflow.yml ${deploy}/gateway.yml DESTINATION /etc/meshflow)
install(FILES ${deploy}/debian/meshflow-exporter.default
        DESTINATION /etc/default RENAME meshflow-exporter)
install(FILES ${deploy}/debian/meshflow-gateway.default
        DESTINATION /etc/default RENAME meshflow-gateway)
install(FILES ${deploy}/web-config.example.yml DESTINATION ${MESHFLOW_SHARE_DIR})
install(FILES ${deploy}/prometheus/prometheus.yml DESTINATION ${MESHFLOW_SHARE_DIR}/prometheus)
file(GLOB meshflow_alert_files ${PROJECT_SOURCE_DIR}/alerts/*.yml)
install(FILES ${meshflow_alert_files} DESTINATION ${MESHFLOW_SHARE_DIR}/alerts)
file(GLOB meshflow_dashboard_files ${PROJECT_SOURCE_DIR}/dashboards/*.json)
install(FILES ${meshflow_dashboard_files} DESTINATION ${MESHFLOW_SHARE_DIR}/dashboards)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${deploy}/debian/copyright
        DESTINATION ${MESHFLOW_DOC_DIR})
# The runbooks every alert's runbook_url points at (by default, see alerts/README.md).
install(FILES ${PROJECT_SOURCE_DIR}/alerts/runbooks.md DESTINATION ${MESHFLOW_DOC_DIR})

# Man pages from each binary's --help (help2man; the version is the project's), so they cannot
# drift from the flags; gzip -n keeps builds repeatable. A cross build cannot run its binaries: there, point
# MESHFLOW_HELP2MAN_EMULATOR at qemu-user-static (e.g. qemu-aarch64-static -L /usr/aarch64-linux-gnu).
find_program(MESHFLOW_HELP2MAN help2man)
set(MESHFLOW_HELP2MAN_EMULATOR "" CACHE STRING "Runs the built binaries for help2man in a cross build")
if(MESHFLOW_HELP2MAN)
  set(meshflow_man_exporter "overlay RTT, loss and per-role traffic as Prometheus metrics")
  set(meshflow_man_gateway "one Prometheus target per node, scraped through it or pushing to it")
  set(meshflow_man_probe "RTT, loss and jitter to peers from the command line, or a UDP reflector")
  foreach(daemon exporter gateway probe)
    set(target meshflow-${daemon})
    set(page ${PROJECT_BINARY_DIR}/man/${target}.1.gz)
    set(wrapper ${PROJECT_BINARY_DIR}/man/${target})
    # help2man runs the program by its name; a wrapper gives it the built binary (and the
    # emulator of a cross build) under the daemon's own name.
    file(GENERATE OUTPUT ${wrapper}
         CONTENT "#!/bin/sh\nexec ${MESHFLOW_HELP2MAN_EMULATOR} $<TARGET_FILE:${target}> \"$@\"\n"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
    add_custom_command(
      OUTPUT ${page}
      COMMAND ${MESHFLOW_HELP2MAN} --no-info --section=1 --source=meshflow
              --version-string=${PROJECT_VERSION}
              --name=${meshflow_man_${daemon}} --output=${PROJECT_BINARY_DIR}/man/${target}.1
              ${wrapper}
      COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/man/${target}.1
      DEPENDS ${target} ${wrapper}
      VERBATIM)
    add_custom_target(${target}_man ALL DEPENDS ${page})
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endforeach()
else()
  message(WARNING "help2man not found (deploy/install-deps.sh installs it): the package will "
                  "have no man pages and lintian will say so")
endif()
# Debian wants the changelog compressed with gzip -n (no timestamp), so builds are repeatable;
# a native package (no Debian revision) names it changelog.gz.
set(meshflow_changelog ${PROJECT_BINARY_DIR}/debian/changelog.gz)
add_custom_command(OUTPUT ${meshflow_changelog}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/debian
                   COMMAND gzip -9n -c ${deploy}/debian/changelog > ${meshflow_changelog}
                   DEPENDS ${deploy}/debian/changelog)
add_custom_target(meshflow_debian_changelog ALL DEPENDS ${meshflow_changelog})
install(FILES ${meshflow_changelog} DESTINATION ${MESHFLOW_DOC_DIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meshflow)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "meshflow maintainers <maintainers@meshflow.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "overlay RTT, loss and per-role traffic as Prometheus metrics")
# The extended description; the synopsis line is CPACK_PACKAGE_DESCRIPTION_SUMMARY.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "meshflow-exporter runs on every node of a small K3s cluster (or as a plain
 service) and measures the round-trip time and loss of the overlay links
 between nodes and the bytes each role moves between them. meshflow-gateway
 gives Prometheus one target per node, scraped through it or pushing to it.
 The package ships both daemons with their systemd units (the gateway's not
 enabled), default configurations and man pages, Grafana dashboards,
 Prometheus alert rules with their runbooks and an example Prometheus
 configuration.")
set(CPACK_PACKAGE_VENDOR "the meshflow authors")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://meshflow.invalid/")
# Library dependencies from the binaries (dpkg-shlibdeps); the compat objects are private.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/private-lib)
# passwd: useradd in postinst; procps: /bin/kill in the units' ExecReload.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, procps")
# A cross build for arm64 (cmake/toolchain-aarch64-linux-gnu.cmake) makes an arm64 package. Its
# library dependencies cannot come from CPack's dpkg-shlibdeps, which looks in this machine's
# dpkg database: deploy/cross/arm64.sh computes them from the arm64 packages and passes them here.
set(MESHFLOW_DEB_SHLIBS_DEPENDS "" CACHE STRING
    "Library dependencies of a cross-built package (replaces CPack's dpkg-shlibdeps)")
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
endif()
if(MESHFLOW_DEB_SHLIBS_DEPENDS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", ${MESHFLOW_DEB_SHLIBS_DEPENDS}")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${deploy}/debian/postinst ${deploy}/debian/prerm ${deploy}/debian/postrm
    ${deploy}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_SET_DESTDIR OFF)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
