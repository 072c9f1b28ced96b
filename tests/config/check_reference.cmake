# Compares the reference `xmpp-shard-proxy --print-config-reference` prints with the part of
# docs/CONFIG.md between its config-reference markers (ctest: config_reference_cli), or, with
# -DUPDATE=ON, rewrites that part:
#   cmake -DBIN=build/bin/xmpp-shard-proxy -DDOC=docs/CONFIG.md [-DUPDATE=ON] \
#         -P tests/config/check_reference.cmake
if(NOT BIN OR NOT DOC)
  message(FATAL_ERROR "usage: cmake -DBIN=PROXY_BINARY -DDOC=docs/CONFIG.md [-DUPDATE=ON] -P check_reference.cmake")
endif()
execute_process(COMMAND ${BIN} --print-config-reference
                OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --print-config-reference exited with ${rc}")
endif()
file(READ ${DOC} doc)
set(begin_marker "<!-- config-reference:begin -->\n")
set(end_marker "<!-- config-reference:end -->")
string(FIND "${doc}" "${begin_marker}" begin)
string(FIND "${doc}" "${end_marker}" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "${DOC}: the markers ${begin_marker} and ${end_marker} are missing or out of order")
endif()
string(LENGTH "${begin_marker}" begin_len)
math(EXPR from "${begin} + ${begin_len}")
math(EXPR len "${end} - ${from}")
string(SUBSTRING "${doc}" ${from} ${len} in_doc)
if(in_doc STREQUAL generated)
  message(STATUS "${DOC}: the reference is up to date")
elseif(UPDATE)
  string(SUBSTRING "${doc}" 0 ${from} head)
  string(SUBSTRING "${doc}" ${end} -1 tail)
  file(WRITE ${DOC} "${head}${generated}${tail}")
  message(STATUS "${DOC}: reference rewritten")
else()
  message(FATAL_ERROR "${DOC} differs from `${BIN} --print-config-reference` between the markers; "
          "regenerate with: cmake -DBIN=${BIN} -DDOC=${DOC} -DUPDATE=ON -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
