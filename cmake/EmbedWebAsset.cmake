# stickyproxy_embed_web_asset(<target> INPUT <file> OUTPUT <file.cpp> HEADER <header>
#                             NAMESPACE <namespace> FUNCTION <name>)
#
# Compiles INPUT into <target> as `std::string_view NAMESPACE::FUNCTION()`, declared in HEADER
# (a path from the project root). The source is generated into the build tree by
# embed_web_asset.cmake and regenerated whenever INPUT changes.
set(STICKYPROXY_EMBED_WEB_ASSET_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_web_asset.cmake)

function(stickyproxy_embed_web_asset target)
  cmake_parse_arguments(PARSE_ARGV 1 EMBED "" "INPUT;OUTPUT;HEADER;NAMESPACE;FUNCTION" "")
  file(RELATIVE_PATH shown ${PROJECT_SOURCE_DIR} ${EMBED_INPUT})
  add_custom_command(
    OUTPUT ${EMBED_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${EMBED_INPUT} -DOUTPUT=${EMBED_OUTPUT} -DHEADER=${EMBED_HEADER}
            -DNAMESPACE=${EMBED_NAMESPACE} -DFUNCTION=${EMBED_FUNCTION} -P ${STICKYPROXY_EMBED_WEB_ASSET_SCRIPT}
    DEPENDS ${EMBED_INPUT} ${STICKYPROXY_EMBED_WEB_ASSET_SCRIPT}
    COMMENT "Embedding ${shown}"
    VERBATIM)
  target_sources(${target} PRIVATE ${EMBED_OUTPUT})
endfunction()
