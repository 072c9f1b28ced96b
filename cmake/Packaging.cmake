# Install rules and the Debian package (CPack DEB). Included at the end of the top-level
# CMakeLists.txt, once every target exists.
#
#   cmake --build build -j2 && (cd build && cpack -G DEB)     -> build/xmpp-shard_<ver>_<arch>.deb
#
# The package holds the binaries, the deploy tool (/usr/bin/xmpp-shard-deploy, its code in
# /usr/lib/xmpp-shard/deploy), the Prosody module(s), the example plans, the systemd template and proxy units, and a
# default plan and proxy config under /etc/xmpp-shard (conffiles). Its maintainer scripts
# (deploy/debian/) create the xmpp-shard system user and start, enable or overwrite nothing.
# tests/integration/test_deb.py builds, installs, checks and purges it.

# build/bin/xmpp-shard-deploy, next to the other executables (the script finds its modules
# through the link).
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
file(CREATE_LINK ${CMAKE_SOURCE_DIR}/deploy/xmpp-shard-deploy
     ${CMAKE_BINARY_DIR}/bin/xmpp-shard-deploy SYMBOLIC)

set(XS_DEPLOY_SRC ${CMAKE_SOURCE_DIR}/deploy)

install(TARGETS xmpp-shard-proxy RUNTIME DESTINATION bin)
foreach(tool xmpp-shard-loadgen)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION bin)
  endif()
endforeach()

install(PROGRAMS ${XS_DEPLOY_SRC}/debian/xmpp-shard-deploy.sh DESTINATION bin RENAME xmpp-shard-deploy)
install(PROGRAMS ${XS_DEPLOY_SRC}/xmpp-shard-deploy ${XS_DEPLOY_SRC}/run-local
        DESTINATION lib/xmpp-shard/deploy)
install(DIRECTORY ${XS_DEPLOY_SRC}/xs_local DESTINATION lib/xmpp-shard/deploy
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
install(DIRECTORY ${XS_DEPLOY_SRC}/plans DESTINATION lib/xmpp-shard/deploy
        FILES_MATCHING PATTERN "*.toml")
# The project's Prosody module(s) (mod_xmpp_shard: PROXY v2 and proxy-terminated TLS on the
# backend side); Prosody finds them with plugin_paths = { "/usr/lib/xmpp-shard/prosody-modules" }.
if(EXISTS ${XS_DEPLOY_SRC}/prosody-modules)
  install(DIRECTORY ${XS_DEPLOY_SRC}/prosody-modules/ DESTINATION lib/xmpp-shard/prosody-modules
          FILES_MATCHING PATTERN "*.lua" PATTERN "*.md")
endif()
install(DIRECTORY ${XS_DEPLOY_SRC}/plans/ DESTINATION share/doc/xmpp-shard/examples/plans
        FILES_MATCHING PATTERN "*.toml")
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/xmpp-shard)
install(FILES ${XS_DEPLOY_SRC}/README.md DESTINATION share/doc/xmpp-shard RENAME README.deploy.md)

# Absolute destinations: systemd's package unit directory and /etc (conffiles).
install(FILES ${XS_DEPLOY_SRC}/debian/prosody-shard@.service
              ${XS_DEPLOY_SRC}/debian/xmpp-shard-proxy.service
        DESTINATION /lib/systemd/system)
install(FILES ${XS_DEPLOY_SRC}/debian/proxy.toml DESTINATION /etc/xmpp-shard)
install(FILES ${XS_DEPLOY_SRC}/plans/jitsi-classic.toml DESTINATION /etc/xmpp-shard RENAME plan.toml)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "xmpp-shard")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "xmpp-shard")
set(CPACK_PACKAGE_CONTACT "xmpp-shard maintainers <maintainers@xmpp-shard.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "front proxy that shards XMPP streams by domain over Prosody instances")
set(CPACK_PACKAGE_DESCRIPTION
    "xmpp-shard listens once (5222), reads each client's opening stream header, routes the
stream by its domain to one of N Prosody instances, each pinned to its own core, and
relays the bytes. xmpp-shard-deploy generates the instances, the proxy config, systemd
units and Jitsi component snippets from one shard plan.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3 (>= 3.11), adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "prosody, util-linux, openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${XS_DEPLOY_SRC}/debian/postinst;${XS_DEPLOY_SRC}/debian/prerm;${XS_DEPLOY_SRC}/debian/postrm;${XS_DEPLOY_SRC}/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
